#!/usr/bin/env python
"""Benchmark `tfod-seg convert --runner direct` (Apache Beam, DirectRunner) against the local writer.

Generates a COCO dataset (photo-like 640x480 JPEGs, 3-8 polygon instances each, see
tools/bench_convert.py), then in one run converts it with

  * local : python -m tfod_seg convert --format coco ... --workers W --num-shards S
  * beam  : the same command + --runner direct (DirectRunner, multi_processing, W workers)

each timed as a whole command (TensorFlow start-up included) with its peak memory (tools/peak_rss.py:
peak PSS summed over the process tree, and the largest single-process RSS), checks that both
outputs hold the same set of serialized examples per split and the same report (apart from the
per-shard spread), and converts the first --small images with Beam too, to show how the Beam
run's memory changes with dataset size.

    .venv/bin/python tools/bench_beam.py --images 2000 --small 500 --workers 2 --shards 4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))
sys.path.insert(0, TOOLS)

import peak_rss  # noqa: E402
from bench_convert import dataset, read_json, subset  # noqa: E402


def convert(ann, img_dir, out, workers, shards, val_fraction, runner, log):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "tfod_seg", "convert", "--format", "coco", ann, "--image-dir", img_dir, "--out", out,
           "--workers", str(workers), "--num-shards", str(shards), "--val-fraction", str(val_fraction), "--quiet"]
    if runner:
        cmd += ["--runner", runner]
    m = peak_rss.run(cmd, log, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if m.returncode:
        sys.exit(f"command failed ({m.returncode}), see {log}: {' '.join(cmd)}")
    return m, peak_rss.load_average()


def digests(out: str, split: str):
    from tfod_seg.records.reader import iter_raw_records

    return sorted(hashlib.sha256(raw).hexdigest() for _, _, raw in iter_raw_records(os.path.join(out, f"{split}-*")))


def same_output(a: str, b: str) -> str:
    ra, rb = (read_json(os.path.join(d, "report.json")) for d in (a, b))
    for r, d in ((ra, a), (rb, b)):
        for split in r["splits"].values():
            split["files"] = [os.path.relpath(p, d) for p in split["files"]]
            split["shards"] = [sh["file"] for sh in split["shards"]]
        r["label_map"] = os.path.relpath(r["label_map"], d)
    if ra != rb:
        sys.exit(f"reports differ: {a}/report.json vs {b}/report.json")
    for split in ra["splits"]:
        if digests(a, split) != digests(b, split):
            sys.exit(f"{split}: the sets of serialized examples differ")
    return f"same report, same set of serialized examples in {', '.join(ra['splits'])} ({ra['images']} images)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--small", type=int, default=500, help="images of the second (smaller) Beam run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--workdir", help="keep data and outputs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="bench_beam_")
    data = os.path.join(work, "data")
    ann = dataset(data, args.images, sizes=[(640, 480), (480, 640)])
    small_ann = subset(ann, args.small, os.path.join(data, f"instances_{args.small}.json"))
    img_dir = os.path.join(data, "images")
    runs = {}
    for name, a, runner, n in (("local", ann, None, args.images), ("beam", ann, "direct", args.images),
                               (f"beam_{args.small}", small_ann, "direct", args.small),
                               (f"local_{args.small}", small_ann, None, args.small)):
        out = os.path.join(work, name)
        runs[name] = (n, out) + convert(a, img_dir, out, args.workers, args.shards, args.val_fraction, runner,
                                        os.path.join(work, name + ".log"))
        m, load = runs[name][2:]
        print(f"{name:>10}: {n:5d} images {m.seconds:7.1f} s {n / m.seconds:6.1f} images/s  "
              f"peak tree PSS {m.mib(m.peak_tree_pss):7.0f} MiB  peak process RSS {m.mib(m.peak_rss):7.0f} MiB  "
              f"(load average after: {load})", flush=True)
    print(same_output(runs["local"][1], runs["beam"][1]))
    (n_l, _, loc, _), (n_b, _, beam, _) = runs["local"][:4], runs["beam"][:4]
    print(f"images/s beam / local: {(n_b / beam.seconds) / (n_l / loc.seconds):.2f}  "
          f"(workers={args.workers}, shards={args.shards}, whole commands, TensorFlow start-up included)")
    for kind in ("beam", "local"):
        small, big = runs[f"{kind}_{args.small}"][2], runs[kind][2]
        print(f"{kind} peak memory {args.small} -> {args.images} images: tree PSS "
              f"{small.mib(small.peak_tree_pss):.0f} -> {big.mib(big.peak_tree_pss):.0f} MiB "
              f"({big.peak_tree_pss / small.peak_tree_pss:.2f}x), largest process RSS "
              f"{small.mib(small.peak_rss):.0f} -> {big.mib(big.peak_rss):.0f} MiB ({big.peak_rss / small.peak_rss:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
