"""`tfod-seg labelmap`: build a label_map.pbtxt from annotations or a class list, or check one."""

from __future__ import annotations

NAME = "labelmap"
HELP = "build label_map.pbtxt from annotations or a class list (ids 1..N), or check one"
DESCRIPTION = """Write a TFOD2 label map (item { id: 1 name: 'car' }) with contiguous ids 1..N.

Sources: --classes (comma-separated, order kept), --classes-file (one name per line, LabelMe's
labels.txt works: __ignore__/_background_ are skipped), or annotations (--format + INPUT; names
sorted alphabetically, COCO keeps its category order). --check validates an existing file and
reports duplicates and gaps with the line number."""
EPILOG = """examples:
  tfod-seg labelmap --classes cat,dog,ball --out label_map.pbtxt
  tfod-seg labelmap --classes-file labels.txt --out label_map.pbtxt
  tfod-seg labelmap --format labelme data/labelme --out label_map.pbtxt
  tfod-seg labelmap --format coco instances.json --out label_map.pbtxt
  tfod-seg labelmap --check label_maps/coco_label_map.pbtxt
"""


def add_arguments(parser) -> None:
    from tfod_seg.annotations import reader_names

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--classes", help="comma-separated class names, in id order")
    src.add_argument("--classes-file", help="text file, one class name per line")
    src.add_argument("--format", choices=reader_names(), help="read class names from annotations INPUT")
    src.add_argument("--check", metavar="LABEL_MAP", help="validate a label_map.pbtxt and print it")
    parser.add_argument("input", nargs="?", metavar="INPUT", help="annotations (with --format)")
    parser.add_argument("--image-dir", help="COCO: image folder (only needed to locate images; not read)")
    parser.add_argument("--out", help="label map to write")
    parser.add_argument("--display-names", action="store_true",
                        help="also write display_name (the name with its first letter capitalised)")
    parser.add_argument("--allow-gaps", action="store_true", help="--check: accept non-contiguous ids")


def run(args) -> int:
    from tfod_seg import io
    from tfod_seg.annotations import open_reader
    from tfod_seg.errors import UserError
    from tfod_seg.labelmap import LabelMap, collect_label_names, read_class_list, read_label_map

    if args.check:
        lm = read_label_map(args.check, allow_gaps=args.allow_gaps)
        print(f"{args.check}: {len(lm)} classes, ids {lm.items[0].id}..{lm.max_id}, OK")
        return 0
    if not args.out:
        raise UserError("--out is required (where to write the label map)")
    io.check_output_file(args.out, "--out label map")
    if args.classes is not None:
        names = [n.strip() for n in args.classes.split(",") if n.strip()]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UserError(f"--classes: duplicate class names {dup}")
    elif args.classes_file:
        names = read_class_list(args.classes_file)
    else:
        if not args.input:
            raise UserError("--format needs INPUT (the annotations to read class names from)")
        stream = open_reader(args.format, args.input, image_dir=args.image_dir)
        names = collect_label_names(stream)
        for rec in getattr(stream, "skipped", [])[:5]:
            print(f"note: skipped {rec['file']}: {rec['reason']}")
    if not names:
        raise UserError("no class names found")
    display = {n: n[:1].upper() + n[1:] for n in names} if args.display_names else None
    lm = LabelMap.from_names(names, display)
    lm.write(args.out)
    print(f"wrote {args.out}: {len(lm)} classes ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")
    return 0
