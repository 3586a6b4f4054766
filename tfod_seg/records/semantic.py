"""Scene (semantic-segmentation) records: LabelMe/COCO/VOC polygons of scene classes (road,
sidewalk, parking, no_parking, ...) → Model Garden semantic-segmentation TFRecords.

Keys written (the ones ``official.vision.dataloaders.segmentation_input.Decoder`` reads)::

    image/encoded, image/format, image/height, image/width, image/filename, image/source_id,
    image/segmentation/class/encoded   one single-channel 8-bit PNG: the class id of each pixel
    image/segmentation/class/format    'png'

Class ids: 0 is the background (pixels no shape covers), label-map ids 1..N the classes, so
the model's ``num_classes`` is N + 1. Where shapes overlap, the one drawn LATER wins (the
order of the annotation file, as LabelMe's own ``labelme_export_json``/labelme2voc paints).
Instances without a mask (box-only) cannot paint pixels: skipped and counted. The split is
`tfod_seg.records.convert.is_val` of the image's ``filename`` (the key instance conversion uses:
same images and seed give the same split as instance records).
"""

from __future__ import annotations

import contextlib

import dataclasses
import logging
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from tfod_seg import io
from tfod_seg.data.masks import MaskError, encode_mask_png, rasterize
from tfod_seg.data.stream import skip_record
from tfod_seg.data.types import Sample
from tfod_seg.errors import AnnotationError, StrictModeError, UserError
from tfod_seg.labelmap import LabelItem, LabelMap, read_label_map
from tfod_seg.records.convert import is_val
from tfod_seg.records.example import bytes_feature, int64_feature, load_image, serialize_example
from tfod_seg.records.metadata import LABEL_MAP_NAME, REPORT_NAME
from tfod_seg.records.writer import ShardedRecordWriter

log = logging.getLogger(__name__)

IMAGES_PER_SHARD = 1000
TASK = "semantic"


@dataclasses.dataclass
class SemanticReport:
    """What `convert_semantic` wrote; `to_json()` is ``report.json`` (``"task": "semantic"``)."""

    out_dir: str
    label_map: str
    classes: Dict[int, str]  # class id -> name, 0 = background
    splits: Dict[str, Dict]  # split -> {"images", "files"}
    pixel_share: Dict[str, float]  # class name -> share of all written pixels
    skipped: List[Dict]
    task: str = TASK

    @property
    def num_classes(self) -> int:
        """Model Garden's ``task.model.num_classes`` (background included)."""
        return len(self.classes)

    @property
    def images(self) -> int:
        return sum(s["images"] for s in self.splits.values())

    def to_json(self) -> Dict:
        out = dataclasses.asdict(self)
        out["classes"] = {str(k): v for k, v in self.classes.items()}
        out["num_classes"] = self.num_classes
        out["num_skipped"] = len(self.skipped)
        return out


def class_map(sample: Sample, ids: Dict[str, int], skipped: List[Dict]) -> np.ndarray:
    """uint8 ``(H, W)`` class ids of ``sample`` (0 background); later shapes paint over
    earlier ones. Instances whose label is not in ``ids`` or whose mask is unusable are
    recorded in ``skipped``."""
    where = sample.source or sample.filename
    out = np.zeros((sample.height, sample.width), np.uint8)
    for k, inst in enumerate(sample.instances):
        if inst.label not in ids:
            skipped.append(skip_record(where, "unknown_label", f"'{inst.label}' is not in the label map", "instance",
                                       label=inst.label, index=k))
            continue
        if inst.mask is None:
            skipped.append(skip_record(where, "no_mask", f"'{inst.label}' has no polygon or mask to paint",
                                       "instance", label=inst.label, index=k))
            continue
        try:
            out[rasterize(inst.mask, sample.height, sample.width).astype(bool)] = ids[inst.label]
        except MaskError as e:
            skipped.append(skip_record(where, e.kind, f"'{inst.label}': {e}", "instance", label=inst.label, index=k))
    return out


def semantic_features(sample: Sample, labels: np.ndarray) -> Dict:
    """The Example features of one image and its class map (see the module docstring)."""
    image = load_image(sample)
    if (image.height, image.width) != labels.shape:
        raise AnnotationError(sample.source or sample.filename,
                              f"image is {image.width}x{image.height} but the annotation says "
                              f"{labels.shape[1]}x{labels.shape[0]}")
    return {
        "image/encoded": bytes_feature([image.encoded]),
        "image/format": bytes_feature([image.format.encode()]),
        "image/height": int64_feature([image.height]),
        "image/width": int64_feature([image.width]),
        "image/filename": bytes_feature([sample.filename.encode("utf-8")]),
        "image/source_id": bytes_feature([str(sample.source_id).encode("utf-8")]),
        "image/segmentation/class/encoded": bytes_feature([encode_mask_png(labels)]),
        "image/segmentation/class/format": bytes_feature([b"png"]),
    }


