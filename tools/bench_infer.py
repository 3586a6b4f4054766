#!/usr/bin/env python
"""Benchmark `tfod-seg infer` (library call, all four output formats) against a plain Python
loop that decodes each image and calls the export's `serving_default` one image at a time.

The ratio infer / loop is the cost of streaming, mask pasting and writing over the model
itself (target: <= 1.15). Both run in the same process on the same images and export, in
alternating order, and the best of --repeats runs of each is kept. The CPU-time ratio (all
threads) is printed too: it shows the extra work, which the wall-clock ratio hides when the
writing overlaps the model on an idle core and exposes when other jobs take the cores.

Model, in order of preference:
  --model EXPORT_DIR          any TFOD2-signature export (e.g. `tfod-seg demo` out/exported)
  --build DIR                 train a few steps of pipelines/garden_cpu_demo.yaml on generated
                              shapes and export it with the project's own functions (reused if
                              DIR/exported exists)
  --fake DIR                  a synthetic export whose cost is set by --convs (3x3 convs at
                              the image size) returning --detections box-relative 28x28 masks

  python tools/bench_infer.py --build /tmp/bench_model --images 40
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_garden_export(root: str, steps: int, image_size: int) -> str:
    """Shapes dataset -> records -> demo config -> `steps` training steps -> export."""
    exported = os.path.join(root, "exported")
    if os.path.isfile(os.path.join(exported, "saved_model", "saved_model.pb")):
        return exported
    from tfod_seg.annotations.labelme import read_labelme
    from tfod_seg.config.generate import generate_config
    from tfod_seg.demo.shapes import generate_shapes_dataset
    from tfod_seg.engines.garden.export import export
    from tfod_seg.engines.garden.train import train
    from tfod_seg.records.convert import convert_dataset

    shapes = generate_shapes_dataset(os.path.join(root, "dataset"), 32, image_size, 0)
    conv = convert_dataset(read_labelme(os.path.join(root, "dataset")), os.path.join(root, "records"),
                           label_map=shapes["label_map"], val_fraction=0.25, seed=0)
    config = generate_config("garden_cpu_demo", label_map=conv["label_map"],
                             train=os.path.join(root, "records", "train-*.tfrecord"),
                             val=os.path.join(root, "records", "val-*.tfrecord"), model_dir=os.path.join(root, "model"),
                             out=os.path.join(root, "pipeline.yaml"), steps=steps)
    train(config, os.path.join(root, "model"), num_train_steps=steps)
    export(config, os.path.join(root, "model"), exported)
    return exported


def build_fake_export(root: str, detections: int, convs: int = 6) -> str:
    """A synthetic export whose cost grows with the image like a CNN's, with TFOD2 outputs."""
    import tensorflow as tf

    exported = os.path.join(root, "fake_export")
    if os.path.isfile(os.path.join(exported, "saved_model", "saved_model.pb")):
        return exported
    tf.random.set_seed(0)
    convs = [tf.keras.layers.Conv2D(32, 3, padding="same", activation="relu") for _ in range(convs)]

    class Fake(tf.Module):
        def __init__(self):
            super().__init__()
            self.convs = convs

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, input_tensor):
            x = tf.cast(input_tensor, tf.float32) / 255.0
            for c in self.convs:
                x = c(x)
            g = tf.reduce_mean(x)
            k = detections
            i = tf.range(k, dtype=tf.float32)
            y0 = tf.math.floormod(i * 0.137, 0.7)
            x0 = tf.math.floormod(i * 0.291, 0.7)
            boxes = tf.stack([y0, x0, y0 + 0.25, x0 + 0.3], axis=1)[None]
            yy, xx = tf.meshgrid(tf.linspace(-1.0, 1.0, 28), tf.linspace(-1.0, 1.0, 28), indexing="ij")
            blob = tf.cast(yy ** 2 + xx ** 2 < 0.8, tf.float32) + 0.0 * g
            masks = tf.tile(blob[None, None], [1, k, 1, 1])
            return {"num_detections": tf.constant([float(k)]), "detection_boxes": boxes,
                    "detection_classes": (tf.math.floormod(i, 3.0) + 1.0)[None],
                    "detection_scores": (0.99 - i / (2 * k))[None], "detection_masks": masks}

    mod = Fake()
    mod.serve(tf.zeros([1, 8, 8, 3], tf.uint8))
    tf.saved_model.save(mod, os.path.join(exported, "saved_model"), signatures={"serving_default": mod.serve})
    return exported


def make_images(folder: str, n: int, size: int) -> list:
    """`n` shapes images (generated with the demo generator) of `size` pixels."""
    from tfod_seg.demo.shapes import generate_shapes_dataset

    generate_shapes_dataset(folder, n, size, 123)
    return sorted(glob.glob(os.path.join(folder, "*.jpg")))


