"""`run_inference`: stream a folder (or glob, or file) of images through an export and write
overlays, COCO results, LabelMe JSON and semantic PNGs.

Pipeline (`tfod_seg.inference.stream`, shared with `tfod-seg score`): image headers are read
up front (upright size, to decide batching and to count unreadable files); `tf.data` decodes
(`tfod_seg.data.images.decode_rgb`: EXIF orientation applied, any mode to 8-bit RGB — the same
policy as conversion) in parallel, batches when every image has the same size (else one at a
time), and prefetches; the model runs in the calling thread while a small pool of writer
threads pastes masks into full-image masks and writes each image's files. Results are
gathered in input order, so every output is the same whatever the thread timing.

The work is three steps: `plan_inference` (check options, list and measure the images, load
the model and label map), `execute_inference` (the stream; per-image files) and
`report_inference` (COCO files and ``summary.json``). Every path may be a URL
(``gs://``, ``ram://``): files are read and written through `tfod_seg.io`.

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
import dataclasses
import logging
import os
import posixpath
import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from tfod_seg import io
from tfod_seg.annotations.labelme import write_labelme
from tfod_seg.data.images import image_size
from tfod_seg.data.stream import skip_record
from tfod_seg.errors import StrictModeError, UserError
from tfod_seg.inference import formats as fmt
from tfod_seg.inference.draw import draw_detections, semantic_map
from tfod_seg.inference.predict import find_label_map, load_predictor
from tfod_seg.inference.stream import choose_batch, image_dataset, predict_stream
from tfod_seg.labelmap import LabelMap, read_label_map

log = logging.getLogger(__name__)

FORMATS = ("overlay", "coco", "labelme", "semantic")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class InferenceSummary:
    """What `run_inference` did; `to_json()` is the content of ``summary.json``."""

    model: str
    out_dir: str
    images_found: int
    images: int
    detections: int
    detections_per_class: Dict[str, int]
    min_score: float
    formats: List[str]
    outputs: Dict[str, str]  # format -> folder (coco: its results.json)
    batch_size: int
    skipped: List[Dict]  # skip records: file, level, kind, reason
    num_skipped: int
    labelme_instances_without_polygon: int
    seconds: float
    images_per_sec: Optional[float]

    def to_json(self) -> Dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class InferencePlan:
    """Everything `execute_inference` needs, decided before the first image is decoded."""

    predictor: object
    labels: Optional[LabelMap]
    out_dir: str
    formats: tuple
    min_score: float
    dirs: Dict[str, str]  # format -> output folder
    files: List[str]  # every image found
    readable: List[str]  # images whose header could be read (the ones run)
    sizes: Dict[str, tuple]  # path -> upright (height, width)
    batch_size: int  # effective batch size
    image_ids: Dict[str, int]  # path -> COCO image id (1..N in sorted order)
    stems: List[str]  # output file stem per readable image


@dataclasses.dataclass
class _Tally:
    """What `execute_inference` aggregates, in input order."""

    coco: List[Dict] = dataclasses.field(default_factory=list)
    per_class: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    images: int = 0
    detections: int = 0
    labelme_empty: int = 0
    failed: set = dataclasses.field(default_factory=set)  # paths that failed to decode


class _Skips:
    """Skipped images with reasons; with ``strict`` the first skip raises instead."""

    def __init__(self, strict: bool, progress):
        self.strict, self.progress, self.records = strict, progress, []

    def add(self, path: str, kind: str, reason: str) -> None:
        if self.strict:
            raise StrictModeError(f"{reason} (--strict)")
        self.records.append(skip_record(path, kind, reason))
        log.warning("skipped %s", reason)
        if self.progress is not None:
            self.progress.update(1)


def list_images(images: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> List[str]:
    """Image files from a file path, a directory (its image files, not recursive), a glob
    (``**`` recurses for local paths), or a list of those; any of them may be a URL. Sorted,
    de-duplicated. UserError when none match."""
    specs = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    found: List[str] = []
    for spec in specs:
        spec = io.check_path(spec, "--images path")
        if io.isdir(spec):
            hits = [io.join(spec, n) for n in io.listdir(spec) if n.lower().endswith(IMAGE_EXTENSIONS)]
            hits = [h for h in hits if io.isfile(h)]
            where = f"directory {spec} has no image files ({', '.join(IMAGE_EXTENSIONS)})"
        elif io.isfile(spec):
            hits, where = [spec], ""
        elif io.has_magic(spec):
            hits = [h for h in io.glob(spec, recursive=True) if io.isfile(h)]
            where = f"pattern '{spec}' matched no files"
        else:
            raise UserError(f"--images {spec}: no such file or directory")
        if not hits:
            raise UserError(f"--images {spec}: {where}")
        found.extend(hits)
    return sorted(set(found))


def _resolve_label_map(label_map, predictor) -> Optional[LabelMap]:
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
    stem_of = [os.path.splitext(io.basename(f))[0] for f in files]
    counts = collections.Counter(stem_of)
    seen: Dict[str, int] = collections.defaultdict(int)
    out = []
    for stem in stem_of:
        if counts[stem] > 1:  # same name in different folders: keep them apart
            seen[stem] += 1
            stem = f"{stem}_{seen[stem]}"
        out.append(stem)
    return out


def relative_path(path: str, start: str) -> str:
    """``path`` relative to folder ``start`` (both local, or both URLs of one bucket); else
    ``path`` itself (absolute), so the reference still resolves."""
    if not io.is_url(path) and not io.is_url(start):
        return os.path.relpath(os.path.abspath(path), os.path.abspath(start))
    if io.is_url(path) and io.is_url(start):
        p_scheme, p_rest = path.split("://", 1)
        s_scheme, s_rest = start.split("://", 1)
        if p_scheme == s_scheme and p_rest.split("/", 1)[0] == s_rest.split("/", 1)[0]:
            return posixpath.relpath("/" + p_rest, "/" + s_rest.rstrip("/"))
    return path if io.is_url(path) else os.path.abspath(path)


def _check_options(formats: Sequence[str], batch_size: int, min_score: float, workers: Optional[int]) -> tuple:
    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format {','.join(formats)}: unknown {bad or 'empty'}; expected a comma list of {', '.join(FORMATS)}")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: expected an integer >= 1")
    if not 0.0 <= min_score <= 1.0:
        raise UserError(f"--min-score {min_score}: expected a value in [0, 1]")
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: expected an integer >= 1")
    return formats


def header_size(path: str) -> tuple:
    """Upright ``(height, width)`` of an image file (header only); `UserError` for an
    unreadable file or one over Pillow's decompression-bomb pixel limit."""
    from PIL import Image

    data = io.read_bytes(path, what="image file")
    try:
        return image_size(data=data, source=path)
    except Image.DecompressionBombError as e:
        raise UserError(f"{path}: image too large to decode safely ({e})") from None


