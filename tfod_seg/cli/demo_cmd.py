"""`tfod-seg demo`: the whole pipeline end to end on a generated shapes dataset."""

from __future__ import annotations

import sys
import time

NAME = "demo"
HELP = "end-to-end demo: generate shapes, convert, config, train, evaluate, export, infer, score"
DESCRIPTION = """\
Run every stage of tfod-seg on a generated LabelMe dataset of shapes (circles, squares,
triangles; overlaps and occlusions; varied sizes and backgrounds): convert to TFRecords,
generate a Model Garden config from pipelines/garden_cpu_demo.yaml, train a small Mask R-CNN
from scratch on CPU, evaluate it, export it with the TFOD2 signature, run the export on the
held-out images and score it (COCO box and mask AP, precision-recall curves).

Writes under --out: dataset/, records/, pipeline.yaml, model/, exported/, predictions/
(overlays), score/ (PR curves, per-class table), report.md and metrics.json (box_AP, mask_AP,
mask_AP50, wall_seconds, per-stage seconds). Prints mask AP and wall time at the end.
Nothing is downloaded. The demo keeps to --time_budget (8 minutes by default) on any machine:
training gets what the budget leaves after the other stages, and its learning-rate schedule is
fitted to the steps it can run (a slower machine trains fewer steps; a fast one stops at
--num-steps)."""
EPILOG = """\
examples:
  tfod-seg demo --out demo_out                 # the full demo (what `make demo` runs)
  tfod-seg demo --out /tmp/quick --num-images 40 --num-steps 20   # a quick smoke test (low AP)
  tfod-seg demo --out demo_out --time_budget 15m   # more time: more steps, up to --num-steps"""


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (new, empty, or an earlier demo output, whose demo files are replaced)")
    parser.add_argument("--num-images", type=int, default=None, metavar="N",
                        help="shape images to generate (default: the demo's tuned number)")
    parser.add_argument("--num-steps", type=int, default=None, metavar="N",
                        help="most training steps (default: the demo's; the time budget may stop earlier)")
    parser.add_argument("--time_budget", default=None, metavar="DURATION",
                        help="wall time of the whole demo, e.g. 8m (default), 5m30s, 900 (seconds)")
    parser.add_argument("--seed", type=int, default=0, help="dataset and split seed")
    parser.add_argument("--use-case", choices=["shapes", "parking"], default="shapes",
                        help="shapes: the Mask R-CNN pipeline on generated shapes; parking: street scenes, a scene "
                             "model for the zones + a car Mask R-CNN, `zones` rules, violation precision/recall "
                             "(docs/parking.md; default budget 9m30s)")


class _StageLines:
    """`progress` for `run_demo`: one line per stage on stderr (`[3/9] train ...`)."""

    def __init__(self, total: int, train_display=None):
        self.total, self.done, self.name, self.t = total, 0, "", time.perf_counter()
        self.train_display = train_display

    def set_postfix_str(self, name: str) -> None:
        self.name, self.t = name, time.perf_counter()
        print(f"[{self.done + 1}/{self.total}] {name} ...", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        if self.train_display is not None:
            self.train_display.close()  # the training bar ends with its stage
        self.done += n
        print(f"[{self.done}/{self.total}] {self.name} done in {time.perf_counter() - self.t:.1f} s",
              file=sys.stderr, flush=True)


def _demo_kwargs(args) -> dict:
    kwargs = {"seed": args.seed}
    for name in ("num_images", "num_steps", "time_budget"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    return kwargs


def _print_result(metrics: dict) -> None:
    minutes, seconds = divmod(metrics["wall_seconds"], 60)
    print(f"report: {metrics['paths']['report']}")
    print(f"box AP {metrics.get('box_AP', -1):.3f}  mask AP {metrics.get('mask_AP', -1):.3f}  "
          f"mask AP50 {metrics.get('mask_AP50', -1):.3f}  (COCO @[.5:.95], {metrics['num_val_images']} held-out images)")
    print(f"wall time {int(minutes)} min {seconds:.0f} s ({metrics['wall_seconds']:.1f} s)")


def _run_parking(args) -> int:
    from tfod_seg.cli._train_display import TrainDisplay
    from tfod_seg.demo import parking

    kwargs = {k: v for k, v in _demo_kwargs(args).items() if k != "num_steps"}
    with TrainDisplay("train") as display:
        m = parking.run_parking(args.out, progress=_StageLines(len(parking.STAGES), display),
                                on_train_progress=display, **kwargs)
    print(f"report: {m['paths']['report']}")
    print(f"scene mIoU {m['mIoU']:.3f}  car mask AP {m['mask_AP'] or 0:.3f}  violations: precision "
          f"{m['precision'] if m['precision'] is not None else 'n/a'} recall {m['recall'] if m['recall'] is not None else 'n/a'} "
          f"({m['violations_true']} true, {m['violations_predicted']} flagged)  wall time {m['wall_seconds']:.0f} s")
    return 0


def run(args) -> int:
    from tfod_seg.cli._train_display import TrainDisplay, format_eta

    if args.use_case == "parking":
        return _run_parking(args)
    from tfod_seg.demo import run as demo
    from tfod_seg.engines.budget import parse_duration

    kwargs = _demo_kwargs(args)
    budget = parse_duration(kwargs.get("time_budget", demo.TIME_BUDGET), "--time_budget")
    print(f"tfod-seg demo: time budget {format_eta(budget)} for all {len(demo.STAGES)} stages "
          f"(--time_budget); training adapts to it", file=sys.stderr, flush=True)
    with TrainDisplay("train") as display:
        metrics = demo.run_demo(args.out, progress=_StageLines(len(demo.STAGES), display), on_train_progress=display,
                                **kwargs)
    _print_result(metrics)
    return 0