def _cpu() -> float:
    """CPU seconds of this process so far, all threads (user + system)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_signature(export_dir: str):
    import tensorflow as tf

    fn = tf.saved_model.load(os.path.join(export_dir, "saved_model")).signatures["serving_default"]
    fn(input_tensor=tf.zeros([1, 64, 64, 3], tf.uint8))  # warm-up (tracing) outside the timing
    return fn


def plain_loop(fn, files: list) -> tuple:
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    gc.collect()  # garbage of the previous run is not charged to this one (same for infer_run)
    start, cpu = time.perf_counter(), _cpu()
    for path in files:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        out = fn(input_tensor=tf.constant(arr[None]))
        _ = {k: v.numpy() for k, v in out.items()}
    return time.perf_counter() - start, _cpu() - cpu


def infer_run(predictor, files: list, out: str, min_score: float, formats, workers) -> tuple:
    from tfod_seg.inference.run import run_inference

    shutil.rmtree(out, ignore_errors=True)
    gc.collect()
    start, cpu = time.perf_counter(), _cpu()
    summary = run_inference(predictor, files, out, min_score=min_score, formats=formats, workers=workers)
    return time.perf_counter() - start, _cpu() - cpu, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="existing export directory")
    g.add_argument("--build", metavar="DIR", help="train+export a short demo-config model here (reused)")
    g.add_argument("--fake", metavar="DIR", help="synthetic export here")
    ap.add_argument("--images", type=int, default=40, help="number of images")
    ap.add_argument("--size", type=int, default=192, help="image side in pixels")
    ap.add_argument("--steps", type=int, default=20, help="training steps for --build")
    ap.add_argument("--detections", type=int, default=20, help="detections per image for --fake")
    ap.add_argument("--convs", type=int, default=6, help="3x3x32 conv layers in the --fake model (its cost)")
    ap.add_argument("--min-score", type=float, default=0.0, help="min score for infer (0 writes every detection)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--format", default="overlay,coco,labelme,semantic", help="infer output formats")
    ap.add_argument("--workers", type=int, default=None, help="infer writer threads (default: automatic)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    if args.model:
        export_dir, kind = args.model, "given export"
    elif args.build:
        export_dir, kind = build_garden_export(args.build, args.steps, args.size), f"Model Garden demo config, {args.steps} steps"
    else:
        export_dir, kind = build_fake_export(args.fake, args.detections, args.convs), \
            f"synthetic, {args.convs} convs, {args.detections} detections"
    work = tempfile.mkdtemp(prefix="bench_infer_")
    files = make_images(os.path.join(work, "images"), args.images, args.size)
    formats = [f for f in args.format.split(",") if f]
    from tfod_seg.inference.predict import Predictor

    fn = load_signature(export_dir)  # each side loads the export once, outside the timing
    predictor = Predictor(export_dir)
    predictor.predict_raw(__import__("numpy").zeros([1, 64, 64, 3], "uint8"))  # same warm-up as the loop
    loop_times, infer_times, loop_cpu, infer_cpu, summary = [], [], [], [], None
    for _ in range(args.repeats):
        t, c = plain_loop(fn, files)
        loop_times.append(t)
        loop_cpu.append(c)
        t, c, summary = infer_run(predictor, files, os.path.join(work, "out"), args.min_score, formats, args.workers)
        infer_times.append(t)
        infer_cpu.append(c)
    loop_t, infer_t = min(loop_times), min(infer_times)
    n = len(files)
    result = {
        "model": kind, "export": export_dir, "images": n, "image_size": args.size,
        "detections_written": summary.detections, "formats": summary.formats,
        "loop_images_per_sec": round(n / loop_t, 2), "infer_images_per_sec": round(n / infer_t, 2),
        "infer_over_loop": round(infer_t / loop_t, 3),
        "cpu_infer_over_loop": round(min(infer_cpu) / min(loop_cpu), 3),
        "loop_seconds": [round(t, 2) for t in loop_times], "infer_seconds": [round(t, 2) for t in infer_times],
        "loop_cpu_seconds": [round(t, 2) for t in loop_cpu], "infer_cpu_seconds": [round(t, 2) for t in infer_cpu],
        "load_average_1min": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    print(f"plain signature loop: {result['loop_images_per_sec']} img/s; tfod-seg infer ({','.join(formats)}): "
          f"{result['infer_images_per_sec']} img/s; infer/loop wall time = {result['infer_over_loop']} "
          f"({'within' if result['infer_over_loop'] <= 1.15 else 'OVER'} the 1.15 budget); "
          f"infer/loop CPU time = {result['cpu_infer_over_loop']}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
