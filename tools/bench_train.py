#!/usr/bin/env python
"""Training speed: `tfod-seg train` vs `python -m official.vision.train` on the same config, and
whether the input pipeline keeps up (step time on real records vs on one cached batch).

    .venv/bin/python tools/bench_train.py --config out/garden.yaml --steps 100 --repeats 2

The config must be a complete Model Garden experiment YAML with input paths (e.g. written by
`tfod-seg config --template pipelines/garden_cpu_demo.yaml ...`). Prints a JSON report; the
wrapper cost is (Model Garden steps/s / tfod-seg steps/s - 1), target <= 3 %.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    from tfod_seg.engines.garden.bench import input_pipeline_check, time_cli_runs

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
