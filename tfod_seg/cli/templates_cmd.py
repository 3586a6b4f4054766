"""`tfod-seg templates`: list the Mask R-CNN config templates shipped in pipelines/."""

from __future__ import annotations

NAME = "templates"
HELP = "list the Mask R-CNN config templates (one line each)"
DESCRIPTION = """List the templates in pipelines/ with their engine and what each is for, read from
the template's header comment. Use a name with `tfod-seg config --template NAME`."""
EPILOG = """examples:
  tfod-seg templates
  tfod-seg templates --details          # the full header of each: purpose, cost, checkpoints
"""


def add_arguments(parser) -> None:
    parser.add_argument("--details", action="store_true", help="print each template's whole header")
    parser.add_argument("--dir", default=None, help="template folder (default: the shipped pipelines/)")


def run(args) -> int:
    from tfod_seg import io
    from tfod_seg.config.templates import describe_templates
    from tfod_seg.errors import UserError

    if args.dir is not None and not io.isdir(args.dir):
        raise UserError(f"{args.dir}: --dir is not a folder of templates")
    rows = describe_templates(args.dir)
    if not rows:
        print("no templates found")
        return 1
    width = max(len(r.name) for r in rows)
    for r in rows:
        print(f"{r.name:<{width}}  {r.engine:<6}  {r.summary}")
        if args.details:
            for line in r.header:
                print(f"{'':<{width}}          {line}")
            print()
    return 0
