"""Train a variant of the CPU demo template for a fixed number of steps and report its cost and accuracy.

Usage::

    .venv/bin/python tools/tune_demo.py NAME IMAGE_SIZE STEPS [--root DIR] [KEY=VALUE ...]

Generates (once per image size, under ``--root``) the demo's dataset: 500 shape images, 20 % held out, converted
with the real converter; writes a config from ``pipelines/garden_cpu_demo.yaml`` with ``--steps STEPS``, the input
size and the ``KEY=VALUE`` overrides (``tfod-seg config --set`` syntax); trains it with ``tfod-seg train``'s library
call and evaluates the last checkpoint on the held-out split. Prints one JSON line (and appends it to
``ROOT/results.jsonl``): CPU seconds per training step after the first loop (``cpu_s_per_step``: the process's
user + system time, which depends much less on other jobs than wall time does), the CPU seconds of warm-up
(building and tracing the model plus the first loop), steps/s, mask and box AP, and the load average.

This is how the demo template was chosen (docs/benchmarks.md, "CPU demo template"): the demo trains under a time
budget, so what matters is mask AP per CPU second, not per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _dataset(root: str, size: int) -> str:
    """The demo's dataset at ``size`` px, made once under ``root`` (`bench_engines.make_records`)."""
    from bench_engines import make_records

    data = os.path.join(root, f"data{size}")
    records = os.path.join(data, "records")
    if not os.path.exists(os.path.join(records, "report.json")):
        make_records(data, num_images=500, image_size=size, seed=0)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("image_size", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides")
    parser.add_argument("--root", default="/tmp/tune_demo")
    args = parser.parse_args()
    from tfod_seg.config.generate import generate_config
    from tfod_seg.engines.garden import train as train_mod

    records = _dataset(args.root, args.image_size)
    out = os.path.join(args.root, args.name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    overrides = ["trainer.steps_per_loop=10", "trainer.summary_interval=10", *args.overrides]
    config = generate_config("garden_cpu_demo", label_map=os.path.join(records, "label_map.pbtxt"),
                             train=os.path.join(records, "train-*.tfrecord"), val=os.path.join(records, "val-*.tfrecord"),
                             model_dir=os.path.join(out, "model"), out=os.path.join(out, "pipeline.yaml"),
                             steps=args.steps, image_size=args.image_size, target="cpu", overrides=overrides)
    events, t0, c0 = [], time.perf_counter(), _cpu()
    result = train_mod.train(config, os.path.join(out, "model"), num_train_steps=args.steps, eval_every=10**9,
                             on_progress=lambda e: events.append((time.perf_counter() - t0, e.step, _cpu() - c0)))
    stepped = [e for e in events if e[1] > 0]
    first, last = stepped[0], stepped[-1]
    span = last[1] - first[1]
    metrics = (result.best or {}).get("metrics", {})
    report = {
        "name": args.name, "image_size": args.image_size, "steps": args.steps, "overrides": args.overrides,
        "cpu_s_per_step": round((last[2] - first[2]) / span, 3) if span else None,
        "cpu_s_warmup_and_first_loop": round(first[2], 1), "first_loop_step": first[1],
        "steps_per_s": round(span / (last[0] - first[0]), 3) if span else None,
        "mask_AP": metrics.get("mask_AP"), "box_AP": metrics.get("box_AP"),
        "load_average": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(report))
    with open(os.path.join(args.root, "results.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
