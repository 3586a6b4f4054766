"""`tfod-seg score`: COCO box and mask metrics, PR curves, thresholds, confusion matrix."""

from __future__ import annotations

NAME = "score"
HELP = "COCO metrics, precision-recall curves and a report for an export or a results JSON"
DESCRIPTION = """\
Score instance-segmentation predictions with pycocotools, in one of two forms:

  --model EXPORT_DIR --records 'val-*.tfrecord'   run the export over the records' images;
                                                  the ground truth is converted to COCO
                                                  (DIR/gt.json) and the predictions kept
                                                  (DIR/results.json) for reuse
  --gt gt.json --predictions results.json         score an existing COCO results file

Writes to --out: metrics.json (bbox and segm: AP, AP50, AP75, APs, APm, APl, AR1, AR10,
AR100, ARs, ARm, ARl; per_class), per_class.csv, precision-recall curves per class and overall
at IoU 0.5 and 0.75 for masks and boxes (pr_*.png, pr_curves.csv), the best-F1 score threshold
per class (thresholds.csv), a confusion matrix with missed and spurious detections
(confusion.csv/.png) and report.md gathering them. COCO's -1 (no ground truth in that size
range) is kept in metrics.json and shown as n/a.
"""
EPILOG = """\
examples:
  tfod-seg score --model exported/ --records 'data/val-*.tfrecord' --out eval/
  tfod-seg score --gt eval/gt.json --predictions preds/coco/results.json --out eval2/
  tfod-seg score --model exported/ --records data/ --out eval/ --label-map data/label_map.pbtxt
  tfod-seg score --model exported/ --records 'data/val-*.tfrecord' --out eval/ --batch-size 4
"""


def add_arguments(parser) -> None:
    parser.add_argument("--model", metavar="EXPORT_DIR|MODEL.tflite|MODEL.onnx",
                        help="export directory or .tflite / .onnx file to run over --records")
    parser.add_argument("--records", nargs="+", metavar="GLOB",
                        help="TFRecord files (globs, paths or a directory) holding images and ground truth")
    parser.add_argument("--gt", metavar="JSON", help="COCO ground-truth JSON (with --predictions)")
    parser.add_argument("--predictions", metavar="JSON", help="COCO results JSON (with --gt)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--label-map", metavar="PBTXT",
                        help="class names for --model form (default: label_map.pbtxt beside the records, then the export)")
    parser.add_argument("--confusion-min-score", type=float, default=0.5,
                        help="detections below this score are left out of the confusion matrix")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="--model form: images per model call when all records' images have the same size "
                             "and the export accepts batches")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from tfod_seg.errors import UserError

    model_form = args.model is not None or args.records is not None
    file_form = args.gt is not None or args.predictions is not None
    if model_form == file_form:
        raise UserError("give either --model EXPORT_DIR --records GLOB, or --gt gt.json --predictions results.json")
    if model_form and (args.model is None or args.records is None):
        raise UserError("the model form needs both --model EXPORT_DIR and --records GLOB")
    if file_form and (args.gt is None or args.predictions is None):
        raise UserError("the file form needs both --gt gt.json and --predictions results.json")
    if model_form:
        from tfod_seg.cli._common import progress_bar
        from tfod_seg.evaluation.score import score_model
        from tfod_seg.records.reader import expand_patterns

        expand_patterns(args.records)  # clear error before loading the model
        with progress_bar(None, "score", unit="img", disable=args.no_progress) as bar:
            metrics = score_model(args.model, args.records, args.out, label_map=args.label_map, progress=bar,
                                  confusion_min_score=args.confusion_min_score, batch_size=args.batch_size).to_json()
    else:
        from tfod_seg.evaluation.score import score_files

        metrics = score_files(args.gt, args.predictions, args.out,
                              confusion_min_score=args.confusion_min_score).to_json()
    print(_table(metrics))
    print(f"report: {args.out}/report.md   metrics: {args.out}/metrics.json")
    return 0


def _table(metrics) -> str:
    def f(v):
        return "  n/a" if v is None or v < 0 else f"{v:.3f}"

    names = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")
    lines = ["          " + " ".join(f"{n:>6}" for n in names)]
    for key, label in (("segm", "mask"), ("bbox", "box")):
        lines.append(f"{label:<8}  " + " ".join(f"{f(metrics[key][n]):>6}" for n in names))
    lines.append("")
    lines.append(f"{'class':<20} {'GT':>5} {'mask AP':>8} {'box AP':>8} {'best-F1 thr':>12}")
    for name, d in metrics["per_class"].items():
        bf = d["best_f1"].get("segm") or d["best_f1"].get("bbox")
        lines.append(f"{name[:20]:<20} {d['num_gt']:>5} {f(d['segm']['AP']):>8} {f(d['bbox']['AP']):>8} "
                     f"{(format(bf['threshold'], '.3f') if bf else 'n/a'):>12}")
    return "\n".join(lines)
