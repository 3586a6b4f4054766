"""`tfod-seg inspect`: read TFRecords back, check them, print statistics, render overlays."""

from __future__ import annotations

NAME = "inspect"
HELP = "check TFRecords against what the decoders expect, print statistics, render overlays"
DESCRIPTION = """Read TFRecords and check every example: mask count = box count, mask size = image
size, boxes inside [0, 1], labels in the label map, binary masks, image decodes. Prints
statistics (instances per class, mask sizes, image sizes). Exit status 1 when any check fails."""
EPILOG = """examples:
  tfod-seg inspect records/train-*.tfrecord
  tfod-seg inspect records/ --label-map records/label_map.pbtxt
  tfod-seg inspect 'records/val-*.tfrecord' --render 8 --out overlays/
  tfod-seg inspect records/ --json stats.json
"""


def add_arguments(parser) -> None:
    parser.add_argument("records", nargs="+", metavar="RECORDS", help="TFRecord files, globs, or folders")
    parser.add_argument("--label-map", help="check labels against this label_map.pbtxt")
    parser.add_argument("--render", type=int, default=0, metavar="N", help="write overlays of the first N examples")
    parser.add_argument("--out", help="folder for --render overlays")
    parser.add_argument("--json", help="also write the statistics and problems to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from tfod_seg import io
    from tfod_seg.cli._common import progress_bar
    from tfod_seg.errors import UserError
    from tfod_seg.labelmap import read_label_map
    from tfod_seg.records.inspect import format_inspection, inspect_records
    from tfod_seg.records.reader import expand_patterns

    if args.render and not args.out:
        raise UserError("--render N needs --out DIR (where to write the overlays)")
    if args.json:
        io.check_output_file(args.json, "--json file")
    if args.render:
        io.check_output_dir(args.out, "--out folder")
    files = expand_patterns(args.records)
    lm = read_label_map(args.label_map) if args.label_map else None
    bar = progress_bar(None, "inspect", unit="rec", disable=args.quiet)
    try:
        stats = inspect_records(files, label_map=lm, render=args.render, out_dir=args.out, progress=bar)
    finally:
        bar.close()
    print(format_inspection(stats))
    if args.json:
        io.atomic_write_json(args.json, stats, what="--json file")
    return 1 if stats["num_problems"] else 0
