#!/usr/bin/env python
"""Benchmark `tfod-seg convert --format coco` against Model Garden's own converter.

Generates a COCO dataset with polygon masks (photo-like JPEGs, 640x480 and larger, several
polygon instances per image, some in two parts), converts it with

  * tfod-seg:     python -m tfod_seg convert --format coco ... --workers W --num-shards S
  * Model Garden: python -m official.vision.data.create_coco_tf_record --include_masks
                  --num_processes W --num_shards S

(same processes and shards, each timed as a whole command, start-up included: Model Garden's
imports TensorFlow, tfod-seg's writes local shards without it),
checks both outputs hold the same instances (count per image, class ids, and mask pixels on a
sample of images), and prints images/s for each and the ratio.

    .venv/bin/python tools/bench_convert.py --images 300 --workers 2 --shards 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from peak_rss import load_average


SIZES = [(640, 480), (800, 600), (1024, 768), (480, 640)]


def make_dataset(root: str, num_images: int, seed: int = 0, sizes=SIZES) -> str:
    """COCO instances JSON ``root/instances.json`` + ``root/images/*.jpg``; returns the JSON path."""
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_util

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    cats = [{"id": i, "name": n} for i, n in zip((1, 3, 7, 18), ("person", "car", "train", "dog"))]
    images, anns = [], []
    base_cache = {}
    for i in range(num_images):
        w, h = sizes[i % len(sizes)]
        if (w, h) not in base_cache:  # smooth photo-like background, varied per image below
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            base_cache[(w, h)] = np.stack([127 + 90 * np.sin(xx / (37 + 9 * c)) * np.cos(yy / (53 - 7 * c))
                                           for c in range(3)], -1)
        img = base_cache[(w, h)] + rng.normal(0, 12, (h, w, 3)).astype(np.float32)
        img = np.roll(img, int(rng.integers(0, w)), axis=1)
        image_id = 1000 + i
        objects = []
        for _ in range(int(rng.integers(3, 9))):
            cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
            r = rng.uniform(20, min(w, h) / 4)
            n = int(rng.integers(8, 30))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = r * rng.uniform(0.6, 1.0, n)
            poly = np.stack([np.clip(cx + rad * np.cos(ang), 0, w - 1), np.clip(cy + rad * np.sin(ang), 0, h - 1)], 1)
            parts = [poly.reshape(-1).round(2).tolist()]
            if rng.uniform() < 0.2:  # an occluded object drawn in two parts
                parts.append((poly * 0.5 + np.array([cx, cy]) * 0.5 + np.array([r, 0])).clip(0, [w - 1, h - 1])
                             .reshape(-1).round(2).tolist())
            rles = mask_util.frPyObjects(parts, h, w)
            rle = mask_util.merge(rles)
            area = float(mask_util.area(rle))
            if area < 1:
                continue
            x, y, bw, bh = mask_util.toBbox(rle).tolist()
            color = rng.uniform(0, 255, 3)
            m = mask_util.decode(rle).astype(bool)
            img[m] = img[m] * 0.3 + color * 0.7
            objects.append({"id": len(anns) + len(objects) + 1, "image_id": image_id,
                            "category_id": int(cats[int(rng.integers(0, 4))]["id"]), "iscrowd": 0,
                            "area": area, "bbox": [x, y, bw, bh], "segmentation": parts})
        anns.extend(objects)
        name = f"{image_id}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(root, "images", name), quality=90)
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
    path = os.path.join(root, "instances.json")
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return path


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def dataset(root: str, num_images: int, sizes=SIZES) -> str:
    """``root/instances.json`` with ``num_images`` images: kept from an earlier run (``--workdir``)
    when it has that many, else generated anew by `make_dataset`; returns the JSON path."""
    ann = os.path.join(root, "instances.json")
    if os.path.exists(ann) and len(read_json(ann)["images"]) == num_images:
        return ann
    t = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    make_dataset(root, num_images, sizes=sizes)
    print(f"generated {num_images} images in {time.perf_counter() - t:.0f} s under {root}", flush=True)
    return ann


def subset(ann_path: str, num_images: int, out_path: str) -> str:
    """A COCO JSON with the first ``num_images`` images of ``ann_path`` (same image folder)."""
    doc = read_json(ann_path)
    doc["images"] = doc["images"][:num_images]
    keep = {img["id"] for img in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in keep]
    with open(out_path, "w") as f:
        json.dump(doc, f)
    return out_path


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, log):
    """``(wall seconds, CPU seconds)`` of ``cmd``; CPU is user + system time of the command and
    its worker processes."""
    t, cpu = time.perf_counter(), _children_cpu()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"command failed ({proc.returncode}), see {log}: {' '.join(cmd)}")
    return dt, _children_cpu() - cpu


def compare(ours_glob: str, mg_glob: str, ann_path: str, sample: int) -> dict:
    """Same images, same instance count and classes per image; mask pixels equal on a sample."""
    import numpy as np

    from tfod_seg.records.reader import iter_raw_records, parse_example

    with open(ann_path) as f:
        cats = sorted(c["id"] for c in json.load(f)["categories"])
    to_contiguous = {cid: i + 1 for i, cid in enumerate(cats)}
    mine = {}
    for path, idx, raw in iter_raw_records(ours_glob):
        ex = parse_example(raw, path, idx, decode_masks=False)
        mine[ex.source_id] = (path, idx, raw)
    checked = instances = 0
    theirs_ids = set()
    for path, idx, raw in iter_raw_records(mg_glob):
        theirs = parse_example(raw, path, idx, decode_masks=False)
        theirs_ids.add(theirs.source_id)
        if theirs.source_id not in mine:
            raise SystemExit(f"image {theirs.source_id} is in Model Garden's output but not in tfod-seg's")
        p, i, our_raw = mine[theirs.source_id]
        ours = parse_example(our_raw, p, i, decode_masks=checked < sample)
        if len(ours.boxes) != len(theirs.boxes):
            raise SystemExit(f"image {theirs.source_id}: {len(ours.boxes)} instances vs {len(theirs.boxes)}")
        if [to_contiguous[int(c)] for c in theirs.classes] != ours.classes.tolist():
            raise SystemExit(f"image {theirs.source_id}: classes differ")
        np.testing.assert_allclose(ours.boxes, theirs.boxes, atol=1e-5)
        instances += len(ours.boxes)
        if checked < sample:
            full = parse_example(raw, path, idx)
            if not np.array_equal(ours.masks, full.masks):
                raise SystemExit(f"image {theirs.source_id}: mask pixels differ")
            checked += 1
    if theirs_ids != set(mine):
        raise SystemExit(f"{len(set(mine) - theirs_ids)} images only in tfod-seg's output")
    return {"images": len(mine), "instances": instances, "mask_checked_images": checked}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    ap.add_argument("--sample", type=int, default=30, help="images whose masks are compared pixel by pixel")
    ap.add_argument("--workdir", help="keep data and outputs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="bench_convert_")
    ann = dataset(os.path.join(work, "data"), args.images)
    n_images = args.images
    img_dir = os.path.join(work, "data", "images")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    os.environ.update(env)
    ours_t, mg_t = [], []
    for _ in range(args.repeat):
        shutil.rmtree(os.path.join(work, "ours"), ignore_errors=True)
        shutil.rmtree(os.path.join(work, "mg"), ignore_errors=True)
        os.makedirs(os.path.join(work, "mg"))
        ours_t.append(timed([sys.executable, "-m", "tfod_seg", "convert", "--format", "coco", ann, "--image-dir",
                             img_dir, "--out", os.path.join(work, "ours"), "--workers", str(args.workers),
                             "--num-shards", str(args.shards), "--quiet"], os.path.join(work, "ours.log")))
        mg_t.append(timed([sys.executable, "-m", "official.vision.data.create_coco_tf_record",
                           f"--image_dir={img_dir}", f"--object_annotations_file={ann}",
                           f"--output_file_prefix={os.path.join(work, 'mg', 'train')}",
                           f"--num_shards={args.shards}", "--include_masks", f"--num_processes={args.workers}"],
                          os.path.join(work, "mg.log")))
    tf_import = min(timed([sys.executable, "-c", "import tensorflow, official.vision.data.tfrecord_lib"],
                          os.path.join(work, "tf_import.log")) for _ in range(args.repeat))
    same = compare(os.path.join(work, "ours", "train-*.tfrecord"), os.path.join(work, "mg", "train-*.tfrecord"),
                   ann, args.sample)
    (ours, ours_cpu), (mg, mg_cpu), (tf_import, import_cpu) = min(ours_t), min(mg_t), tf_import
    print(f"dataset: {n_images} images, {same['instances']} polygon instances; both outputs hold the same "
          f"instances (count, classes, boxes; mask pixels equal on {same['mask_checked_images']} images)")
    print(f"workers={args.workers} shards={args.shards} (whole command, start-up included)")
    print(f"tfod-seg convert       : {ours:7.2f} s  {n_images / ours:7.1f} images/s  (CPU {ours_cpu:6.2f} s)")
    print(f"Model Garden converter : {mg:7.2f} s  {n_images / mg:7.1f} images/s  (CPU {mg_cpu:6.2f} s)")
    print(f"ratio (tfod-seg / Model Garden, images/s): {mg / ours:.2f}x")
    print(f"TensorFlow import alone: {tf_import:.2f} s (CPU {import_cpu:.2f} s; Model Garden's converter imports it, "
          "tfod-seg convert to a local folder does not)")
    print(f"load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
