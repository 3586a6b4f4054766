"""Render ground truth, predictions, or both side by side, one PNG per image.

Ground truth (and the images) come from one of: TFRecords (``records``), a LabelMe folder
(``labelme``), a COCO JSON with its image folder (``coco`` + ``image_dir``); or ``images``
alone (no ground truth). Predictions come from an export (``model``, run on each image) or a
COCO results JSON (``predictions``). Result image ids are resolved, in this order, through a
COCO ``images`` list beside the results file (``images.json`` written by `tfod-seg infer`, or
``gt.json`` written by `tfod-seg score`) by file name; else the COCO ground truth's ids; else
the record order (``1..N``, the ids `tfod-seg score` gives).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from tfod_seg import io
from tfod_seg.annotations import open_reader
from tfod_seg.data.images import decode_rgb, load_rgb
from tfod_seg.data.masks import MaskError, compressed_rle_counts, rasterize
from tfod_seg.errors import AnnotationError, UserError
from tfod_seg.io import read_json
from tfod_seg.inference.detections import Detections
from tfod_seg.inference.draw import draw_detections, draw_instances, side_by_side, titled
from tfod_seg.inference.formats import write_png
from tfod_seg.inference.predict import Predictor, find_label_map
from tfod_seg.inference.run import list_images
from tfod_seg.labelmap import LabelMap, read_label_map
from tfod_seg.records.reader import iter_records

log = logging.getLogger(__name__)


@dataclasses.dataclass
class View:
    """One image and its ground truth: masks ``(N, H, W)`` or None, pixel boxes
    ``[xmin, ymin, xmax, ymax]`` ``(N, 4)``, label names."""

    key: str  # file name used for the output and to match predictions
    image: np.ndarray
    image_id: Optional[int] = None
    masks: Optional[np.ndarray] = None
    boxes: Optional[np.ndarray] = None
    labels: Optional[List[str]] = None

    @property
    def has_gt(self) -> bool:
        return self.labels is not None


def _from_records(records, label_map) -> Iterator[View]:

    for i, rec in enumerate(iter_records(records)):
        h, w = rec.height, rec.width
        b = rec.boxes
        boxes = np.stack([b[:, 1] * w, b[:, 0] * h, b[:, 3] * w, b[:, 2] * h], 1) if len(b) else np.zeros((0, 4))
        labels = []
        for k, c in enumerate(rec.classes.tolist()):
            item = label_map.get(int(c)) if label_map is not None else None
            labels.append(item.name if item else (rec.class_texts[k] if k < len(rec.class_texts) else f"class_{c}"))
        masks = rec.masks if rec.masks is not None and len(rec.masks) == len(labels) and len(labels) else None
        yield View(rec.filename or rec.source_id or f"image_{i + 1}", rec.image(), i + 1, masks, boxes, labels)


def _sample_masks(stream, sample):
    """Full-image masks of a sample's instances (None when one has no mask); a mask that cannot
    be rasterised is drawn empty and counted on the stream."""
    if not sample.instances or any(inst.mask is None for inst in sample.instances):
        return None
    masks = []
    for k, inst in enumerate(sample.instances):
        try:
            masks.append(rasterize(inst.mask, sample.height, sample.width))
        except MaskError as e:
            stream.skip(sample.source, e.kind, f"instance {k} '{inst.label}': {e} (drawn without its mask)",
                        "instance")
            masks.append(np.zeros((sample.height, sample.width), np.uint8))
    return np.stack(masks)


def _from_samples(stream, image_id_of=None) -> Iterator[View]:
    """Views from a `SampleStream` of the one data model (LabelMe, COCO readers); masks are
    rasterised per image as they are drawn. An image that cannot be read (missing, corrupt,
    over the pixel limit) is skipped and counted on the stream; all skips are logged at the end."""
    for sample in stream:
        try:
            image = load_rgb(sample.image_path) if sample.image_path else decode_rgb(sample.image_bytes,
                                                                                       source=sample.source)
        except AnnotationError as e:
            stream.skip(sample.source, "bad_image", str(e))
            continue
        boxes = np.array([inst.box for inst in sample.instances], np.float32).reshape(-1, 4)
        masks = _sample_masks(stream, sample)
        image_id = image_id_of(sample) if image_id_of is not None else None
        yield View(sample.filename, image, image_id, masks, boxes, [inst.label for inst in sample.instances])
    for rec in getattr(stream, "skipped", ()):
        log.warning("skipped %s: %s", rec.get("file"), rec.get("reason"))


def _coco_image_id(sample) -> Optional[int]:
    """The COCO image id (the sample's ``source_id``), to match results files using the same ids."""
    try:
        return int(sample.source_id)
    except (TypeError, ValueError):
        return None


def _from_images(images) -> Iterator[View]:

    for path in list_images(images):
        yield View(os.path.basename(path), load_rgb(path))


def _check_result(r, i: int, path: str) -> dict:
    """One COCO result, its fields type-checked (the drawing code then cannot crash on it)."""
    def bad(what):
        return UserError(f"{path}: result {i}: {what}")

    if not isinstance(r, dict):
        raise bad(f"expected an object, got {type(r).__name__}")
    if isinstance(r.get("image_id"), bool) or not isinstance(r.get("image_id"), int):
        raise bad(f"image_id must be an integer, got {r.get('image_id')!r}"[:300])
    if isinstance(r.get("category_id"), bool) or not isinstance(r.get("category_id"), int):
        raise bad(f"category_id must be an integer, got {r.get('category_id')!r}"[:300])
    score = r.get("score", 1.0)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
        raise bad(f"score must be a finite number, got {score!r}"[:300])
    bbox = r.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                             and np.isfinite(v) for v in bbox)):
        raise bad(f"bbox must be [x, y, width, height] finite numbers, got {bbox!r}"[:300])
    seg = r.get("segmentation")
    if seg is not None and not (isinstance(seg, dict) and isinstance(seg.get("counts"), (str, list))
                                and isinstance(seg.get("size"), list) and len(seg["size"]) == 2):
        raise bad("segmentation must be a COCO RLE {'counts': ..., 'size': [h, w]}")
    return r


