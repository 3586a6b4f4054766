#!/usr/bin/env python
"""Training steps/s of the TFOD2 engine vs the Model Garden engine, in one run, on the same
records, image size and batch size (ResNet-50 + FPN Mask R-CNN templates of both engines).

    .venv/bin/python tools/bench_engines.py --image-size 256 --batch-size 2 --warmup 3 --steps 10

Needs the TFOD2 environment (`make tfod-env`). Prints each engine's steps/s after warm-up and
the ratio TFOD2 / Model Garden (the reference); `--json PATH` saves the full report.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    from tfod_seg.engines.tfod.bench import bench_engines

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--images", type=int, default=24, help="generated shapes images")
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the timing (tracing, first steps)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per engine")
    p.add_argument("--tfod-python", default=None)
    p.add_argument("--engines", default="tfod,garden")
    p.add_argument("--work-dir", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_engines_")
    r = bench_engines(work, image_size=args.image_size, batch_size=args.batch_size, num_images=args.images,
                      warmup_steps=args.warmup, timed_steps=args.steps, tfod_python=args.tfod_python,
                      engines=tuple(args.engines.split(",")))
    print(f"{args.image_size} px, batch {args.batch_size}, {args.steps} timed steps after {args.warmup} warm-up "
          f"(load average before {r['load_average_before'][0]:.1f})")
    for name, label in (("tfod", "TFOD2 (model_main_tf2, TF 2.15)"), ("garden", "Model Garden (TF 2.20)")):
        if name in r:
            rate = r[name]["steps_per_sec"]
            print(f"{label:34s} {rate:.3f} steps/s ({1 / rate:.2f} s/step), wall {r[name]['wall_seconds']:.0f} s"
                  if rate else f"{label:34s} no rate (too few steps reported)")
    if r["ratio_tfod_over_garden"]:
        print(f"ratio TFOD2 / Model Garden = {r['ratio_tfod_over_garden']:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
