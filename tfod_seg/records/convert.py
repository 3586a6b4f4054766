"""Samples → sharded TFRecords + ``label_map.pbtxt`` + ``report.json``.

`convert_dataset` is the single conversion path for every source format: readers produce
`Sample`s (usually a `SampleStream` that also records what the reader skipped), this module
assigns label ids and the train/val split in the parent process, worker processes rasterise
masks and encode examples, and `ShardedRecordWriter` writes them in input order.

* **Label ids**: from ``label_map`` when given (instances with other labels are skipped and
  reported); else from the stream's declared classes (COCO categories, remapped to contiguous
  1..N in id order); else in order of first appearance in the input.
* **Split**: an image goes to ``val`` when ``sha256(f"{seed}:{filename}")`` (as a fraction of
  2**64) is below ``val_fraction``. The choice depends only on the seed and the image's own
  file name, so it is deterministic, streams, and does not reshuffle when images are added.
* **Shards**: ``num_shards`` train shards (default: one per 1000 images when the input size is
  known, else 1) and ``max(1, ceil(num_shards * val_fraction))`` val shards.
* **Nothing dropped silently**: every skipped image or instance is in ``report["skipped"]``
  with its reason; ``strict=True`` raises `StrictModeError` on the first one.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from tfod_seg.data.stream import SampleStream, skip_record
from tfod_seg.data.types import Sample
from tfod_seg.errors import StrictModeError, UserError
from tfod_seg.labelmap import LabelMap, read_label_map
from tfod_seg.records.example import MASK_TYPES, EncodedExample, build_example, serialize_example
from tfod_seg.records.writer import BackgroundImport, ShardedRecordWriter, default_workers, parallel_map

log = logging.getLogger(__name__)

IMAGES_PER_SHARD = 1000
# Encoded examples kept in memory while TensorFlow (needed to build and write the Examples)
# is still being imported in the background.
MAX_BUFFER_BYTES = 256 << 20


def is_val(key: str, seed: int, val_fraction: float) -> bool:
    """Deterministic split: True when ``key`` falls in the validation fraction for ``seed``."""
    if val_fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < val_fraction


def _encode_task(args) -> EncodedExample:  # runs in worker processes (no TensorFlow)
    sample, ids, names, mask_type = args
    return build_example(sample, ids, names, mask_type=mask_type)


class _LabelIds:
    def __init__(self, label_map: Optional[LabelMap]):
        self.fixed = label_map is not None
        self.ids: Dict[str, int] = {} if label_map is None else {it.name: it.id for it in label_map}
        self.display: Dict[str, Optional[str]] = {} if label_map is None else {
            it.name: it.display_name for it in label_map}

    def get(self, name: str) -> Optional[int]:
        got = self.ids.get(name)
        if got is None and not self.fixed:
            got = self.ids[name] = len(self.ids) + 1
        return got

    def label_map(self, path: Optional[str]) -> Optional[LabelMap]:
        if not self.ids:
            return None
        from tfod_seg.labelmap import LabelItem

        return LabelMap([LabelItem(i, n, self.display.get(n)) for n, i in self.ids.items()], path=path)


def _strict_fail(rec: dict) -> None:
    raise StrictModeError(f"{rec['file']}: {rec['reason']} (skipped; --strict turns skips into failures)")


def convert_dataset(samples: Iterable[Sample], out_dir: Union[str, os.PathLike], *,
                    label_map: Union[LabelMap, str, os.PathLike, None] = None,
                    num_shards: Optional[int] = None, val_fraction: float = 0.0, seed: int = 0,
                    mask_type: str = "png", workers: Optional[int] = None, strict: bool = False,
                    progress=None) -> dict:
    """Convert ``samples`` to ``out_dir/{train,val}-NNNNN-of-NNNNN.tfrecord``.

    Also writes ``out_dir/label_map.pbtxt`` and ``out_dir/report.json`` and returns the report
    (see module docstring; keys: ``mask_type``, ``num_classes``, ``label_map``, ``splits``,
    ``instances_per_class``, ``skipped``, ``num_skipped``, ``skipped_by_reason``, ``notes``,
    ``images``, ``instances``, ``reencoded_images``). ``progress`` is any object with
    ``update(n)`` (a tqdm bar); it advances once per input image.
    """
    from tfod_seg.io import atomic_write_json

    out_dir = os.fspath(out_dir)
    if mask_type not in MASK_TYPES:
        raise UserError(f"--mask-type must be one of {', '.join(MASK_TYPES)}, got {mask_type!r}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise UserError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if num_shards is not None and int(num_shards) < 1:
        raise UserError(f"--num-shards must be >= 1, got {num_shards}")
    workers = default_workers() if workers is None else max(1, int(workers))
    if isinstance(label_map, (str, os.PathLike)):
        label_map = read_label_map(label_map)
    stream = samples if isinstance(samples, SampleStream) else None
    if label_map is None and stream is not None and stream.label_names:
        label_map = LabelMap.from_names(stream.label_names)
    labels = _LabelIds(label_map)

    total = stream.total if stream is not None else (len(samples) if hasattr(samples, "__len__") else None)
    if num_shards is None:
        num_shards = max(1, math.ceil((total or 0) / IMAGES_PER_SHARD))
    num_shards = int(num_shards)
    splits = ["train"] + (["val"] if val_fraction > 0 else [])
    shard_counts = {"train": num_shards, "val": max(1, math.ceil(num_shards * val_fraction))}

    skipped: List[dict] = []
    reader_seen = 0
    seen_ids: Dict[str, str] = {}
    split_of: List[str] = []  # split of each task, in order
    class_counts: Dict[str, collections.Counter] = {s: collections.Counter() for s in splits}
    images = {s: 0 for s in splits}
    reencoded = 0
    numeric_ok = [False]  # set once a non-numeric source id has been noted
    extra_notes: List[dict] = []
    os.makedirs(out_dir, exist_ok=True)

    def reader_skips():
        nonlocal reader_seen
        if stream is not None and len(stream.skipped) > reader_seen:
            new = stream.skipped[reader_seen:]
            reader_seen = len(stream.skipped)
            skipped.extend(new)
            if strict:
                _strict_fail(new[0])
            if progress is not None:
                n_img = sum(1 for r in new if r.get("level") == "image")
                if n_img:
                    progress.update(n_img)

    def add_skip(rec: dict) -> None:
        skipped.append(rec)
        if strict:
            _strict_fail(rec)

    def tasks():
        for sample in samples:
            reader_skips()
            where = sample.source or sample.filename
            if sample.source_id in seen_ids:
                add_skip(skip_record(where, "duplicate_source_id",
                                     f"source id {sample.source_id!r} already used by {seen_ids[sample.source_id]}",
                                     "image", filename=sample.filename))
                if progress is not None:
                    progress.update(1)
                continue
            seen_ids[sample.source_id] = where
            if not numeric_ok[0] and not str(sample.source_id).isdigit():
                numeric_ok[0] = True
                extra_notes.append(skip_record(where, "non_numeric_source_id",
                                               f"source id {sample.source_id!r} is not an integer; Model Garden's "
                                               "COCO evaluator parses image/source_id as int64", "note"))
            kept, ids, names = [], [], []
            for i, inst in enumerate(sample.instances):
                cid = labels.get(inst.label)
                if cid is None:
                    known = ", ".join(label_map.names[:10]) + (", ..." if len(label_map) > 10 else "")
                    in_map = f"the label map {label_map.path}" if label_map.path else "the label map"
                    add_skip(skip_record(where, "unknown_label",
                                         f"instance {i} label '{inst.label}' is not in {in_map} (known: {known})",
                                         "instance", label=inst.label, index=i))
                    continue
                kept.append(inst)
                ids.append(cid)
                names.append(inst.label)
            if len(kept) != len(sample.instances):
                sample = dataclasses.replace(sample, instances=tuple(kept))
            split_of.append("val" if is_val(sample.filename, seed, val_fraction) else "train")
            yield (sample, ids, names, mask_type)
        reader_skips()

    writers = {s: ShardedRecordWriter(out_dir, s, shard_counts[s]) for s in splits}
    removed = []
    # Workers rasterise and PNG-encode without TensorFlow; this process imports it meanwhile
    # (after the fork) and builds + writes the tf.train.Examples in input order.
    tf_import = BackgroundImport("tensorflow")
    results = parallel_map(_encode_task, tasks(), workers=workers, on_start=tf_import.start)
    buffer: List[Tuple[str, EncodedExample]] = []
    buffered = [0]

    def flush() -> None:
        tf_import.wait()
        for split, result in buffer:
            writers[split].write(serialize_example(result.features), instances=len(result.classes))
        buffer.clear()
        buffered[0] = 0

    try:
        for w in writers.values():
            w.__enter__()
        for idx, result in enumerate(results):
            split = split_of[idx]
            for rec in result.skipped:
                add_skip(rec)
            if result.features is not None:
                buffer.append((split, result))
                buffered[0] += result.nbytes
                images[split] += 1
                if result.reencoded:
                    reencoded += 1
                class_counts[split].update(result.classes)
                if tf_import.done() or buffered[0] > MAX_BUFFER_BYTES:
                    flush()
            if progress is not None:
                progress.update(1)
        flush()
    except BaseException as e:
        results.close()  # stops the worker pool now, not at garbage collection
        tf_import.join()  # never leave an import half done in a thread at exit
        for w in writers.values():
            w.__exit__(type(e), e, None)
        raise
    for w in writers.values():
        w.__exit__(None, None, None)
        removed.extend(w.removed_stale)

    lm_path = os.path.join(out_dir, "label_map.pbtxt")
    final_map = label_map if label_map is not None else labels.label_map(lm_path)
    if final_map is not None:
        final_map.write(lm_path)
    else:
        lm_path = None
    id_to_name = final_map.to_dict() if final_map is not None else {}
    notes = (list(stream.notes) if stream is not None else []) + extra_notes
    for old in removed:
        notes.append(skip_record(old, "removed_stale_shard", "removed a shard file left by an earlier run", "note"))
    for s in splits:
        if val_fraction > 0 and s == "val" and images[s] == 0:
            notes.append(skip_record(None, "empty_val", f"no image fell into val with --val-fraction {val_fraction}; "
                                     "use a larger fraction or more images", "note"))
    report = {
        "mask_type": mask_type,
        "num_classes": len(id_to_name),
        "label_map": lm_path,
        "images": sum(images.values()),
        "instances": sum(sum(c.values()) for c in class_counts.values()),
        "splits": {
            s: {
                "images": images[s],
                "instances": sum(class_counts[s].values()),
                "files": list(writers[s].paths),
                "shards": [{"file": os.path.basename(p), "images": n, "instances": k}
                           for p, n, k in zip(writers[s].paths, writers[s].records, writers[s].instances)],
                "instances_per_class": {id_to_name.get(c, str(c)): n for c, n in sorted(class_counts[s].items())},
            }
            for s in splits
        },
        "instances_per_class": {
            name: sum(class_counts[s][cid] for s in splits) for cid, name in sorted(id_to_name.items())
        },
        "num_skipped": len(skipped),
        "skipped_by_reason": dict(sorted(collections.Counter(r["kind"] for r in skipped).items())),
        "skipped": skipped,
        "notes": notes,
        "reencoded_images": reencoded,
        "seed": seed,
        "val_fraction": val_fraction,
    }
    atomic_write_json(os.path.join(out_dir, "report.json"), report)
    return report


def class_count_lines(counts: Dict[str, int]) -> List[str]:
    """``instances per class:`` and one aligned ``name  count`` line per class (none if empty)."""
    if not counts:
        return []
    width = max(len(name) for name in counts)
    return ["instances per class:"] + [f"  {name:<{width}}  {n}" for name, n in counts.items()]


def format_summary(report: dict) -> str:
    """Human summary of a conversion report: images, instances per class, per shard, skips."""
    lines = [f"{report['images']} images, {report['instances']} instances, {report['num_classes']} classes "
             f"({report['mask_type']} masks)"]
    for s, info in report["splits"].items():
        lines.append(f"  {s}: {info['images']} images, {info['instances']} instances")
        for sh in info["shards"]:
            lines.append(f"    {sh['file']}: {sh['images']} images, {sh['instances']} instances")
    lines += class_count_lines(report["instances_per_class"])
    if report["num_skipped"]:
        lines.append(f"skipped {report['num_skipped']} (details in report.json):")
        for kind, n in report["skipped_by_reason"].items():
            example = next(r for r in report["skipped"] if r["kind"] == kind)
            lines.append(f"  {kind}: {n}   e.g. {example['file']}: {example['reason']}")
    else:
        lines.append("skipped: nothing")
    if report.get("reencoded_images"):
        lines.append(f"re-encoded images (EXIF orientation / colour mode): {report['reencoded_images']}")
    for note in report.get("notes", []):
        lines.append(f"note: {note['file'] + ': ' if note['file'] else ''}{note['reason']}")
    if report["label_map"]:
        lines.append(f"label map: {report['label_map']}")
    return "\n".join(lines)
