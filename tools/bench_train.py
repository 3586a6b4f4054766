#!/usr/bin/env python
"""Training speed: `tfod-seg train` vs `python -m official.vision.train` on the same config, and
whether the input pipeline keeps up (step time on real records vs on batches cached in memory).

    .venv/bin/python tools/bench_train.py --config out/garden.yaml --steps 150 --repeats 3 [--strategy gpu]

The config must be a complete Model Garden experiment YAML with input paths (e.g. written by
`tfod-seg config --template pipelines/garden_cpu_demo.yaml ...`). Prints a JSON report; the
wrapper cost is (Model Garden steps/s / tfod-seg steps/s - 1), target <= 3 %.

* `time_cli_runs`: the same experiment trained by ``tfod-seg train`` and by Model Garden's own
  ``python -m official.vision.train`` (separate processes, ``--repeats`` pairs in ABBA order),
  steady-state steps/s of each from the time stamps of Orbit's per-loop ``train | step: N`` log
  lines (tfod-seg writes them to ``MODEL_DIR/logs/train.log``, Model Garden's runner to stderr),
  from the end of the first loop (tracing, start-up) to the last;
  median, min, max and spread of each runner and the ratio of each pair, so noise on a shared
  machine shows instead of passing for a result.
* `input_pipeline_check`: in one process, the train step time on the real records vs on
  batches cached in memory (``dataset.take(100).cache().repeat()``) in ``--pipeline-pairs`` pairs
  of chunks of ``--pipeline-steps`` steps, the order alternating per pair (both pipelines stay alive
  throughout), plus the input pipeline alone; if the median pair's real-records step is within
  2 % of the cached one, the input pipeline keeps up. ``--skip-cli`` runs only this check (e.g.
  on a 640 px config, where a few steps suffice).
"""

import argparse
import gc
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfod_seg.config.garden import read_header  # noqa: E402
from tfod_seg.engines.garden import runtime  # noqa: E402

_ORBIT_LINE = re.compile(r"train \| step:\s*(\d+) \| steps/sec:\s*([0-9.]+)")
# the time at the start of a log line: tfod-seg's log file (2026-11-30 05:32:06,315) or absl (I1130 05:32:06.315123)
_STAMP = re.compile(r"^(?:\d{4}-\d\d-\d\d |[IWE]\d{4} )(\d\d):(\d\d):(\d\d)[.,](\d+)")
# tfod-seg train --strategy -> Model Garden's runtime.distribution_strategy / num_gpus
_MG_STRATEGY = {"cpu": ("one_device", 0), "gpu": ("one_device", 1), "mirrored": ("mirrored", None),
                "tpu": ("tpu", 0)}


def _orbit_marks(text: str) -> List[Tuple[int, float]]:
    """(step, seconds) of each of Orbit's ``train | step: N | steps/sec`` lines, from the line's
    own time stamp (one per step: absl and print may both log it)."""
    marks: Dict[int, float] = {}
    for line in text.splitlines():
        m, t = _ORBIT_LINE.search(line), _STAMP.match(line)
        if m and t and int(m.group(1)) not in marks:
            h, mi, sec, frac = t.groups()
            marks[int(m.group(1))] = int(h) * 3600 + int(mi) * 60 + int(sec) + float("0." + frac)
    return sorted(marks.items())


def _steady(marks: List[Tuple[int, float]]) -> Optional[float]:
    """steps/s from the end of the first loop (tracing, start-up) to the last one."""
    if len(marks) < 2:
        return None
    (s0, t0), (s1, t1) = marks[0], marks[-1]
    if t1 < t0:  # past midnight
        t1 += 86400
    return (s1 - s0) / (t1 - t0) if t1 > t0 else None


def _run(cmd: List[str], env: Dict[str, str], what: str) -> Tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{what} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p, wall


