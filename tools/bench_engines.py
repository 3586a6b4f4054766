#!/usr/bin/env python
"""Training steps/s of the TFOD2 engine vs the Model Garden engine, in one run, on the same
records, image size and batch size (ResNet-50 + FPN Mask R-CNN templates of both engines).

    .venv/bin/python tools/bench_engines.py --image-size 256 --batch-size 2 --warmup 3 --steps 10

Needs the TFOD2 environment (`make tfod-env`). Prints each engine's steps/s after warm-up and
the ratio TFOD2 / Model Garden (the reference); `--json PATH` saves the full report.

How: one generated shapes dataset is converted, a TFOD2 config is written from
``pipelines/tfod_mask_rcnn_resnet50_fpn_640.config`` and a Model Garden experiment from
``pipelines/garden_maskrcnn_resnet50_fpn_640.yaml`` (both resized to the same ``image_size``);
each engine trains ``warmup_steps + timed_steps`` steps, one after the other (never
concurrently), and steps/s is measured on the wall clock between the progress event of step
``warmup_steps`` and the last one, so graph tracing and the first steps are left out. Both
engines report every step (TFOD2: the launcher's ``log_every=1``; Model Garden:
``trainer.steps_per_loop=1``).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfod_seg.annotations.labelme import read_labelme  # noqa: E402
from tfod_seg.config.generate import generate_config  # noqa: E402
from tfod_seg.demo.shapes import generate_shapes_dataset  # noqa: E402
from tfod_seg.engines.garden.train import train  # noqa: E402
from tfod_seg.engines.tfod import run  # noqa: E402
from tfod_seg.records.convert import convert_dataset  # noqa: E402

TFOD_TEMPLATE = "tfod_mask_rcnn_resnet50_fpn_640.config"
GARDEN_TEMPLATE = "garden_maskrcnn_resnet50_fpn_640.yaml"
NEVER = 10**9  # checkpoint interval that never triggers during a benchmark


def make_records(work_dir: str, *, num_images: int, image_size: int, seed: int = 0) -> str:
    """Shapes dataset (LabelMe) → TFRecords with PNG masks in ``work_dir/records``."""
    raw = os.path.join(work_dir, "shapes")
    records = os.path.join(work_dir, "records")
    info = generate_shapes_dataset(raw, num_images, image_size, seed)
    convert_dataset(read_labelme(raw), records, label_map=info["label_map"], val_fraction=0.2, seed=seed)
    return records


def _rate(marks: List[Tuple[int, float]], warmup_steps: int) -> Dict:
    """steps/s between the first mark at or after ``warmup_steps`` and the last mark."""
    timed = [(s, t) for s, t in marks if s >= warmup_steps]
    if len(timed) < 2:
        return {"steps_per_sec": None, "timed_steps": 0, "timed_seconds": None}
    (s0, t0), (s1, t1) = timed[0], timed[-1]
    return {"steps_per_sec": (s1 - s0) / (t1 - t0), "timed_steps": s1 - s0, "timed_seconds": t1 - t0}


def _configs(work_dir: str, records: str, *, image_size: int, batch_size: int, steps: int) -> Tuple[str, str]:
    common = dict(label_map=os.path.join(records, "label_map.pbtxt"), train=os.path.join(records, "train-*.tfrecord"),
                  val=os.path.join(records, "val-*.tfrecord"), batch_size=batch_size, steps=steps,
                  image_size=image_size, augment="none")
    tfod = generate_config(TFOD_TEMPLATE, model_dir=os.path.join(work_dir, "tfod_run"),
                           out=os.path.join(work_dir, "pipeline.config"), **common)
    garden = generate_config(GARDEN_TEMPLATE, model_dir=os.path.join(work_dir, "garden_run"),
                             out=os.path.join(work_dir, "garden.yaml"),
                             overrides=["trainer.steps_per_loop=1", "trainer.summary_interval=1"], **common)
    return tfod, garden


def bench_engines(work_dir: str, *, image_size: int = 256, batch_size: int = 2, num_images: int = 24,
                  warmup_steps: int = 3, timed_steps: int = 10, tfod_python: Optional[str] = None,
                  engines: Tuple[str, ...] = ("tfod", "garden")) -> Dict:
    """Train both engines on the same records; return steps/s of each and their ratio."""
    os.makedirs(work_dir, exist_ok=True)
    records = make_records(work_dir, num_images=num_images, image_size=image_size)
    steps = warmup_steps + timed_steps
    tfod_config, garden_config = _configs(work_dir, records, image_size=image_size, batch_size=batch_size,
                                          steps=steps)
    report: Dict = {"image_size": image_size, "batch_size": batch_size, "warmup_steps": warmup_steps,
                    "timed_steps": timed_steps, "records": records, "load_average_before": os.getloadavg()}
    if "tfod" in engines:
        marks: List[Tuple[int, float]] = []
        t0 = time.monotonic()
        run("train", {"pipeline_config_path": tfod_config, "model_dir": os.path.join(work_dir, "tfod_run"),
                      "num_train_steps": steps, "checkpoint_every_n": NEVER, "log_every": 1},
            tfod_python=tfod_python, on_progress=lambda e: marks.append((e.step, time.monotonic())))
        report["tfod"] = {"config": tfod_config, "wall_seconds": time.monotonic() - t0, **_rate(marks, warmup_steps)}
    if "garden" in engines:
        marks = []
        t0 = time.monotonic()
        train(garden_config, os.path.join(work_dir, "garden_run"), num_train_steps=steps, checkpoint_every_n=NEVER,
              on_progress=lambda e: marks.append((e.step, time.monotonic())))
        report["garden"] = {"config": garden_config, "wall_seconds": time.monotonic() - t0,
                            **_rate(marks, warmup_steps)}
    tfod_rate = report.get("tfod", {}).get("steps_per_sec")
    garden_rate = report.get("garden", {}).get("steps_per_sec")
    report["ratio_tfod_over_garden"] = tfod_rate / garden_rate if tfod_rate and garden_rate else None
    report["load_average_after"] = os.getloadavg()
    return report


def main() -> int:
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
