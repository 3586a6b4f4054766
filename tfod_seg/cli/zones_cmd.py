"""`tfod-seg zones`: measure detections' masks against zones (no-parking, sidewalk, ...) and
flag rule violations."""

from __future__ import annotations

NAME = "zones"
HELP = "flag detections whose MASK lies in a zone (e.g. cars in no-parking zones) by rules"
DESCRIPTION = """\
For every detection, the fraction of its instance MASK (pixels, not box) inside each zone, and
a verdict from the rules: a detection for which any --rule holds is a violation.

Zones: --zones FRAME.json, polygons drawn once in LabelMe on a frame of a fixed camera (labels
such as no_parking, sidewalk, parking; shapes with one label are one zone). Images of another
size are served by scaling the zones; a different aspect ratio is refused.
Or --scene-model EXPORT: a semantic-segmentation export (`tfod-seg export` of a
garden_deeplab* template) predicts the zone pixels of every image (moving cameras).

Detections: --model EXPORT --images PATH (runs the Mask R-CNN), or predictions already made:
--predictions RESULTS.json (`tfod-seg infer`'s coco/results.json) --gt COCO.json (names the
images and their sizes, e.g. infer's coco/images.json) [--images DIR, for overlays].

Rules: CLASS:ZONE OP FRACTION with OP one of >=, >, <=, <, FRACTION 0..1 or a percentage;
CLASS '*' is any class. Outputs under --out:

  violations.csv / .json   image, detection, class, score, zone, overlap, rule, verdict
                           (one row per detection and zone; verdict is violation or ok)
  detections.json          each detection: box, mask area, overlap with every zone, verdict
  zones_summary.csv        per zone: share of the image, detections touching it, violations
  overlays/<stem>.png      zones tinted, violators outlined in red with their rule
  summary.json             counts, violations per rule and per zone
"""
EPILOG = """\
examples:
  tfod-seg zones --zones cam7/frame.json --model exported/ --images cam7/frames/ \\
      --rule "car:no_parking>=0.3" --rule "car:sidewalk>=0.2" --out cam7/zones/
  tfod-seg zones --zones cam7/frame.json --predictions preds/coco/results.json \\
      --gt preds/coco/images.json --rule "car:no_parking>=30%" --out cam7/zones/
  tfod-seg zones --scene-model scene_export/ --model exported/ --images street/ \\
      --rule "car:sidewalk>=0.2" --out street/zones/
"""


def add_arguments(parser) -> None:
    zones = parser.add_mutually_exclusive_group(required=True)
    zones.add_argument("--zones", metavar="FRAME.json", help="LabelMe JSON with the zone polygons of a fixed camera")
    zones.add_argument("--scene-model", metavar="EXPORT",
                       help="semantic-segmentation export predicting the zones of each image")
    parser.add_argument("--model", metavar="EXPORT", help="instance-segmentation export to run over --images")
    parser.add_argument("--images", nargs="+", metavar="PATH|DIR|GLOB",
                        help="images for --model; with --predictions, the folder the --gt file names are in")
    parser.add_argument("--predictions", metavar="RESULTS.json", help="COCO results with RLE masks (infer's output)")
    parser.add_argument("--gt", metavar="COCO.json", help="COCO JSON naming the --predictions' images and sizes")
    parser.add_argument("--rule", action="append", required=True, metavar="CLASS:ZONE>=FRACTION",
                        help="a rule; repeat for several (a detection breaking any of them is a violation)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (local or gs://...)")
    parser.add_argument("--min-score", type=float, default=0.5, help="ignore detections below this score")
    parser.add_argument("--label-map", metavar="PBTXT",
                        help="label map of --model (default: label_map.pbtxt beside the export)")
    parser.add_argument("--no-overlays", action="store_true", help="do not draw overlays")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _source(args):
    from tfod_seg.errors import UserError
    from tfod_seg.zones.sources import model_source, predictions_source

    if not 0.0 <= args.min_score <= 1.0:
        raise UserError(f"--min-score {args.min_score}: expected a value in [0, 1]")
    if args.model and args.predictions:
        raise UserError("give either --model (with --images) or --predictions (with --gt), not both")
    if args.model:
        if not args.images:
            raise UserError("--model needs --images (the images to run it over)")
        return model_source(args.model, args.images, label_map=args.label_map, min_score=args.min_score,
                            need_pixels=not args.no_overlays or bool(args.scene_model))
    if args.predictions:
        if not args.gt:
            raise UserError("--predictions needs --gt (a COCO JSON naming the images and their sizes)")
        if args.images and len(args.images) > 1:
            raise UserError("with --predictions, --images is ONE folder (where the --gt file names are)")
        return predictions_source(args.predictions, args.gt, images_dir=args.images[0] if args.images else None,
                                  min_score=args.min_score)
    raise UserError("no detections: give --model EXPORT --images PATH, or --predictions RESULTS.json --gt COCO.json")


def _zones(args):
    if args.zones:
        from tfod_seg.zones.maps import load_drawn_zones

        return load_drawn_zones(args.zones)
    from tfod_seg.zones.scene import SceneZones

    return SceneZones(args.scene_model)


def run(args) -> int:
    from tfod_seg.cli._common import progress_bar
    from tfod_seg.zones.rules import parse_rules
    from tfod_seg.zones.run import run_zones

    parse_rules(args.rule)  # a malformed --rule is a usage error: report it before reading any file
    zones = _zones(args)
    source = _source(args)
    with progress_bar(source.num_images, "zones", unit="img", disable=args.no_progress) as bar:
        summary = run_zones(zones, source, args.rule, args.out, overlays=not args.no_overlays, progress=bar)
    print(f"{summary.images} images, {summary.detections} detections, {summary.violations} violation(s) "
          f"({summary.zones}; {summary.detections_from})")
    for rule, count in summary.violations_per_rule.items():
        print(f"  {rule}: {count}")
    print(f"  {'zone':<16} {'image %':>8} {'touching':>9} {'inside':>7} {'violations':>11}")
    for z in summary.per_zone:
        print(f"  {z['zone']:<16} {100 * z['mean_image_fraction']:>7.1f}% {z['detections_touching']:>9} "
              f"{z['detections_mostly_inside']:>7} {z['violations']:>11}")
    for note in summary.notes[:10]:
        print(f"note: {note}")
    if summary.skipped_shapes:
        print(f"{len(summary.skipped_shapes)} shape(s) of the zone drawing skipped:")
        for rec in summary.skipped_shapes[:10]:
            print(f"  {rec['reason']}")
    print(f"violations: {summary.outputs['violations.csv']}")
    print(f"summary: {summary.outputs['summary']}")
    return 0