def run_tfod_seg(config: str, model_dir: str, steps: int, strategy: str = "cpu", tpu_name: Optional[str] = None,
                 extra: Sequence[str] = ()) -> Dict:
    """`tfod-seg train` in its own process; rates are Orbit's, from the run's log file (the same
    measurement Model Garden's runner prints)."""
    cmd = [sys.executable, "-m", "tfod_seg", "train", "--pipeline_config_path", config, "--model_dir", model_dir,
           "--num_train_steps", str(steps), "--strategy", strategy] + (["--tpu_name", tpu_name] if tpu_name else [])
    cmd += list(extra)  # e.g. --time_budget 1h: the loop the demo trains with
    load = os.getloadavg()[0]
    p, wall = _run(cmd, dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), "tfod-seg train")
    with open(os.path.join(model_dir, "logs", "train.log"), encoding="utf-8") as f:
        marks = _orbit_marks(f.read())
    return {"runner": "tfod-seg train", "wall_seconds": wall, "loop_marks": marks, "steps_per_sec": _steady(marks),
            "load_average_before": load}


def run_model_garden(config: str, model_dir: str, steps: int, experiment: str, strategy: str = "cpu",
                     tpu_name: Optional[str] = None) -> Dict:
    """`python -m official.vision.train --mode=train` on the same config and device."""
    name, gpus = _MG_STRATEGY[strategy]
    override = f"trainer.train_steps={steps},runtime.distribution_strategy={name}"
    if gpus is not None:
        override += f",runtime.num_gpus={gpus}"
    if tpu_name:
        override += f",runtime.tpu={tpu_name}"
    cmd = [sys.executable, "-m", "official.vision.train", f"--experiment={experiment}", "--mode=train",
           f"--model_dir={model_dir}", f"--config_file={config}", f"--params_override={override}"]
    load = os.getloadavg()[0]
    p, wall = _run(cmd, dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), "official.vision.train")
    with open(os.path.join(model_dir, "official_train.log"), "w", encoding="utf-8") as f:
        f.write(p.stderr)  # kept for comparing with tfod-seg's MODEL_DIR/logs/train.log
    marks = _orbit_marks(p.stderr)
    if len(marks) < 2:
        raise RuntimeError("official.vision.train: no time-stamped Orbit lines in its log:\n" + p.stderr[-2000:])
    return {"runner": "official.vision.train", "wall_seconds": wall, "loop_marks": marks,
            "steps_per_sec": _steady(marks), "load_average_before": load}


def _spread(values: List[float]) -> Dict:
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values),
            "spread_percent": (max(values) - min(values)) / med * 100.0 if med else None, "runs": values}


def time_cli_runs(config: str, work_dir: str, steps: int, repeats: int = 3, strategy: str = "cpu",
                  tpu_name: Optional[str] = None, tfod_seg_args: Sequence[str] = ()) -> Dict:
    """``repeats`` pairs of runs, alternating which runner goes first (ABBA...), so drift in the
    machine's load falls on both; returns each runner's median, min, max and the per-pair ratios."""
    experiment = read_header(config)
    ours, theirs, ratios = [], [], []
    for i in range(repeats):
        def a():
            return run_tfod_seg(config, os.path.join(work_dir, f"tfod_seg_{i}"), steps, strategy, tpu_name,
                                tfod_seg_args)

        def b():
            return run_model_garden(config, os.path.join(work_dir, f"garden_{i}"), steps, experiment, strategy,
                                    tpu_name)

        first, second = (a, b) if i % 2 == 0 else (b, a)
        r1, r2 = first(), second()
        mine, ref = (r1, r2) if i % 2 == 0 else (r2, r1)
        ours.append(mine)
        theirs.append(ref)
        ratios.append(mine["steps_per_sec"] / ref["steps_per_sec"])
        print(f"repeat {i + 1}/{repeats}: tfod-seg {mine['steps_per_sec']:.3f}  Model Garden {ref['steps_per_sec']:.3f} "
              f"steps/s  ratio {ratios[-1]:.3f}  (load {mine['load_average_before']:.1f} / "
              f"{ref['load_average_before']:.1f})", flush=True)
    a_stats = _spread([r["steps_per_sec"] for r in ours])
    b_stats = _spread([r["steps_per_sec"] for r in theirs])
    return {"tfod_seg": ours, "model_garden": theirs, "tfod_seg_steps_per_sec": a_stats,
            "model_garden_steps_per_sec": b_stats, "pair_ratios": _spread(ratios),
            "ratio": a_stats["median"] / b_stats["median"],
            "wrapper_cost_percent": (b_stats["median"] / a_stats["median"] - 1.0) * 100.0}


