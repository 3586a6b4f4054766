#!/usr/bin/env python
"""Parity and speed of every deployment format against the SavedModel, on a `tfod-seg demo`
output (its model, config and held-out val records).

For each format (SavedModel batch 1 and 8, TFLite float32 / float16 / dynamic-range int8
weights, ONNX): export with `tfod-seg export` options from the demo's checkpoint, score on the
demo's held-out records with `tfod-seg score` (mask AP and box AP, and their difference to the
batch-1 SavedModel), time the model call alone (`predict_raw`, preprocessing and mask pasting
excluded, after one warm-up) at batch 1 and 8 on the first val images (median of --repeats,
per image), and report file sizes. Formats run one after another in one process; the load
average of the machine is printed with the numbers (timings on a shared machine are noisy).

  tfod-seg demo --out /tmp/demo
  python tools/bench_edge.py --demo /tmp/demo --out /tmp/bench_edge
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name -> (export flags, model file inside the export folder or None for the SavedModel)
VARIANTS = {
    "saved_model_b1": ([], None),
    "saved_model_b8": (["--batch_size", "8"], None),
    "tflite_b1": (["--format", "tflite"], "model.tflite"),
    "tflite_b8": (["--format", "tflite", "--batch_size", "8"], "model.tflite"),
    "tflite_float16_b1": (["--format", "tflite", "--quantize", "float16"], "model.tflite"),
    "tflite_dynamic_b1": (["--format", "tflite", "--quantize", "dynamic"], "model.tflite"),
    "onnx_dynamic": (["--format", "onnx", "--batch_size", "dynamic"], "model.onnx"),
}


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def export_variant(demo: str, out: str, name: str) -> tuple:
    from tfod_seg.cli import main

    flags, model_file = VARIANTS[name]
    folder = os.path.join(out, name)
    model = os.path.join(folder, model_file) if model_file else folder
    start = time.perf_counter()
    if not os.path.exists(model if model_file else os.path.join(folder, "saved_model")):
        rc = main(["export", "--pipeline_config_path", os.path.join(demo, "pipeline.yaml"),
                   "--trained_checkpoint_dir", os.path.join(demo, "model"), "--output_directory", folder] + flags)
        if rc:
            raise SystemExit(f"export {name} failed ({rc})")
    size = _size(model if model_file else os.path.join(folder, "saved_model"))
    return model, size, time.perf_counter() - start


def latency(predictor, images, batch: int, repeats: int) -> float:
    """Median seconds per image of ``predict_raw`` on batches of ``batch`` images."""
    import numpy as np

    x = np.stack(images[:batch])
    predictor.predict_raw(x)  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict_raw(x)
        times.append((time.perf_counter() - start) / batch)
    return statistics.median(times)


def run_variant(demo: str, out: str, name: str, images, repeats: int) -> dict:
    from tfod_seg.evaluation.score import score_model
    from tfod_seg.inference import load_predictor

    model, size, export_seconds = export_variant(demo, out, name)
    predictor = load_predictor(model)
    val = sorted(glob.glob(os.path.join(demo, "records", "val-*.tfrecord")))
    start = time.perf_counter()
    metrics = score_model(predictor, val, os.path.join(out, name + "_score"),
                          label_map=os.path.join(demo, "records", "label_map.pbtxt"),
                          batch_size=8 if predictor.max_batch in (None, 8) else 1).to_json()
    row = {"format": name, "model": model, "size_mb": round(size / 1e6, 2), "export_seconds": round(export_seconds, 1),
           "mask_AP": metrics["segm"]["AP"], "box_AP": metrics["bbox"]["AP"],
           "score_seconds": round(time.perf_counter() - start, 1)}
    fixed = predictor.max_batch
    for batch in (1, 8):
        if fixed is None or fixed == batch:
            row[f"ms_per_image_b{batch}"] = round(1000 * latency(predictor, images, batch, repeats), 1)
    return row


def val_images(demo: str, n: int = 8):
    from tfod_seg.records.reader import iter_records

    images = []
    for rec in iter_records(sorted(glob.glob(os.path.join(demo, "records", "val-*.tfrecord")))):
        images.append(rec.image())
        if len(images) == n:
            return images
    raise SystemExit("fewer than 8 val images")


def table(rows) -> str:
    ref = next(r for r in rows if r["format"] == "saved_model_b1")
    lines = ["| format | mask AP | Δ mask AP | box AP | Δ box AP | ms/image b1 | ms/image b8 | size MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['mask_AP']:.3f} | {r['mask_AP'] - ref['mask_AP']:+.3f} | {r['box_AP']:.3f} | "
                     f"{r['box_AP'] - ref['box_AP']:+.3f} | {r.get('ms_per_image_b1', '')} | "
                     f"{r.get('ms_per_image_b8', '')} | {r['size_mb']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", required=True, help="a `tfod-seg demo --out` folder")
    ap.add_argument("--out", required=True, help="where the exports and scores go (reused)")
    ap.add_argument("--formats", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.makedirs(args.out, exist_ok=True)
    load_before = os.getloadavg()
    images = val_images(args.demo)
    rows = []
    for name in args.formats.split(","):
        rows.append(run_variant(args.demo, args.out, name.strip(), images, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    load_after = os.getloadavg()
    print(table(rows))
    print(f"load average (1, 5, 15 min) before {tuple(round(v, 2) for v in load_before)}, "
          f"after {tuple(round(v, 2) for v in load_after)}; {os.cpu_count()} cores")
    with open(os.path.join(args.out, "bench_edge.json"), "w") as f:
        json.dump({"rows": rows, "load_before": load_before, "load_after": load_after}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
