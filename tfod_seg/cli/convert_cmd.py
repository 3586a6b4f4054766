"""`tfod-seg convert`: annotations (LabelMe, COCO, Pascal VOC) → sharded TFRecords."""

from __future__ import annotations

from tfod_seg.cli._common import add_max_pixels, add_strict, apply_max_pixels, progress_bar

NAME = "convert"
HELP = "annotations (LabelMe, COCO, VOC) → sharded TFRecords + label_map.pbtxt + report.json"
DESCRIPTION = """Convert annotated images to TFRecords with the TFOD2 feature keys and instance masks.

Writes OUT/train-NNNNN-of-NNNNN.tfrecord (and OUT/val-* when --val-fraction > 0),
OUT/label_map.pbtxt and OUT/report.json (every skipped image/instance with its reason).
Annotations are taken in the upright (EXIF-applied) image frame, as LabelMe and browsers show
images; JPEGs that need no rotation are stored byte for byte."""
EPILOG = """examples:
  tfod-seg convert --format labelme data/labelme --out records --val-fraction 0.2
  tfod-seg convert --format coco instances_train.json --image-dir images/ --out records --num-shards 8
  tfod-seg convert --format voc VOCdevkit/VOC2012 --out records --label-map label_map.pbtxt --strict
  tfod-seg convert --format coco ann.json --image-dir img --out rec --mask-type numerical --drop-empty
  tfod-seg convert --format coco instances.json --out records --runner direct --workers 2
  tfod-seg convert --format coco gs://b/instances.json --image-dir gs://b/img --out gs://b/records \
      --runner dataflow --beam-options='--project=P --region=us-central1 --temp_location=gs://b/tmp --setup_file=./setup.py'
"""


def add_arguments(parser) -> None:
    from tfod_seg.annotations import reader_names
    from tfod_seg.records import BEAM_RUNNERS

    parser.add_argument("--format", required=True, choices=reader_names(), help="annotation format")
    parser.add_argument("--task", choices=["instance", "semantic"], default="instance",
                        help="instance: Mask R-CNN records (one mask per object); semantic: scene records for a "
                             "semantic-segmentation model (one class-id PNG per image, Model Garden's keys)")
    parser.add_argument("input", metavar="INPUT",
                        help="LabelMe: folder of JSON files; COCO: instances JSON file; VOC: root with "
                             "Annotations/ JPEGImages/ (SegmentationObject/ SegmentationClass/)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--image-dir", help="COCO: folder the images' file_name is relative to "
                                            "(default: the JSON file's folder)")
    parser.add_argument("--label-map", help="label_map.pbtxt fixing class ids; other labels are skipped and reported "
                                            "(default: COCO categories in id order, else order of first appearance)")
    parser.add_argument("--num-shards", type=int, default=None,
                        help="train shards (default: one per 1000 images); val gets ceil(N * fraction)")
    parser.add_argument("--val-fraction", type=float, default=0.0, help="fraction of images for val (0: no val files)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the deterministic train/val split")
    parser.add_argument("--mask-type", choices=["png", "numerical"], default="png",
                        help="png: one 0/1 PNG per instance (TFOD2 PNG_MASKS); numerical: float list (NUMERICAL_MASKS)")
    parser.add_argument("--workers", type=int, default=None,
                        help="encoding processes (default: all cores); with --runner direct: DirectRunner workers")
    parser.add_argument("--runner", choices=list(BEAM_RUNNERS), default=None,
                        help="write with an Apache Beam pipeline on this runner (default: local worker processes); "
                             "same examples, shard names and report")
    parser.add_argument("--beam-options", default=None, metavar="'FLAGS'",
                        help="extra Beam pipeline flags as one quoted string after '=' (e.g. --beam-options='--project=P "
                             "--region=R --temp_location=gs://b/tmp --setup_file=./setup.py'); unknown flags are an error")
    parser.add_argument("--drop-empty", action="store_true",
                        help="drop images without annotations (default: keep them as negatives); counted in the report")
    parser.add_argument("--include-difficult", action="store_true",
                        help="VOC: keep objects marked difficult (default: skip and count them)")
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="LabelMe imagePath / COCO file_name may point outside INPUT / --image-dir")
    add_max_pixels(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_strict(parser)


def run(args) -> int:
    from tfod_seg import io
    from tfod_seg.annotations import open_reader
    from tfod_seg.errors import UserError
    from tfod_seg.records import get_writer
    from tfod_seg.records.convert import convert_dataset, format_summary
    from tfod_seg.records.metadata import REPORT_NAME

    if args.beam_options is not None and args.runner is None:
        raise UserError("--beam-options needs --runner (direct, dataflow, flink or spark)")
    if args.task == "semantic" and (args.runner is not None or args.mask_type != "png"):
        raise UserError("--task semantic writes with the local writer and PNG class maps: leave out --runner/--mask-type")
    apply_max_pixels(args)
    stream = open_reader(args.format, args.input, image_dir=args.image_dir, drop_empty=args.drop_empty,
                         include_difficult=args.include_difficult, allow_outside_root=args.allow_outside_root)
    if args.task == "semantic":
        return _run_semantic(args, stream)
    if args.runner is None:
        writer = get_writer("local", workers=args.workers)
    else:
        writer = get_writer("beam", runner=args.runner, options=args.beam_options, workers=args.workers)
    with progress_bar(getattr(stream, "total", None), "convert", unit="img", disable=args.quiet) as bar:
        report = convert_dataset(stream, args.out, label_map=args.label_map, num_shards=args.num_shards,
                                 val_fraction=args.val_fraction, seed=args.seed, mask_type=args.mask_type,
                                 strict=args.strict, progress=bar, writer=writer)
    print(format_summary(report))
    print(f"report: {io.join(args.out, REPORT_NAME)}")
    return 0


def _run_semantic(args, stream) -> int:
    from tfod_seg.records.semantic import convert_semantic

    with progress_bar(getattr(stream, "total", None), "convert", unit="img", disable=args.quiet) as bar:
        report = convert_semantic(stream, args.out, label_map=args.label_map, val_fraction=args.val_fraction,
                                  seed=args.seed, num_shards=args.num_shards, strict=args.strict, progress=bar)
    splits = ", ".join(f"{name} {split['images']}" for name, split in report.splits.items())
    shares = ", ".join(f"{n} {100 * report.pixel_share[n]:.1f}%" for n in report.classes.values())
    print(f"{report.images} images ({splits}); pixels per class: {shares}")
    if report.skipped:
        print(f"skipped {len(report.skipped)}: " + "; ".join(r["reason"] for r in report.skipped[:5]))
    print(f"label map: {report.label_map} (model num_classes {report.num_classes}: 0 = background)")
    return 0
