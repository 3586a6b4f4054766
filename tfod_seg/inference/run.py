"""`run_inference`: stream a folder (or glob, or file) of images through an export and write
overlays, COCO results, LabelMe JSON and semantic PNGs.

Pipeline: image headers are read up front (upright size, to decide batching and to count
unreadable files); `tf.data` decodes (helper `tfod_seg.data.images.load_rgb`: EXIF
orientation applied, any mode to 8-bit RGB — the same policy as conversion) in parallel,
batches when every image has the same size (else one at a time), and prefetches; the model
runs on batch ``i`` while a writer thread pastes masks into full-image masks and writes the
outputs of batch ``i - 1``.

Output layout under ``out_dir``::

    overlays/<stem>.png        masks, boxes, class names, scores (one colour per instance)
    coco/results.json          COCO results (RLE segmentation), loads with COCO.loadRes
    coco/images.json           COCO "images" + "categories" for those results (image ids)
    labelme/<stem>.json        one polygon per instance part (open in LabelMe, fix, convert)
    semantic/<stem>.png        per-pixel class id (0 = background)
    summary.json               counts, skips with reasons, timing
"""

from __future__ import annotations

import collections
import concurrent.futures
import glob
import logging
import os
import time
from typing import Dict, List, Optional, Sequence, Union

from tfod_seg.errors import StrictModeError, UserError

log = logging.getLogger(__name__)

FORMATS = ("overlay", "coco", "labelme", "semantic")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def list_images(images: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> List[str]:
    """Image files from a file path, a directory (its image files, not recursive), a glob
    (``**`` recurses), or a list of those. Sorted, de-duplicated. UserError when none match."""
    specs = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    found: List[str] = []
    for spec in specs:
        spec = os.fspath(spec)
        if os.path.isdir(spec):
            hits = [os.path.join(spec, n) for n in os.listdir(spec) if n.lower().endswith(IMAGE_EXTENSIONS)]
            hits = [h for h in hits if os.path.isfile(h)]
            where = f"directory {spec} has no image files ({', '.join(IMAGE_EXTENSIONS)})"
        elif os.path.isfile(spec):
            hits, where = [spec], ""
        elif glob.has_magic(spec):
            hits = [h for h in glob.glob(spec, recursive=True) if os.path.isfile(h)]
            where = f"pattern '{spec}' matched no files"
        else:
            raise UserError(f"--images {spec}: no such file or directory")
        if not hits:
            raise UserError(f"--images {spec}: {where}")
        found.extend(hits)
    return sorted(set(found))


def _resolve_label_map(label_map, predictor):
    from tfod_seg.inference.predict import find_label_map
    from tfod_seg.labelmap import LabelMap, read_label_map

    if isinstance(label_map, LabelMap):
        return label_map
    if label_map is not None:
        return read_label_map(label_map, allow_gaps=True)
    path = find_label_map(predictor.export_dir)
    if path:
        log.info("label map: %s", path)
        return read_label_map(path, allow_gaps=True)
    log.warning("no label map given and none beside %s: classes are named by id", predictor.export_dir)
    return None


def _unique_stems(files: Sequence[str]) -> List[str]:
    counts = collections.Counter(os.path.splitext(os.path.basename(f))[0] for f in files)
    seen: Dict[str, int] = collections.defaultdict(int)
    out = []
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        if counts[stem] > 1:  # same name in different folders: keep them apart
            seen[stem] += 1
            stem = f"{stem}_{seen[stem]}"
        out.append(stem)
    return out


def image_dataset(files: Sequence[str], batch_size: int, errors: Dict[str, str], fallback_shape=None):
    """A `tf.data.Dataset` of ``(index, uint8 image batch)`` decoding ``files`` in parallel.

    An image that fails to decode yields zeros of ``fallback_shape`` (or ``(1, 1, 3)``) and
    its reason is put in ``errors[path]``, so one bad file never stops the stream.
    """
    import numpy as np
    import tensorflow as tf

    from tfod_seg.data.images import load_rgb

    def load(i):
        path = files[int(i)]
        try:
            return load_rgb(path)
        except UserError as e:
            errors[path] = str(e)
        except Exception as e:  # noqa: BLE001 - recorded as a skip with its reason
            errors[path] = f"{path}: cannot decode image ({type(e).__name__}: {e})"
        return np.zeros(fallback_shape or (1, 1, 3), np.uint8)

    def tf_load(i):
        img = tf.numpy_function(load, [i], tf.uint8, stateful=False)
        img.set_shape([None, None, 3])
        return i, img

    ds = tf.data.Dataset.range(len(files))
    ds = ds.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size)
    return ds.prefetch(2)


