#!/usr/bin/env python
"""Peak memory of `tfod-seg convert`, `infer` and `score` at two dataset sizes (flat expected).

Generates one COCO dataset (photo-like JPEGs with 3-8 polygon instances, see
tools/bench_convert.py) of --large images and takes its first --small images as the small set.
Each command runs as its own process (tools/peak_rss.py samples the whole process tree):

  convert : tfod-seg convert --format coco instances_N.json --image-dir images --out records_N --workers W
  convert_labelme : the same annotations as one LabelMe JSON per image (--commands convert_labelme)
  coco_reader : the COCO reader alone (tfod_seg.annotations.coco.read_coco over instances_N.json,
            every sample built; no TensorFlow in the process), --commands coco_reader
  infer   : tfod-seg infer --model EXPORT --images images_N --out infer_N --format F --min-score 0
  score   : tfod-seg score --model EXPORT --records 'records_N/train-*.tfrecord' --out score_N

EXPORT is a synthetic export (tools/bench_infer.py --fake: a few 3x3 convolutions returning
--detections box-relative masks per image), so the numbers measure tfod-seg's streaming, not a
model. Prints, per command, peak tree PSS and the largest single-process RSS at both sizes and
their ratio; the verdict (goal: within 10 %) uses the RSS, because PSS also changes with other
processes on the machine that map the same libraries (TensorFlow's).

    .venv/bin/python tools/bench_memory.py --small 500 --large 5000
"""

from __future__ import annotations

import argparse
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


def image_folder(ann: str, img_dir: str, out: str) -> str:
    """A folder of symlinks to the images ``ann`` lists (infer's input for that size)."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for img in read_json(ann)["images"]:
        os.symlink(os.path.join(img_dir, img["file_name"]), os.path.join(out, img["file_name"]))
    return out


def labelme_folder(ann: str, img_dir: str, out: str) -> str:
    """The same annotations as LabelMe files (one JSON per image, polygons), in ``out``."""
    from tfod_seg.annotations.labelme import write_labelme

    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    doc = read_json(ann)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    shapes: dict = {}
    for a in doc["annotations"]:
        for k, part in enumerate(a["segmentation"]):
            shapes.setdefault(a["image_id"], []).append(
                {"label": names[a["category_id"]], "group_id": a["id"],
                 "points": [part[i:i + 2] for i in range(0, len(part), 2)]})
    for img in doc["images"]:
        stem = os.path.splitext(img["file_name"])[0]
        write_labelme(os.path.join(out, stem + ".json"), image_path=os.path.join(img_dir, img["file_name"]),
                      height=img["height"], width=img["width"], shapes=shapes.get(img["id"], []))
    return out


# Ends with a pause so that tools/peak_rss.py, sampling every 0.2 s, reads the process's VmHWM
# (its peak RSS so far) at least once even when reading takes less than that.
READ_COCO = ("import sys, time; from tfod_seg.annotations.coco import read_coco; "
             "s = read_coco(sys.argv[1], sys.argv[2]); n = sum(1 for _ in s); print(n, 'samples'); time.sleep(0.5)")


def commands(n: int, work: str, export: str, workers: int, formats: str) -> dict:
    data = os.path.join(work, "data")
    tfod = [sys.executable, "-m", "tfod_seg"]
    records = os.path.join(work, f"records_{n}")
    return {
        "convert": tfod + ["convert", "--format", "coco", os.path.join(data, f"instances_{n}.json"), "--image-dir",
                           os.path.join(data, "images"), "--out", records, "--workers", str(workers), "--quiet"],
        "convert_labelme": tfod + ["convert", "--format", "labelme", os.path.join(work, f"labelme_{n}"), "--out",
                                   os.path.join(work, f"records_labelme_{n}"), "--workers", str(workers), "--quiet",
                                   "--allow-outside-root"],
        "coco_reader": [sys.executable, "-c", READ_COCO, os.path.join(data, f"instances_{n}.json"),
                        os.path.join(data, "images")],
        "infer": tfod + ["infer", "--model", export, "--images", os.path.join(work, f"images_{n}"), "--out",
                         os.path.join(work, f"infer_{n}"), "--format", formats, "--min-score", "0", "--no-progress"],
        "score": tfod + ["score", "--model", export, "--records", os.path.join(records, "train-*.tfrecord"), "--out",
                         os.path.join(work, f"score_{n}"), "--no-progress"],
    }


def score_records(n: int, work: str, export: str, args) -> None:
    """`score` reads the records of `convert`: without `convert` in --commands, make them
    first (not measured), unless the --workdir already holds them."""
    wanted = args.commands.split(",")
    if "score" not in wanted or "convert" in wanted or os.path.isdir(os.path.join(work, f"records_{n}")):
        return
    cmd = commands(n, work, export, args.workers, args.format)["convert"]
    if peak_rss.run(cmd, os.path.join(work, f"convert_{n}.log")).returncode:
        sys.exit(f"convert (for score) failed, see {work}/convert_{n}.log: {' '.join(cmd)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--large", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2, help="convert worker processes")
    ap.add_argument("--format", default="coco,labelme,overlay,semantic", help="infer outputs")
    ap.add_argument("--detections", type=int, default=10, help="detections per image of the synthetic export")
    ap.add_argument("--commands", default="convert,infer,score")
    ap.add_argument("--workdir", help="keep data and outputs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="bench_memory_")
    data = os.path.join(work, "data")
    ann = dataset(data, args.large, sizes=[(320, 240), (240, 320)])
    from bench_infer import build_fake_export

    export = build_fake_export(work, args.detections, convs=1)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    results = {}
    for n in (args.small, args.large):
        subset(ann, n, os.path.join(data, f"instances_{n}.json"))
        image_folder(os.path.join(data, f"instances_{n}.json"), os.path.join(data, "images"),
                     os.path.join(work, f"images_{n}"))
        if "convert_labelme" in args.commands.split(","):
            labelme_folder(os.path.join(data, f"instances_{n}.json"), os.path.join(data, "images"),
                           os.path.join(work, f"labelme_{n}"))
        score_records(n, work, export, args)
        for name, cmd in commands(n, work, export, args.workers, args.format).items():
            if name not in args.commands.split(","):
                continue
            m = peak_rss.run(cmd, os.path.join(work, f"{name}_{n}.log"), env=env)
            if m.returncode:
                sys.exit(f"{name} failed ({m.returncode}), see {work}/{name}_{n}.log: {' '.join(cmd)}")
            results[(name, n)] = m
            print(f"{name:>8} {n:6d} images: {m.seconds:7.1f} s  peak tree PSS {m.mib(m.peak_tree_pss):7.0f} MiB  "
                  f"largest process RSS {m.mib(m.peak_rss):7.0f} MiB  (load average after: {peak_rss.load_average()})",
                  flush=True)
    for name in args.commands.split(","):
        a, b = results[(name, args.small)], results[(name, args.large)]
        pss, rss = b.peak_tree_pss / a.peak_tree_pss, b.peak_rss / a.peak_rss
        flat = "flat" if rss <= 1.10 else "NOT flat"  # PSS also moves with other processes sharing the libraries
        print(f"{name:>8}: {args.small} -> {args.large} images: tree PSS x{pss:.2f}, largest process RSS x{rss:.2f} "
              f"({flat}, goal within 10 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
