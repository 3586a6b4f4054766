"""`tfod-seg convert`: annotations (LabelMe, COCO, Pascal VOC) → sharded TFRecords."""

from __future__ import annotations

from tfod_seg.cli._common import add_strict, progress_bar

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
"""


def add_arguments(parser) -> None:
    parser.add_argument("--format", required=True, choices=["labelme", "coco", "voc"], help="annotation format")
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
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: all cores)")
    parser.add_argument("--drop-empty", action="store_true",
                        help="drop images without annotations (default: keep them as negatives); counted in the report")
    parser.add_argument("--include-difficult", action="store_true",
                        help="VOC: keep objects marked difficult (default: skip and count them)")
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="LabelMe: accept imagePath values that point outside INPUT")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_strict(parser)


def open_stream(fmt: str, input_path: str, *, image_dir=None, drop_empty=False, include_difficult=False,
                allow_outside_root=False):
    """The reader for ``fmt`` (shared with `tfod-seg labelmap`)."""
    if fmt == "labelme":
        from tfod_seg.annotations.labelme import read_labelme

        return read_labelme(input_path, allow_outside_root=allow_outside_root, drop_empty=drop_empty)
    if fmt == "coco":
        from tfod_seg import io
        from tfod_seg.annotations.coco import read_coco

        return read_coco(input_path, image_dir or io.dirname(io.abspath(input_path)), drop_empty=drop_empty)
    from tfod_seg.annotations.voc import read_voc

    return read_voc(input_path, include_difficult=include_difficult, drop_empty=drop_empty)


def run(args) -> int:
    from tfod_seg import io
    from tfod_seg.records.convert import convert_dataset, format_summary
    from tfod_seg.records.metadata import REPORT_NAME

    stream = open_stream(args.format, args.input, image_dir=args.image_dir, drop_empty=args.drop_empty,
                         include_difficult=args.include_difficult, allow_outside_root=args.allow_outside_root)
    bar = progress_bar(getattr(stream, "total", None), "convert", unit="img", disable=args.quiet)
    try:
        report = convert_dataset(stream, args.out, label_map=args.label_map, num_shards=args.num_shards,
                                 val_fraction=args.val_fraction, seed=args.seed, mask_type=args.mask_type,
                                 workers=args.workers, strict=args.strict, progress=bar)
    finally:
        bar.close()
    print(format_summary(report))
    print(f"report: {io.join(args.out, REPORT_NAME)}")
    return 0