def run_inference(model, images, out_dir, *, formats: Sequence[str] = FORMATS, min_score: float = 0.5,
                  label_map=None, batch_size: int = 1, progress=None, strict: bool = False) -> Dict:
    """Run every image matched by ``images`` through ``model`` and write ``formats``.

    Args:
        model: an export directory (or its ``saved_model/``) or a `Predictor`.
        images: a file, a directory, a glob, or a list of those (see `list_images`).
        out_dir: output directory (layout in the module docstring).
        formats: any of ``"overlay", "coco", "labelme", "semantic"``.
        min_score: detections below this score are dropped before anything is written.
        label_map: a `LabelMap`, a ``label_map.pbtxt`` path, or None (use the one beside the
            export; without one, classes are named ``class_<id>``).
        batch_size: images per model call; used only when every image has the same size and
            the signature accepts that batch, else 1.
        progress: object with ``.update(n)`` (e.g. tqdm), advanced once per image.
        strict: an unreadable image raises `StrictModeError` instead of being skipped.

    Returns the summary (also written to ``out_dir/summary.json``): ``images``,
    ``images_found``, ``detections``, ``detections_per_class``, ``skipped`` (``file``,
    ``kind``, ``reason``), ``num_skipped``, ``outputs`` (format → path), ``batch_size``,
    ``seconds``, ``images_per_sec``.
    """
    from tfod_seg.data.images import image_size
    from tfod_seg.data.stream import skip_record
    from tfod_seg.inference.predict import Predictor
    from tfod_seg.io import atomic_write_json

    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format {','.join(formats)}: unknown {bad or 'empty'}; expected a comma list of {', '.join(FORMATS)}")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: expected an integer >= 1")
    if not 0.0 <= min_score <= 1.0:
        raise UserError(f"--min-score {min_score}: expected a value in [0, 1]")
    files = list_images(images)
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    labels = _resolve_label_map(label_map, predictor)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()

    skipped: List[Dict] = []

    def skip(path, kind, reason):
        if strict:
            raise StrictModeError(f"{reason} (--strict)")
        skipped.append(skip_record(path, kind, reason))
        log.warning("skipped %s", reason)
        if progress is not None:
            progress.update(1)

    # Headers first: upright sizes decide batching; unreadable files are skipped with a reason.
    sizes: Dict[str, tuple] = {}
    readable = []
    for path in files:
        try:
            sizes[path] = image_size(path)
            readable.append(path)
        except UserError as e:
            skip(path, "unreadable_image", str(e))
    effective_batch = 1
    if batch_size > 1 and readable:
        same = len({sizes[p] for p in readable}) == 1
        accepts = predictor.max_batch is None
        if same and accepts:
            effective_batch = batch_size
        else:
            log.info("batch size 1: %s", "images differ in size" if not same else "the signature takes one image per call")
    stems = dict(zip(readable, _unique_stems(readable)))
    image_ids = {path: i + 1 for i, path in enumerate(readable)}

    dirs = {f: os.path.join(out_dir, {"overlay": "overlays"}.get(f, f)) for f in formats}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    coco_entries: Dict[int, List[Dict]] = {}
    per_class: Dict[str, int] = collections.Counter()
    counters = collections.Counter()
    decode_errors: Dict[str, str] = {}

    def names_of(det):
        if labels is None:
            return [f"class_{c}" for c in det.classes.tolist()]
        return [labels.get(c).name if labels.get(c) else f"class_{c}" for c in det.classes.tolist()]

    def write_one(path, image, det):
        from tfod_seg.inference import formats as fmt

        names = names_of(det)
        per_class.update(names)
        counters["detections"] += len(det)
        stem = stems[path]
        if "overlay" in formats:
            from tfod_seg.visualize.draw import draw_detections

            _write_png(os.path.join(dirs["overlay"], stem + ".png"), draw_detections(image, det, labels), rgb=True)
        if "coco" in formats:
            coco_entries[image_ids[path]] = fmt.coco_results(det, image_ids[path])
        if "labelme" in formats:
            from tfod_seg.annotations.labelme import write_labelme

            shapes, empty = fmt.labelme_shapes(det, names)
            counters["labelme_instances_without_polygon"] += empty
            json_path = os.path.join(dirs["labelme"], stem + ".json")
            write_labelme(json_path, image_path=os.path.relpath(os.path.abspath(path), os.path.abspath(dirs["labelme"])),
                          height=det.height, width=det.width, shapes=shapes)
        if "semantic" in formats:
            from tfod_seg.visualize.draw import semantic_map

            masks = det.masks
            if masks is None:  # box-only model: boxes stand in for masks
                masks = _box_masks(det)
            _write_png(os.path.join(dirs["semantic"], stem + ".png"),
                       semantic_map(masks, det.classes, det.scores, (det.height, det.width)), rgb=False)

    def post(paths, batch_images, outputs):
        for j, path in enumerate(paths):
            if path in decode_errors:
                skip(path, "unreadable_image", decode_errors[path])
                continue
            image = batch_images[j]
            h, w = image.shape[:2]
            det = predictor.detections_from_outputs(outputs, j, h, w, min_score=min_score)
            write_one(path, image, det)
            counters["images"] += 1
            if progress is not None:
                progress.update(1)

    pending: collections.deque = collections.deque()
    fallback = next(iter(sizes.values())) + (3,) if effective_batch > 1 else None
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfod-seg-write") as pool:
        if readable:
            for idx, batch in image_dataset(readable, effective_batch, decode_errors, fallback):
                paths = [readable[int(i)] for i in idx.numpy()]
                arr = batch.numpy()
                if effective_batch == 1 and paths[0] in decode_errors:
                    outputs = None
                else:
                    outputs = predictor.predict_raw(arr)
                if outputs is None:
                    pending.append(pool.submit(post, paths, arr, {}))
                else:
                    pending.append(pool.submit(post, paths, arr, outputs))
                while len(pending) > 2:  # bounded: at most two batches in flight
                    pending.popleft().result()
        while pending:
            pending.popleft().result()

    outputs_written: Dict[str, str] = {}
    for f in formats:
        outputs_written[f] = dirs[f]
    if "coco" in formats:
        from tfod_seg.inference.formats import category_list

        results = [e for i in sorted(coco_entries) for e in coco_entries[i]]
        results_path = os.path.join(dirs["coco"], "results.json")
        atomic_write_json(results_path, results, indent=None)
        seen_ids = {e["category_id"] for e in results}
        images_doc = {
            "images": [{"id": image_ids[p], "file_name": os.path.relpath(os.path.abspath(p), os.path.abspath(dirs["coco"])),
                        "height": sizes[p][0], "width": sizes[p][1]}
                       for p in readable if p not in decode_errors],
            "categories": category_list(labels, seen_ids),
            "annotations": [],
        }
        atomic_write_json(os.path.join(dirs["coco"], "images.json"), images_doc, indent=None)
        outputs_written["coco"] = results_path
    seconds = time.perf_counter() - start
    summary = {
        "model": predictor.export_dir,
        "out_dir": out_dir,
        "images_found": len(files),
        "images": counters["images"],
        "detections": counters["detections"],
        "detections_per_class": dict(sorted(per_class.items())),
        "min_score": min_score,
        "formats": list(formats),
        "outputs": outputs_written,
        "batch_size": effective_batch,
        "skipped": skipped,
        "num_skipped": len(skipped),
        "labelme_instances_without_polygon": counters["labelme_instances_without_polygon"],
        "seconds": round(seconds, 3),
        "images_per_sec": round(counters["images"] / seconds, 3) if seconds > 0 else None,
    }
    atomic_write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def _box_masks(det):
    import numpy as np

    masks = np.zeros((len(det), det.height, det.width), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(np.rint(det.pixel_boxes()).astype(int)):
        masks[k, max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
    return masks


def _write_png(path: str, array, rgb: bool) -> None:
    import cv2

    from tfod_seg.io import atomic_path

    if rgb:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