class _ResultsIndex:
    """COCO results grouped by image, found by image id or file name."""

    def __init__(self, path: str):
        results = read_json(path, what="COCO results JSON file")
        if isinstance(results, dict) and "annotations" in results:
            results = results["annotations"]
        if not isinstance(results, list):
            raise UserError(f"{path}: expected a JSON list of COCO results, got {type(results).__name__}")
        self.by_id: Dict[int, List[Dict]] = {}
        for i, r in enumerate(results):
            r = _check_result(r, i, path)
            self.by_id.setdefault(r["image_id"], []).append(r)
        self.by_name: Dict[str, int] = {}
        self.names: Dict[int, str] = {}
        for cand in ("images.json", "gt.json"):
            doc_path = io.join(io.dirname(io.abspath(path)), cand)
            if io.isfile(doc_path):
                self._read_images(doc_path)
                break

    def _read_images(self, doc_path: str) -> None:
        doc = read_json(doc_path, what="COCO images JSON file")
        images = doc.get("images", []) if isinstance(doc, dict) else None
        cats = doc.get("categories", []) if isinstance(doc, dict) else None
        if not isinstance(images, list) or not isinstance(cats, list):
            raise UserError(f"{doc_path}: expected a COCO object with 'images' and 'categories' lists")
        try:
            self.by_name = {os.path.basename(str(im["file_name"])): int(im["id"]) for im in images}
            self.names = {int(c["id"]): str(c["name"]) for c in cats}
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{doc_path}: images need 'file_name' and integer 'id', categories 'id' and 'name' "
                            f"({type(e).__name__}: {e})") from None

    def detections(self, view: View, min_score: float):
        from pycocotools import mask as mask_utils

        image_id = self.by_name.get(os.path.basename(view.key), view.image_id) if self.by_name else view.image_id
        h, w = view.image.shape[:2]
        rs = [r for r in self.by_id.get(image_id, []) if r.get("score", 1.0) >= min_score] if image_id is not None else []
        boxes = np.array([[r["bbox"][1] / h, r["bbox"][0] / w, (r["bbox"][1] + r["bbox"][3]) / h,
                           (r["bbox"][0] + r["bbox"][2]) / w] for r in rs], np.float32).reshape(-1, 4)
        masks = None
        if rs and all(r.get("segmentation") is not None for r in rs):
            masks = np.stack([_result_mask(r["segmentation"], h, w, mask_utils) for r in rs])
        elif not rs:
            masks = np.zeros((0, h, w), np.uint8)
        return Detections(boxes, [r["category_id"] for r in rs], [r.get("score", 1.0) for r in rs], masks, h, w), image_id


def _result_mask(seg: dict, h: int, w: int, mask_utils):
    """A result's RLE as an ``(h, w)`` mask; an RLE of another size or a corrupt one is empty."""
    if list(seg["size"]) != [h, w]:
        log.warning("result mask size %s differs from the image size %s: not drawn", seg["size"], [h, w])
        return np.zeros((h, w), np.uint8)
    try:
        rle = seg if isinstance(seg["counts"], list) else dict(seg, counts=seg["counts"].encode("ascii"))
        if isinstance(rle["counts"], list):
            rle = mask_utils.frPyObjects(rle, h, w)
        elif compressed_rle_counts(rle["counts"]) is None or sum(compressed_rle_counts(rle["counts"])) != h * w:
            raise ValueError("not a valid compressed RLE")
        return mask_utils.decode(rle)
    except Exception as e:  # pycocotools raises bare Exceptions
        log.warning("result mask not drawn: %s", e)
        return np.zeros((h, w), np.uint8)