def input_pipeline_check(config: str, steps: int = 20, pairs: int = 4, warmup: int = 5, cached_batches: int = 100,
                         strategy_name: str = "cpu") -> Dict:
    """Train-step time on the real records vs on ``cached_batches`` batches cached in memory, in
    ``pairs`` pairs of ``steps``-step chunks whose order alternates (cached first, then real
    first, ...), so a change in the machine's load falls on both; plus the input pipeline alone.

    The cache holds many batches, not one: a Mask R-CNN step's time depends on the batch
    (instances, proposals), so a few cached batches are not the same work as the real stream (16
    batches of the demo ran 3-4 % faster than the stream; a whole epoch, 100 batches, did not).
    Both iterators live through the whole check (the real pipeline keeps its shuffle buffer,
    prefetch buffer and autotuned parallelism, as in a training run; the cache is filled before
    timing); each chunk is one call of Model Garden's train loop (`trainer.train(n)`), the call
    Orbit makes per loop."""
    _, params = runtime.load_params(config)
    strategy, _ = runtime.make_strategy(params, strategy_name)
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
        return task.build_inputs(data_cfg, ctx).take(cached_batches).cache().repeat()

    iterators = {name: iter(strategy.distribute_datasets_from_function(fn))
                 for name, fn in (("cached", cached), ("real", real))}
    for _ in range(cached_batches + 1):  # fill the cache (the extra read completes it) before any timing
        next(iterators["cached"])

    cpu: Dict[str, List[float]] = {"cached": [], "real": []}

    def chunk(name: str, n: int) -> float:
        # Orbit's StandardTrainer keeps its iterator in _train_iter (the train_dataset setter would
        # start a new pipeline per chunk, timing its start-up); swap the two persistent ones.
        trainer._train_iter = iterators[name]  # pylint: disable=protected-access
        c0, t0 = time.process_time(), time.perf_counter()
        trainer.train(tf.constant(n, tf.int32))
        wall = (time.perf_counter() - t0) / n
        cpu[name].append((time.process_time() - c0) / n)  # this process's CPU seconds per step, all threads
        return wall

    for name in ("cached", "real"):  # tracing, buffers filled, autotuning settled
        chunk(name, warmup)
        cpu[name].clear()
    times: Dict[str, List[float]] = {"cached": [], "real": []}
    ratios = []
    for i in range(pairs):
        order = ("cached", "real") if i % 2 == 0 else ("real", "cached")
        got = {name: chunk(name, steps) for name in order}
        for name in order:
            times[name].append(got[name])
        ratios.append(got["real"] / got["cached"])
        print(f"pipeline pair {i + 1}/{pairs} ({order[0]} first): real {got['real'] * 1000:.0f} ms, cached "
              f"{got['cached'] * 1000:.0f} ms per step, ratio {ratios[-1]:.3f}; CPU per step real "
              f"{cpu['real'][-1]:.2f} s, cached {cpu['cached'][-1]:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    ds = real()
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    batches = max(steps, 20)  # enough that the prefetched batches do not count for much
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(batches):
        next(it)
    input_only = (time.perf_counter() - t0) / batches
    input_cpu = (time.process_time() - c0) / batches
    # Release the pipelines before returning: live tf.data iterators can keep the process from exiting.
    trainer._train_iter = None  # pylint: disable=protected-access
    del it, ds, iterators
    gc.collect()
    ratio = _spread(ratios)
    real_step, cached_step = statistics.median(times["real"]), statistics.median(times["cached"])
    return {"steps_per_chunk": steps, "pairs": pairs, "cached_batches": cached_batches,
            "step_seconds_real_records": real_step,
            "step_seconds_cached_batch": cached_step, "chunks": times, "pair_ratios": ratio,
            "cpu_seconds_per_step": {k: statistics.median(v) for k, v in cpu.items()},
            "input_pipeline_seconds_per_batch": input_only, "input_pipeline_cpu_seconds_per_batch": input_cpu,
            "input_slowdown_percent": (ratio["median"] - 1.0) * 100.0,
            "keeps_up": ratio["median"] <= 1.02}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int, default=150, help="total steps per training run")
    p.add_argument("--repeats", type=int, default=3, help="alternating pairs of runs (ABBA order)")
    p.add_argument("--strategy", default="cpu", choices=sorted(_MG_STRATEGY),
                   help="device for both runners (tpu needs --tpu_name)")
    p.add_argument("--tpu_name", default=None)
    p.add_argument("--tfod-seg-args", default="", metavar="ARGS",
                   help="more flags for `tfod-seg train` only, e.g. '--time_budget 1h' (the loop the demo uses)")
    p.add_argument("--pipeline-steps", type=int, default=20, help="steps per timed chunk of the input-pipeline check")
    p.add_argument("--pipeline-pairs", type=int, default=4,
                   help="pairs of chunks (real records, cached batches) in alternating order")
    p.add_argument("--pipeline-warmup", type=int, default=5, help="untimed steps on each pipeline first")
    p.add_argument("--pipeline-cached-batches", type=int, default=100,
                   help="batches held in memory for the reference; cover the data's variety (the demo's epoch is "
                        "100 batches): the step time depends on the batch. Memory: this x batch x decoded image size")
    p.add_argument("--work-dir", default=None)
    p.add_argument("--json", default=None, help="also write the report here")
    p.add_argument("--skip-cli", action="store_true")
    p.add_argument("--skip-pipeline", action="store_true")
    args = p.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_train_")
    report = {"config": args.config, "steps": args.steps, "repeats": args.repeats, "strategy": args.strategy,
              "load_average_before": os.getloadavg()}
    if not args.skip_cli:
        r = time_cli_runs(args.config, work, args.steps, args.repeats, args.strategy, args.tpu_name,
                          shlex.split(args.tfod_seg_args))
        report["cli"] = r
        for key, label in (("tfod_seg_steps_per_sec", "tfod-seg train"),
                           ("model_garden_steps_per_sec", "official.vision.train")):
            st = r[key]
            print(f"{label:22s} median {st['median']:.3f} steps/s (min {st['min']:.3f}, max {st['max']:.3f}, "
                  f"spread {st['spread_percent']:.1f} %)")
        pr = r["pair_ratios"]
        print(f"ratio tfod-seg / Model Garden = {r['ratio']:.3f} (per pair {pr['min']:.3f}..{pr['max']:.3f}); "
              f"wrapper cost {r['wrapper_cost_percent']:+.1f} %")
    if not args.skip_pipeline:
        r = input_pipeline_check(args.config, steps=args.pipeline_steps, pairs=args.pipeline_pairs,
                                 warmup=args.pipeline_warmup, cached_batches=args.pipeline_cached_batches,
                                 strategy_name=args.strategy)
        report["input_pipeline"] = r
        pr = r["pair_ratios"]
        print(f"step on real records  {r['step_seconds_real_records'] * 1000:.0f} ms (median of {r['pairs']} chunks)")
        print(f"step on cached batches {r['step_seconds_cached_batch'] * 1000:.0f} ms ({r['cached_batches']} batches)")
        print(f"real / cached per pair: median {pr['median']:.3f} ({pr['min']:.3f}..{pr['max']:.3f})")
        c = r["cpu_seconds_per_step"]
        print(f"CPU time per step     real {c['real']:.2f} s, cached {c['cached']:.2f} s (this process, all threads)")
        print(f"input pipeline alone  {r['input_pipeline_seconds_per_batch'] * 1000:.0f} ms/batch "
              f"({r['input_pipeline_cpu_seconds_per_batch'] * 1000:.0f} ms CPU)")
        print(f"input pipeline keeps up (within 2 %): {'yes' if r['keeps_up'] else 'NO'} "
              f"({r['input_slowdown_percent']:+.1f} % step time on real records, median pair)")
    report["load_average_after"] = os.getloadavg()
    text = json.dumps(report, indent=2, default=float)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
