#!/usr/bin/env python
"""Training speed: `tfod-seg train` vs `python -m official.vision.train` on the same config, and
whether the input pipeline keeps up (step time on real records vs on one cached batch).

    .venv/bin/python tools/bench_train.py --config out/garden.yaml --steps 100 --repeats 2

The config must be a complete Model Garden experiment YAML with input paths (e.g. written by
`tfod-seg config --template pipelines/garden_cpu_demo.yaml ...`). Prints a JSON report; the
wrapper cost is (Model Garden steps/s / tfod-seg steps/s - 1), target <= 3 %.

* `time_cli_runs`: the same experiment trained by ``tfod-seg train`` and by Model Garden's own
  ``python -m official.vision.train`` (separate processes, alternating), steady-state steps/s of
  each read from their per-loop logs (the first loop, which includes tracing, is left out).
* `input_pipeline_check`: in one process, the train step time on the real records vs on one
  cached batch (``dataset.take(1).cache().repeat()``), plus the input pipeline alone; if the
  real-records step is not slower than the cached one, the input pipeline keeps up.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfod_seg.config.garden import read_header  # noqa: E402
from tfod_seg.engines.garden import runtime  # noqa: E402

_MG_RATE = re.compile(r"train \| step:\s*(\d+) \| steps/sec:\s*([0-9.]+)")
_OUR_RATE = re.compile(r"step (\d+)/\d+ .*?([0-9.]+) steps/s")


def _steady(rates: List[float]) -> Optional[float]:
    rates = rates[1:]  # the first loop includes tracing/compilation
    return statistics.median(rates) if rates else None


def run_tfod_seg(config: str, model_dir: str, steps: int, strategy: str = "cpu") -> Dict:
    cmd = [sys.executable, "-m", "tfod_seg", "train", "--pipeline_config_path", config, "--model_dir", model_dir,
           "--num_train_steps", str(steps), "--strategy", strategy]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"tfod-seg train failed ({p.returncode}):\n{p.stderr[-3000:]}")
    rates = [float(m.group(2)) for m in _OUR_RATE.finditer(p.stderr)]
    return {"runner": "tfod-seg train", "wall_seconds": wall, "loop_rates": rates, "steps_per_sec": _steady(rates)}


def run_model_garden(config: str, model_dir: str, steps: int, experiment: str) -> Dict:
    # Same strategy as `tfod-seg train --strategy cpu` (OneDeviceStrategy on the CPU).
    cmd = [sys.executable, "-m", "official.vision.train", f"--experiment={experiment}", "--mode=train",
           f"--model_dir={model_dir}", f"--config_file={config}",
           f"--params_override=trainer.train_steps={steps},runtime.distribution_strategy=one_device,"
           f"runtime.num_gpus=0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"official.vision.train failed ({p.returncode}):\n{p.stderr[-3000:]}")
    # Orbit logs each line twice (absl + print); keep one per step.
    by_step = {}
    for m in _MG_RATE.finditer(p.stderr + p.stdout):
        by_step.setdefault(int(m.group(1)), float(m.group(2)))
    rates = [by_step[k] for k in sorted(by_step)]
    return {"runner": "official.vision.train", "wall_seconds": wall, "loop_rates": rates,
            "steps_per_sec": _steady(rates)}


def time_cli_runs(config: str, work_dir: str, steps: int, repeats: int = 1) -> Dict:
    """Alternate ``tfod-seg train`` and ``official.vision.train`` ``repeats`` times each."""
    experiment = read_header(config)
    ours, theirs = [], []
    for i in range(repeats):
        ours.append(run_tfod_seg(config, os.path.join(work_dir, f"tfod_seg_{i}"), steps))
        theirs.append(run_model_garden(config, os.path.join(work_dir, f"garden_{i}"), steps, experiment))
    a = statistics.median(r["steps_per_sec"] for r in ours)
    b = statistics.median(r["steps_per_sec"] for r in theirs)
    return {"tfod_seg": ours, "model_garden": theirs, "tfod_seg_steps_per_sec": a,
            "model_garden_steps_per_sec": b, "ratio": a / b, "wrapper_cost_percent": (b / a - 1.0) * 100.0}


def input_pipeline_check(config: str, steps: int = 30, warmup: int = 5) -> Dict:
    """Train-step time on real records vs one cached batch, and the input pipeline alone."""
    _, params = runtime.load_params(config)
    strategy, _ = runtime.make_strategy(params, "cpu")
    import tensorflow as tf
    from official.core import task_factory, train_utils

    params.lock()
    with strategy.scope():
        task = task_factory.get_task(params.task, logging_dir=None)
        trainer = train_utils.create_trainer(params, task, train=True, evaluate=False)
    data_cfg = params.task.train_data

    def real(ctx=None):
        return task.build_inputs(data_cfg, ctx)

    def cached(ctx=None):
        return task.build_inputs(data_cfg, ctx).take(1).cache().repeat()

    def time_train(fn):
        trainer.train_dataset = strategy.distribute_datasets_from_function(fn)
        trainer.train(tf.constant(warmup, tf.int32))
        t0 = time.perf_counter()
        trainer.train(tf.constant(steps, tf.int32))
        return (time.perf_counter() - t0) / steps

    cached_step = time_train(cached)
    real_step = time_train(real)
    ds = real()
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(steps):
        next(it)
    input_only = (time.perf_counter() - t0) / steps
    return {"step_seconds_real_records": real_step, "step_seconds_cached_batch": cached_step,
            "input_pipeline_seconds_per_batch": input_only,
            "input_slowdown_percent": (real_step / cached_step - 1.0) * 100.0,
            "keeps_up": real_step <= cached_step * 1.05}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int, default=100, help="total steps per training run")
    p.add_argument("--repeats", type=int, default=1, help="alternating runs of each trainer")
    p.add_argument("--pipeline-steps", type=int, default=30, help="timed steps for the input-pipeline check")
    p.add_argument("--work-dir", default=None)
    p.add_argument("--skip-cli", action="store_true")
    p.add_argument("--skip-pipeline", action="store_true")
    args = p.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_train_")
    report = {"config": args.config, "steps": args.steps, "load_average_before": os.getloadavg()}
    if not args.skip_cli:
        r = time_cli_runs(args.config, work, args.steps, args.repeats)
        report["cli"] = r
        print(f"tfod-seg train        {r['tfod_seg_steps_per_sec']:.3f} steps/s")
        print(f"official.vision.train {r['model_garden_steps_per_sec']:.3f} steps/s")
        print(f"ratio tfod-seg / Model Garden = {r['ratio']:.3f}  (wrapper cost {r['wrapper_cost_percent']:+.1f} %)")
    if not args.skip_pipeline:
        r = input_pipeline_check(args.config, steps=args.pipeline_steps)
        report["input_pipeline"] = r
        print(f"step on real records  {r['step_seconds_real_records'] * 1000:.0f} ms")
        print(f"step on cached batch  {r['step_seconds_cached_batch'] * 1000:.0f} ms")
        print(f"input pipeline alone  {r['input_pipeline_seconds_per_batch'] * 1000:.0f} ms/batch")
        print(f"input pipeline keeps up: {'yes' if r['keeps_up'] else 'NO'} "
              f"({r['input_slowdown_percent']:+.1f} % step time on real records)")
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