@dataclasses.dataclass
class RenderSummary:
    """What `render` wrote. ``summary["written"]`` works too (the keys of ``to_json()``)."""

    written: int
    out_dir: str
    with_gt: bool
    with_predictions: bool
    unmatched_predictions: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def __getitem__(self, key: str):
        return self.to_json()[key]


def _check_sources(records, labelme, coco, images, model, predictions) -> None:
    sources = [s for s in (records, labelme, coco, images) if s is not None]
    if len(sources) != 1:
        raise UserError("give exactly one image source: --records, --labelme, --coco (with --image-dir) or --images")
    if model is not None and predictions is not None:
        raise UserError("give at most one of --model and --predictions")
    if images is not None and model is None and predictions is None:
        raise UserError("--images has no ground truth: add --model or --predictions to show predictions")


def _label_map(label_map, model, predictor, results) -> Optional[LabelMap]:
    if label_map is not None and not isinstance(label_map, LabelMap):
        return read_label_map(label_map, allow_gaps=True)
    if label_map is None and predictor is not None:
        path = find_label_map(model)
        label_map = read_label_map(path, allow_gaps=True) if path else None
    if label_map is None and results is not None and results.names:
        ids = sorted(results.names)
        label_map = LabelMap.from_names([results.names[i] for i in ids]) if ids == list(range(1, len(ids) + 1)) else None
    return label_map


def _views(records, labelme, coco, image_dir, images, label_map) -> Tuple[Iterator[View], List[dict]]:
    """The views to draw and the list the reader records its skips in."""
    if records is not None:
        return _from_records(records, label_map), []
    if labelme is not None or coco is not None:
        stream = (open_reader("labelme", os.fspath(labelme), allow_outside_root=True) if labelme is not None else
                  open_reader("coco", os.fspath(coco), image_dir=image_dir, allow_outside_root=True))
        return _from_samples(stream, _coco_image_id if coco is not None else None), stream.skipped
    return _from_images(images), []


def _output_name(key: str, used: set, fallback: str) -> str:
    stem = os.path.splitext(os.path.basename(key.replace("\\", "/")))[0]
    stem = "".join(c if c.isalnum() or c in "-_. " else "_" for c in stem)[:100].strip(". ") or fallback
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}_{n}"
    used.add(name)
    return name


def render(out_dir, *, records=None, labelme=None, coco=None, image_dir=None, images=None, model=None,
           predictions=None, label_map=None, min_score: float = 0.5, max_images: Optional[int] = None,
           progress=None) -> RenderSummary:
    """Write ``out_dir/<image stem>.png`` for each image: ground truth, predictions, or both
    side by side (ground truth left). ``out_dir`` may be a URL."""
    _check_sources(records, labelme, coco, images, model, predictions)
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    predictor = Predictor(model) if model is not None else None
    results = _ResultsIndex(os.fspath(predictions)) if predictions is not None else None
    label_map = _label_map(label_map, model, predictor, results)
    written, unmatched, used = 0, 0, set()
    views, skipped = _views(records, labelme, coco, image_dir, images, label_map)
    for view in views:
        if max_images is not None and written >= max_images:
            break
        panels = []
        if view.has_gt:
            gt = draw_instances(view.image, masks=view.masks, boxes=view.boxes, labels=view.labels)
            panels.append(titled(gt, f"ground truth: {len(view.labels)}"))
        if predictor is not None:
            det = predictor.predict(view.image, min_score=min_score)
        elif results is not None:
            det, image_id = results.detections(view, min_score)
            unmatched += image_id is None
        if predictor is not None or results is not None:
            panels.append(titled(draw_detections(view.image, det, label_map), f"predictions (score >= {min_score}): {len(det)}"))
        name = _output_name(view.key, used, f"image_{written + 1}")
        write_png(io.join(out_dir, name + ".png"), side_by_side(panels), rgb=True)
        written += 1
        if progress is not None:
            progress.update(1)
    if written == 0:
        why = f"{len(skipped)} skipped, first: {skipped[0]['file']}: {skipped[0]['reason']}" if skipped else \
            "the source is empty"
        raise UserError(f"no images to render ({why})")
    return RenderSummary(written, out_dir, images is None, predictor is not None or results is not None, unmatched)
