"""`tfod-seg infer`: run an exported model over images and write overlays, COCO results,
LabelMe JSON and semantic PNGs."""

from __future__ import annotations

NAME = "infer"
HELP = "run an export over images: overlays, COCO results, LabelMe JSON, semantic PNGs"
DESCRIPTION = """\
Run a SavedModel with the TFOD2 detection signature (from `tfod-seg export`, or TFOD2's own
exporter_main_v2) over a file, a folder or a glob of images. Images stream through tf.data
(decode with EXIF orientation, batch, prefetch); box-relative masks are pasted into
full-image masks and the files written by a few threads beside the model. Outputs under --out:

  overlays/<stem>.png     masks, boxes, class names and scores, one colour per instance
  coco/results.json       COCO results with RLE masks (COCO.loadRes); coco/images.json ids
  labelme/<stem>.json     a polygon per instance: open in LabelMe, correct, `tfod-seg convert`
  semantic/<stem>.png     per-pixel class id (0 = background), overlaps go to the best score
  summary.json            counts, skipped files with reasons, timing
"""
EPILOG = """\
examples:
  tfod-seg infer --model exported/ --images photos/ --out predictions/
  tfod-seg infer --model exported/saved_model --images 'shots/**/*.jpg' --out preds \\
      --min-score 0.3 --format overlay,labelme --label-map data/label_map.pbtxt
  tfod-seg infer --model exported/ --images frames/ --out preds --batch-size 4   # same-size frames
"""


def add_arguments(parser) -> None:
    from tfod_seg.cli._common import add_max_pixels, add_strict

    parser.add_argument("--model", required=True, metavar="EXPORT_DIR|MODEL.tflite|MODEL.onnx",
                        help="export directory (holding saved_model.pb, or its saved_model/ subdirectory), "
                             "or a .tflite / .onnx file from `tfod-seg export --format`")
    parser.add_argument("--images", required=True, nargs="+", metavar="PATH|DIR|GLOB",
                        help="image file(s), folder(s), or glob(s) (quote globs; '**' recurses)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (local or gs://...)")
    parser.add_argument("--min-score", type=float, default=0.5, help="drop detections below this score")
    parser.add_argument("--label-map", metavar="PBTXT",
                        help="label map for class names (default: label_map.pbtxt beside the export)")
    parser.add_argument("--format", default="overlay,coco,labelme,semantic",
                        help="comma list of outputs: overlay, coco, labelme, semantic")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="images per model call when all images have the same size and the export accepts batches")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads pasting masks and writing files beside the model (default: 2-4 by cores); "
                             "outputs are identical for any value")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_max_pixels(parser)
    add_strict(parser)


def run(args) -> int:
    from tfod_seg.cli._common import apply_max_pixels, progress_bar
    from tfod_seg.inference.run import list_images, run_inference

    apply_max_pixels(args)
    from tfod_seg.inference.semantic import is_semantic_export

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    if is_semantic_export(args.model):  # a scene (semantic-segmentation) export: class maps
        return _run_semantic(args, formats, list_images(args.images))
    total = len(list_images(args.images))
    with progress_bar(total, "infer", unit="img", disable=args.no_progress) as bar:
        summary = run_inference(args.model, args.images, args.out, formats=formats, min_score=args.min_score,
                                label_map=args.label_map, batch_size=args.batch_size, progress=bar,
                                strict=args.strict, workers=args.workers).to_json()
    print(f"{summary['images']} images, {summary['detections']} detections (score >= {summary['min_score']}) "
          f"in {summary['seconds']:.1f} s ({summary['images_per_sec'] or 0:.2f} img/s, batch {summary['batch_size']})")
    for name, count in summary["detections_per_class"].items():
        print(f"  {name}: {count}")
    if summary["num_skipped"]:
        print(f"skipped {summary['num_skipped']} image(s):")
        for rec in summary["skipped"][:20]:
            print(f"  {rec['reason']}")
    if summary.get("labelme_instances_without_polygon"):
        print(f"{summary['labelme_instances_without_polygon']} instance(s) too small for a LabelMe polygon")
    for fmt, path in summary["outputs"].items():
        print(f"{fmt}: {path}")
    print(f"summary: {summary['out_dir']}/summary.json")
    return 0


def _run_semantic(args, formats, images) -> int:
    from tfod_seg.cli._common import progress_bar
    from tfod_seg.errors import UserError
    from tfod_seg.inference.semantic import run_semantic_inference

    if not set(formats) <= {"semantic", "overlay", "coco", "labelme"} or "semantic" not in formats:
        raise UserError(f"--model {args.model} is a scene (semantic-segmentation) export: it writes --format semantic "
                        "class maps (and overlays), not instances")
    with progress_bar(len(images), "infer", unit="img", disable=args.no_progress) as bar:
        summary = run_semantic_inference(args.model, images, args.out, progress=bar)
    print(f"{summary.images} images: class maps in {summary.outputs['semantic']} (pixel value = class id, "
          f"0 = background), overlays in {summary.outputs['overlay']}")
    for name, share in summary.pixel_share.items():
        print(f"  {name}: {100 * share:.1f}% of pixels")
    return 0