def _read_headers(files: Sequence[str], skips: _Skips) -> Dict[str, tuple]:
    sizes: Dict[str, tuple] = {}
    for path in files:
        try:
            sizes[path] = header_size(path)
        except UserError as e:
            skips.add(path, "unreadable_image", str(e))
    return sizes


def plan_inference(model, images, out_dir, *, formats: Sequence[str] = FORMATS, min_score: float = 0.5,
                   label_map=None, batch_size: int = 1, skips: _Skips, workers: Optional[int] = None) -> InferencePlan:
    """Check the options, list the images and read their headers (unreadable ones are
    skipped), load the model and label map, create the output folders."""
    formats = _check_options(formats, batch_size, min_score, workers)
    files = list_images(images)
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    predictor = load_predictor(model)
    labels = _resolve_label_map(label_map, predictor)
    sizes = _read_headers(files, skips)
    readable = [p for p in files if p in sizes]
    dirs = {f: io.join(out_dir, {"overlay": "overlays"}.get(f, f)) for f in formats}
    for d in dirs.values():
        io.makedirs(d, "output folder")
    return InferencePlan(
        predictor=predictor, labels=labels, out_dir=out_dir, formats=formats, min_score=min_score, dirs=dirs,
        files=files, readable=readable, sizes=sizes,
        batch_size=choose_batch(predictor, [sizes[p] for p in readable], batch_size),
        image_ids={path: i + 1 for i, path in enumerate(readable)}, stems=_unique_stems(readable))


def execute_inference(plan: InferencePlan, skips: _Skips, *, progress=None, workers: Optional[int] = None) -> _Tally:
    """Stream the readable images through the model; write each image's files in the writer
    threads; aggregate detections in input order."""
    tally = _Tally()
    if not plan.readable:
        return tally
    readable = plan.readable
    decode_errors: Dict[str, str] = {}
    fallback = plan.sizes[readable[0]] + (3,) if plan.batch_size > 1 else None
    dataset = image_dataset(readable, plan.batch_size, decode_errors, fallback)
    writer = ImageWriter(plan)
    stream = predict_stream(plan.predictor, dataset, writer, workers=workers,
                            is_bad=lambda i: readable[i] in decode_errors)
    for index, result in stream:  # input order: the outputs do not depend on thread timing
        path = readable[index]
        if result is None or path in decode_errors:
            tally.failed.add(path)
            skips.add(path, "unreadable_image", decode_errors[path])
            continue
        tally.per_class.update(result["names"])
        tally.detections += len(result["names"])
        tally.labelme_empty += result["labelme_empty"]
        tally.coco.extend(result["coco"])
        tally.images += 1
        if progress is not None:
            progress.update(1)
    return tally


