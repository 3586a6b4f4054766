"""`tfod-seg visualize`: ground truth, predictions, or both side by side."""

from __future__ import annotations

from tfod_seg.cli._common import add_max_pixels

NAME = "visualize"
HELP = "draw ground truth and/or predictions (side by side) as PNGs"
DESCRIPTION = """\
Render one PNG per image with masks, boxes and class names so you can see where the model goes
wrong. Ground truth (left) comes from TFRecords, a LabelMe folder, or a COCO JSON; predictions
(right) from an export run on the same image or from a COCO results JSON. Results image ids are
matched through images.json / gt.json beside the results file (written by `tfod-seg infer` /
`tfod-seg score`), else the COCO JSON's ids, else the record order.
"""
EPILOG = """\
examples:
  tfod-seg visualize --records 'data/val-*.tfrecord' --out viz/gt                      # ground truth only
  tfod-seg visualize --records 'data/val-*.tfrecord' --model exported/ --out viz/both    # side by side
  tfod-seg visualize --records 'data/val-*.tfrecord' --predictions eval/results.json --out viz/
  tfod-seg visualize --labelme annotations/ --out viz/labelme --max-images 20
  tfod-seg visualize --coco ann/instances.json --image-dir ann/images --model exported/ --out viz/
  tfod-seg visualize --images photos/ --predictions preds/coco/results.json --out viz/preds
"""


def add_arguments(parser) -> None:
    src = parser.add_argument_group("images and ground truth (one of)")
    src.add_argument("--records", nargs="+", metavar="GLOB", help="TFRecord files")
    src.add_argument("--labelme", metavar="DIR", help="LabelMe JSON folder")
    src.add_argument("--coco", metavar="JSON", help="COCO annotations JSON (images under --image-dir)")
    src.add_argument("--image-dir", metavar="DIR", help="image folder for --coco (default: the JSON's folder)")
    src.add_argument("--images", nargs="+", metavar="PATH|DIR|GLOB", help="images without ground truth")
    pred = parser.add_argument_group("predictions (optional, one of)")
    pred.add_argument("--model", metavar="EXPORT_DIR", help="export to run on each image")
    pred.add_argument("--predictions", metavar="JSON", help="COCO results JSON")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory for the PNGs")
    parser.add_argument("--label-map", metavar="PBTXT", help="class names for predictions")
    parser.add_argument("--min-score", type=float, default=0.5, help="hide predictions below this score")
    parser.add_argument("--max-images", type=int, help="stop after this many images")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_max_pixels(parser)


def run(args) -> int:
    from tfod_seg import io
    from tfod_seg.cli._common import apply_max_pixels, progress_bar
    from tfod_seg.visualize.render import render

    io.check_output_dir(args.out, "--out folder")
    apply_max_pixels(args)

    with progress_bar(args.max_images, "visualize", unit="img", disable=args.no_progress) as bar:
        summary = render(args.out, records=args.records, labelme=args.labelme, coco=args.coco, image_dir=args.image_dir,
                         images=args.images, model=args.model, predictions=args.predictions, label_map=args.label_map,
                         min_score=args.min_score, max_images=args.max_images, progress=bar)
    what = " + ".join(x for x, on in (("ground truth", summary.with_gt), ("predictions", summary.with_predictions)) if on)
    print(f"wrote {summary.written} image(s) ({what}) to {summary.out_dir}")
    if summary.unmatched_predictions:
        print(f"{summary.unmatched_predictions} image(s) could not be matched to a result image_id")
    return 0
