"""Where the detections measured against the zones come from.

Both sources yield `ImageDetections` (one image: its name, size, `Detections` with
full-image masks, and the decoded image when there is one, for overlays):

* `model_source`: a model export (SavedModel, ``.tflite``, ``.onnx``) run over ``--images``;
* `predictions_source`: predictions already made (``tfod-seg infer``'s COCO results, RLE
  masks) with a COCO JSON naming the images and their sizes (``--gt``); ``--images DIR``
  (optional) is the folder ``file_name`` is relative to, needed only for overlays.

Class names are label-map names (``name``, not ``display_name``): rules use them.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Dict, Iterator, List, Optional

import numpy as np

from tfod_seg import io
from tfod_seg.errors import UserError
from tfod_seg.evaluation.inputs import check_ground_truth, check_results
from tfod_seg.inference.detections import Detections
from tfod_seg.inference.predict import find_label_map, load_predictor, read_image
from tfod_seg.inference.run import header_size, list_images
from tfod_seg.labelmap import read_label_map

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class ImageDetections:
    """One image's detections (full-image masks) and, when available, its RGB pixels."""

    name: str  # the image path (model source) or its COCO file_name
    height: int
    width: int
    detections: Detections
    image: Optional[np.ndarray] = None  # uint8 (H, W, 3)


@dataclasses.dataclass
class DetectionSource:
    """Class names (id -> name), how many images, and the iterator of `ImageDetections`."""

    describe: str
    class_names: Dict[int, str]
    num_images: int
    images: Iterator[ImageDetections]
    notes: List[str] = dataclasses.field(default_factory=list)

    def name_of(self, class_id: int) -> str:
        return self.class_names.get(int(class_id), f"class_{int(class_id)}")


def _model_classes(model, label_map) -> Dict[int, str]:
    path = label_map or find_label_map(model)
    if path is None:
        raise UserError(f"--model {model}: no label_map.pbtxt beside the model; pass --label-map so rules can "
                        "name classes")
    return {item.id: item.name for item in read_label_map(path, allow_gaps=True)}


def model_source(model, images, *, label_map=None, min_score: float = 0.5, need_pixels: bool = True) -> DetectionSource:
    """Run ``model`` over ``images`` (a file, folder, glob or a list of them)."""
    files = list_images(images)
    predictor = load_predictor(model)
    if not getattr(predictor, "has_masks", True):
        raise UserError(f"--model {model}: the export has no masks (detection_masks); zones are measured on "
                        "instance masks, not boxes: export a Mask R-CNN")
    classes = _model_classes(model, label_map)

    def generate() -> Iterator[ImageDetections]:
        for path in files:
            image = read_image(path)
            det = predictor.predict(image, min_score=min_score)
            yield ImageDetections(path, det.height, det.width, det, image if need_pixels else None)

    return DetectionSource(f"model {model}", classes, len(files), generate())


def _result_detections(results: List[Dict], height: int, width: int) -> Detections:
    from pycocotools import mask as mask_utils

    if not results:
        return Detections.empty(height, width)
    rles = [dict(r["segmentation"], counts=r["segmentation"]["counts"].encode("ascii")) for r in results]
    masks = np.asarray(mask_utils.decode(rles), np.uint8).transpose(2, 0, 1)
    x, y, w, h = np.asarray([r["bbox"] for r in results], np.float32).T
    boxes = np.stack([y / height, x / width, (y + h) / height, (x + w) / width], axis=1)
    return Detections(boxes, [r["category_id"] for r in results], [r["score"] for r in results], masks, height, width)


def _check_masks(results: List[Dict], path: str) -> None:
    for i, r in enumerate(results):
        if "segmentation" not in r:
            raise UserError(f"--predictions {path}: result #{i} has no 'segmentation'; zones are measured on "
                            "instance masks, not boxes (use `tfod-seg infer --format coco` of a Mask R-CNN)")


def predictions_source(predictions, gt, *, images_dir=None, min_score: float = 0.5) -> DetectionSource:
    """COCO results (``predictions``) for the images of the COCO JSON ``gt``."""
    gt = io.check_path(gt, "--gt file")
    predictions = io.check_path(predictions, "--predictions file")
    gt_doc, table = check_ground_truth(io.read_json(gt, what="COCO JSON (--gt)"), gt)
    results = check_results(io.read_json(predictions, what="COCO results (--predictions)"), table, predictions)
    _check_masks(results, predictions)
    by_image = collections.defaultdict(list)
    for r in results:
        if r["score"] >= min_score:
            by_image[r["image_id"]].append(r)
    classes = {c["id"]: c["name"] for c in gt_doc["categories"]}
    known = set(classes)
    unknown = sorted({r["category_id"] for r in results} - known)
    if unknown:
        raise UserError(f"--predictions {predictions}: category ids {unknown[:10]} are not in {gt}'s categories "
                        f"{sorted(known)[:20]}")
    source = DetectionSource(f"predictions {predictions}", classes, len(gt_doc["images"]), iter(()))
    images_dir = io.check_path(images_dir, "--images folder") if images_dir else None

    def generate() -> Iterator[ImageDetections]:
        for im in gt_doc["images"]:
            h, w = im["height"], im["width"]
            det = _result_detections(sorted(by_image.get(im["id"], []), key=lambda r: -r["score"]), h, w)
            name = str(im.get("file_name") or im["id"])
            path = _find_image(name, images_dir, io.dirname(gt))
            if path is None:
                source.notes.append(f"{name}: image not found (no overlay); pass --images DIR")
            yield ImageDetections(name, h, w, det, _pixels(path, h, w) if path else None)

    source.images = generate()
    return source


def _find_image(file_name: str, images_dir: Optional[str], gt_dir: str) -> Optional[str]:
    """The image file for a COCO ``file_name``: under ``--images`` (as given, then by its base
    name), else beside the ``--gt`` file; None when ``--images`` is not given and nothing is
    found there. With ``--images``, a missing image is an error."""
    if images_dir:
        for cand in (io.resolve(file_name, images_dir), io.join(images_dir, io.basename(file_name))):
            if io.isfile(cand):
                return cand
        raise UserError(f"--images {images_dir}: image '{file_name}' (named in --gt) not found there")
    cand = io.resolve(file_name, gt_dir)
    return cand if io.isfile(cand) else None


def _pixels(path: str, height: int, width: int) -> np.ndarray:
    """The image (for overlays); one of another size than --gt says is an error: the masks
    would not match it."""
    size = header_size(path)
    if size != (height, width):
        raise UserError(f"{path}: image is {size[1]}x{size[0]} but --gt says {width}x{height}")
    return read_image(path)


__all__ = ["DetectionSource", "ImageDetections", "model_source", "predictions_source"]