def report_inference(plan: InferencePlan, tally: _Tally, skips: _Skips, seconds: float) -> InferenceSummary:
    """Write ``coco/results.json`` + ``coco/images.json`` (when asked) and ``summary.json``."""
    outputs = dict(plan.dirs)
    if "coco" in plan.formats:
        coco_dir = plan.dirs["coco"]
        outputs["coco"] = io.join(coco_dir, "results.json")
        io.atomic_write_json(outputs["coco"], tally.coco, indent=None)
        images_doc = {
            "images": [{"id": plan.image_ids[p], "file_name": relative_path(p, coco_dir),
                        "height": plan.sizes[p][0], "width": plan.sizes[p][1]}
                       for p in plan.readable if p not in tally.failed],
            "categories": fmt.category_list(plan.labels, {e["category_id"] for e in tally.coco}),
            "annotations": [],
        }
        io.atomic_write_json(io.join(coco_dir, "images.json"), images_doc, indent=None)
    summary = InferenceSummary(
        model=plan.predictor.export_dir, out_dir=plan.out_dir, images_found=len(plan.files), images=tally.images,
        detections=tally.detections, detections_per_class=dict(sorted(tally.per_class.items())),
        min_score=plan.min_score, formats=list(plan.formats), outputs=outputs, batch_size=plan.batch_size,
        skipped=skips.records, num_skipped=len(skips.records), labelme_instances_without_polygon=tally.labelme_empty,
        seconds=round(seconds, 3), images_per_sec=round(tally.images / seconds, 3) if seconds > 0 else None)
    io.atomic_write_json(io.join(plan.out_dir, "summary.json"), summary.to_json())
    return summary


def run_inference(model, images, out_dir, *, formats: Sequence[str] = FORMATS, min_score: float = 0.5,
                  label_map=None, batch_size: int = 1, progress=None, strict: bool = False,
                  workers: Optional[int] = None) -> InferenceSummary:
    """Run every image matched by ``images`` through ``model`` and write ``formats``.

    Args:
        model: an export directory (or its ``saved_model/``), a ``.tflite`` or ``.onnx`` file
            from `tfod-seg export --format`, or a loaded predictor (`load_predictor`).
        images: a file, a directory, a glob, or a list of those (see `list_images`).
        out_dir: output directory (layout in the module docstring); may be a URL.
        formats: any of ``"overlay", "coco", "labelme", "semantic"``.
        min_score: detections below this score are dropped before anything is written.
        label_map: a `LabelMap`, a ``label_map.pbtxt`` path, or None (use the one beside the
            export; without one, classes are named ``class_<id>``).
        batch_size: images per model call; used only when every image has the same size and
            the model accepts that batch, else 1.
        progress: object with ``.update(n)`` (e.g. tqdm), advanced once per image.
        strict: an unreadable image raises `StrictModeError` instead of being skipped.
        workers: threads pasting masks and writing files beside the model (default
            `tfod_seg.inference.stream.default_workers`); outputs do not depend on it.

    Returns the `InferenceSummary` (also written to ``out_dir/summary.json``).
    """
    skips = _Skips(strict, progress)
    start = time.perf_counter()
    plan = plan_inference(model, images, out_dir, formats=formats, min_score=min_score, label_map=label_map,
                          batch_size=batch_size, skips=skips, workers=workers)
    tally = execute_inference(plan, skips, progress=progress, workers=workers)
    return report_inference(plan, tally, skips, time.perf_counter() - start)


class ImageWriter:
    """The per-image work of `run_inference`, run in the writer threads: detections from the
    raw outputs (masks pasted), then every requested file. Touches no shared state; returns
    what the caller aggregates in input order."""

    def __init__(self, plan: InferencePlan):
        self.plan = plan

    def names(self, det) -> List[str]:
        labels = self.plan.labels
        if labels is None:
            return [f"class_{c}" for c in det.classes.tolist()]
        items = [labels.get(c) for c in det.classes.tolist()]
        return [it.name if it else f"class_{c}" for it, c in zip(items, det.classes.tolist())]

    def __call__(self, index, image, outputs, j) -> Dict:
        plan = self.plan
        path, stem = plan.readable[index], plan.stems[index]
        h, w = image.shape[:2]
        det = plan.predictor.detections_from_outputs(outputs, j, h, w, min_score=plan.min_score)
        names = self.names(det)
        # Each mask's bounding rows/columns, found once: drawing and polygon tracing work on crops.
        bounds = [fmt.mask_bounds(m) for m in det.masks] if det.masks is not None else None
        result = {"names": names, "coco": [], "labelme_empty": 0}
        if "overlay" in plan.formats:
            fmt.write_png(io.join(plan.dirs["overlay"], stem + ".png"),
                          draw_detections(image, det, plan.labels, bounds=bounds), rgb=True)
        if "coco" in plan.formats:
            result["coco"] = fmt.coco_results(det, plan.image_ids[path])
        if "labelme" in plan.formats:
            shapes, result["labelme_empty"] = fmt.labelme_shapes(det, names, bounds=bounds)
            labelme_dir = plan.dirs["labelme"]
            write_labelme(io.join(labelme_dir, stem + ".json"), image_path=relative_path(path, labelme_dir),
                          height=det.height, width=det.width, shapes=shapes)
        if "semantic" in plan.formats:
            masks = det.masks if det.masks is not None else _box_masks(det)  # box-only model: boxes stand in
            fmt.write_png(io.join(plan.dirs["semantic"], stem + ".png"),
                          semantic_map(masks, det.classes, det.scores, (det.height, det.width), bounds=bounds), rgb=False)
        return result


def _box_masks(det):
    masks = np.zeros((len(det), det.height, det.width), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(np.rint(det.pixel_boxes()).astype(int)):
        masks[k, max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
    return masks