def _ids(samples: List[Sample], label_map) -> LabelMap:
    if label_map is not None:
        return label_map if isinstance(label_map, LabelMap) else read_label_map(label_map)
    names: List[str] = []
    for s in samples:
        names.extend(i.label for i in s.instances if i.label not in names)
    if not names:
        raise UserError("no labelled shapes found: a scene model needs polygons of its classes (road, sidewalk, ...)")
    return LabelMap([LabelItem(i + 1, n) for i, n in enumerate(names)])


def _check(val_fraction: float, num_shards: Optional[int]) -> None:
    if not 0.0 <= float(val_fraction) < 1.0:
        raise UserError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if num_shards is not None and int(num_shards) < 1:
        raise UserError(f"--num-shards must be >= 1, got {num_shards}")


def _shards(n: int, num_shards: Optional[int]) -> int:
    return max(1, int(num_shards) if num_shards else -(-n // IMAGES_PER_SHARD))


def convert_semantic(samples: Iterable[Sample], out_dir, *, label_map=None, val_fraction: float = 0.0, seed: int = 0,
                     num_shards: Optional[int] = None, strict: bool = False, progress=None) -> SemanticReport:
    """Write ``OUT/train-*.tfrecord`` (and ``val-*``), ``label_map.pbtxt`` and ``report.json``.

    ``label_map`` (a path or `LabelMap`) fixes the class ids (other labels are skipped and
    counted); default: order of first appearance. ``strict``: the first skip fails the run.
    The class maps are built in this process (scene datasets are small: hundreds of images).
    """
    _check(val_fraction, num_shards)
    out_dir = io.check_path(out_dir, "--out folder")
    stream = samples
    samples = list(stream)  # first appearance of the labels needs one pass; samples hold no pixels
    skipped: List[Dict] = list(getattr(stream, "skipped", []))
    labels = _ids(samples, label_map)
    io.makedirs(out_dir, "--out folder")  # only once the input and labels are known to be usable
    ids = {item.name: item.id for item in labels}
    # One split per sample (by position: two images may share a source id).
    split_of = ["val" if is_val(s.filename, seed, val_fraction) else "train" for s in samples]
    counts = {"train": split_of.count("train")}
    counts["val"] = len(samples) - counts["train"]
    pixels = np.zeros(256, np.int64)
    with io.output_lock(out_dir):
        written = _write(samples, out_dir, ids, split_of, counts, num_shards, skipped, pixels, strict, progress)
        label_path = io.join(out_dir, LABEL_MAP_NAME)
        io.atomic_write_text(label_path, labels.to_pbtxt())
        total = max(int(pixels.sum()), 1)
        names = {0: "background", **{item.id: item.name for item in labels}}
        report = SemanticReport(out_dir=out_dir, label_map=label_path, classes=names, splits=written,
                                pixel_share={names[i]: round(float(pixels[i]) / total, 4) for i in names},
                                skipped=skipped)
        io.atomic_write_json(io.join(out_dir, REPORT_NAME), report.to_json())
    return report


def _write(samples: Sequence[Sample], out_dir: str, ids, split_of, counts, num_shards, skipped, pixels, strict,
           progress) -> Dict[str, Dict]:
    splits = [s for s in ("train", "val") if counts[s] or s == "train"]
    writers = {s: ShardedRecordWriter(out_dir, s, _shards(counts[s], num_shards if s == "train" else None))
               for s in splits}
    done = {s: 0 for s in splits}
    with contextlib.ExitStack() as stack:
        for w in writers.values():
            stack.enter_context(w)
        for sample, split in zip(samples, split_of):
            before = len(skipped)
            try:
                labels = class_map(sample, ids, skipped)
                features = semantic_features(sample, labels)
            except AnnotationError as e:
                skipped.append(skip_record(sample.source or sample.filename, "bad_image", str(e)))
                features = None
            if strict and len(skipped) > before:
                raise StrictModeError(f"{skipped[before]['file']}: {skipped[before]['reason']} (--strict)")
            if features is not None:
                writers[split].write(serialize_example(features))
                done[split] += 1
                pixels += np.bincount(labels.reshape(-1), minlength=256)
            if progress is not None:
                progress.update(1)
    return {s: {"images": done[s], "files": [io.basename(p) for p in writers[s].paths]} for s in splits}


__all__ = ["SemanticReport", "class_map", "convert_semantic", "semantic_features"]
