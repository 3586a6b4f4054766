"""Samples → sharded TFRecords + ``label_map.pbtxt`` + ``report.json``.

`convert_dataset` is the single conversion path for every source format and every writer:
readers produce `Sample`s (usually a `SampleStream` that also records what the reader
skipped); a `ConversionPlan` assigns label ids and the train/val split (in the launching
process) and yields one `EncodeTask` per image; a writer (`LocalWriter` here: worker processes
and `ShardedRecordWriter`; `tfod_seg.records.beam.BeamWriter`: an Apache Beam pipeline) runs
`encode_task` on each and writes the shards; `build_report` turns the `Tally` of counts and
skips into a `ConvertReport`.

* **Label ids**: from ``label_map`` when given (instances with other labels are skipped and
  reported); else from the stream's declared classes (COCO categories, remapped to contiguous
  1..N in id order); else in order of first appearance in the input.
* **Split**: an image goes to ``val`` when ``sha256(f"{seed}:{filename}")`` (as a fraction of
  2**64) is below ``val_fraction``. The choice depends only on the seed and the image's own
  file name, so it is deterministic, streams, and does not reshuffle when images are added.
* **Shards**: ``num_shards`` train shards (default: one per 1000 images when the input size is
  known, else 1) and ``max(1, ceil(num_shards * val_fraction))`` val shards.
* **Nothing dropped silently**: every skipped image or instance is in ``report.skipped``
  with its reason; ``strict=True`` raises `StrictModeError` on the first one.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import logging
import math
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from tfod_seg import io
from tfod_seg.data.stream import SampleStream, skip_record
from tfod_seg.data.types import Sample
from tfod_seg.errors import StrictModeError, UserError
from tfod_seg.labelmap import LabelItem, LabelMap, read_label_map
from tfod_seg.records.example import (EXAMPLE_PROTO_PACKAGE, MASK_TYPES, EncodedExample, attach_image,
                                      build_example, detach_image, serialize_example)
from tfod_seg.records.metadata import LABEL_MAP_NAME, REPORT_NAME
from tfod_seg.records.writer import BackgroundImport, ShardedRecordWriter, default_workers, parallel_map

log = logging.getLogger(__name__)

IMAGES_PER_SHARD = 1000
# Encoded examples kept in memory while the Example proto module (needed to build the Examples)
# is still being imported in the background; beyond that the workers wait. Pass-through image
# files are not held (they are read again when written, see `detach_image`), so an entry is its
# PNG masks (~1 kB each for 640x480) plus about BUFFER_ITEM_BYTES of Python objects: 32 MB holds
# ~3000 photo-sized images, more than 2 workers encode during the import, and bounds what a large
# conversion holds beyond a small one (tools/bench_memory.py).
MAX_BUFFER_BYTES = 32 << 20
BUFFER_ITEM_BYTES = 4096


def is_val(key: str, seed: int, val_fraction: float) -> bool:
    """Deterministic split: True when ``key`` falls in the validation fraction for ``seed``."""
    if val_fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < val_fraction


# ---------------------------------------------------------------------------------------
# Plan: options, label ids, split, one task per image
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """What to write (shared by every writer); `check()` validates user values."""

    num_shards: Optional[int] = None
    val_fraction: float = 0.0
    seed: int = 0
    mask_type: str = "png"
    strict: bool = False

    def check(self) -> None:
        if self.mask_type not in MASK_TYPES:
            raise UserError(f"--mask-type must be one of {', '.join(MASK_TYPES)}, got {self.mask_type!r}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise UserError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.num_shards is not None and int(self.num_shards) < 1:
            raise UserError(f"--num-shards must be >= 1, got {self.num_shards}")


@dataclasses.dataclass
class EncodeTask:
    """One image to encode: ``order`` is its position among all events of the plan (tasks and
    the skips recorded while planning), so skips can be put back in input order; ``args`` is
    what `encode_task` takes (picklable: sent to worker processes or Beam workers)."""

    order: int
    split: str
    args: Tuple[Sample, List[int], List[str], str]


def encode_task(args) -> EncodedExample:  # runs in worker processes (no TensorFlow)
    """The per-image encoding of every writer: rasterise masks, encode PNGs, build features."""
    sample, ids, names, mask_type = args
    return build_example(sample, ids, names, mask_type=mask_type)


_encode_task = encode_task  # the name the worker pool calls (tests replace it)


def _encode_local(args) -> EncodedExample:  # runs in the local writer's worker processes
    """`_encode_task`, with an unchanged local image file left out of the result (`detach_image`):
    the parent reads it again when writing instead of receiving it through the pipe."""
    return detach_image(_encode_task(args), args[0])


def strict_error(rec: dict) -> StrictModeError:
    return StrictModeError(f"{rec['file']}: {rec['reason']} (skipped; --strict turns skips into failures)")


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
        return LabelMap([LabelItem(i, n, self.display.get(n)) for n, i in self.ids.items()], path=path)


SkipSink = Callable[[dict, int], None]  # (skip record, order)


class ConversionPlan:
    """Label ids, split and shard counts for one conversion, and the stream of `EncodeTask`s.

    Skips found while planning (the reader's, duplicate source ids, labels outside a fixed
    label map) go to ``on_skip(record, order)`` as they happen; ``on_progress(n)`` advances a
    progress bar by images that will not reach a writer.
    """

    def __init__(self, samples: Iterable[Sample], options: ConvertOptions,
                 label_map: Union[LabelMap, str, os.PathLike, None] = None):
        options.check()
        self.samples = samples
        self.options = options
        if isinstance(label_map, (str, os.PathLike)):
            label_map = read_label_map(label_map)
        self.stream = samples if isinstance(samples, SampleStream) else None
        if label_map is None and self.stream is not None and self.stream.label_names:
            label_map = LabelMap.from_names(self.stream.label_names)
        self.label_map = label_map
        self.labels = _LabelIds(label_map)
        stream = self.stream
        total = stream.total if stream is not None else (len(samples) if hasattr(samples, "__len__") else None)
        num_shards = options.num_shards
        if num_shards is None:
            num_shards = max(1, math.ceil((total or 0) / IMAGES_PER_SHARD))
        self.total = total
        self.splits = ["train"] + (["val"] if options.val_fraction > 0 else [])
        self.shard_counts = {"train": int(num_shards),
                             "val": max(1, math.ceil(int(num_shards) * options.val_fraction))}
        self.extra_notes: List[dict] = []
        self._seen_ids: Dict[str, str] = {}
        self._reader_seen = 0
        self._order = 0
        self._noted_non_numeric = False

    def final_label_map(self, path: str) -> Optional[LabelMap]:
        """The label map to write: the given one, else the ids handed out while planning."""
        return self.label_map if self.label_map is not None else self.labels.label_map(path)

    def reader_notes(self) -> List[dict]:
        return (list(self.stream.notes) if self.stream is not None else []) + self.extra_notes

    def _next_order(self) -> int:
        self._order += 1
        return self._order - 1

    def _reader_skips(self, on_skip: SkipSink, on_progress) -> None:
        stream = self.stream
        if stream is None or len(stream.skipped) <= self._reader_seen:
            return
        new = stream.skipped[self._reader_seen:]
        self._reader_seen = len(stream.skipped)
        for rec in new:
            on_skip(rec, self._next_order())
        n_img = sum(1 for r in new if r.get("level") == "image")
        if n_img:
            on_progress(n_img)

    def tasks(self, on_skip: SkipSink, on_progress=lambda n: None) -> Iterator[EncodeTask]:
        """One `EncodeTask` per image to encode, in input order."""
        for sample in self.samples:
            self._reader_skips(on_skip, on_progress)
            where = sample.source or sample.filename
            if sample.source_id in self._seen_ids:
                on_skip(skip_record(where, "duplicate_source_id",
                                    f"source id {sample.source_id!r} already used by {self._seen_ids[sample.source_id]}",
                                    "image", filename=sample.filename), self._next_order())
                on_progress(1)
                continue
            self._seen_ids[sample.source_id] = where
            self._note_source_id(sample, where)
            sample, ids, names = self._label(sample, where, on_skip)
            split = "val" if is_val(sample.filename, self.options.seed, self.options.val_fraction) else "train"
            yield EncodeTask(self._next_order(), split, (sample, ids, names, self.options.mask_type))
        self._reader_skips(on_skip, on_progress)

    def _note_source_id(self, sample: Sample, where: str) -> None:
        if not self._noted_non_numeric and not str(sample.source_id).isdigit():
            self._noted_non_numeric = True
            self.extra_notes.append(skip_record(where, "non_numeric_source_id",
                                                f"source id {sample.source_id!r} is not an integer; Model Garden's "
                                                "COCO evaluator parses image/source_id as int64", "note"))

    def _label(self, sample: Sample, where: str, on_skip: SkipSink):
        kept, ids, names = [], [], []
        label_map = self.label_map
        for i, inst in enumerate(sample.instances):
            cid = self.labels.get(inst.label)
            if cid is None:
                known = ", ".join(label_map.names[:10]) + (", ..." if len(label_map) > 10 else "")
                in_map = f"the label map {label_map.path}" if label_map.path else "the label map"
                on_skip(skip_record(where, "unknown_label",
                                    f"instance {i} label '{inst.label}' is not in {in_map} (known: {known})",
                                    "instance", label=inst.label, index=i), self._next_order())
                continue
            kept.append(inst)
            ids.append(cid)
            names.append(inst.label)
        if len(kept) != len(sample.instances):
            sample = dataclasses.replace(sample, instances=tuple(kept))
        return sample, ids, names


# ---------------------------------------------------------------------------------------
# Tally: counts and skips, whatever the writer
# ---------------------------------------------------------------------------------------
class Tally:
    """Images, instances per class and re-encoded images per split, and every skip.

    ``skipped`` is in input order whatever the order skips arrive in (a worker pool reads
    ahead, so the planner's skips of later images can come before a worker's skip of an
    earlier one): each skip carries the ``order`` of its plan event.
    """

    def __init__(self, splits: Sequence[str], strict: bool = False):
        self.strict = strict
        self._skips: List[Tuple[int, int, dict]] = []
        self.images = {s: 0 for s in splits}
        self.class_counts: Dict[str, collections.Counter] = {s: collections.Counter() for s in splits}
        self.reencoded = 0

    @property
    def skipped(self) -> List[dict]:
        """Every skip record, in input order (ties: in arrival order)."""
        return [rec for _, _, rec in sorted(self._skips, key=lambda x: x[:2])]

    def skip(self, rec: dict, order: int) -> None:
        """Record a skip of the plan event ``order``; raises `StrictModeError` when strict."""
        self._skips.append((order, len(self._skips), rec))
        if self.strict:
            raise strict_error(rec)

    def add(self, split: str, classes: Sequence[int], reencoded: bool) -> None:
        """One written image of ``split`` with these label ids."""
        self.images[split] += 1
        self.class_counts[split].update(classes)
        if reencoded:
            self.reencoded += 1


@dataclasses.dataclass
class ShardInfo:
    """One written shard: its path, and the images and instances in it."""

    path: str
    images: int
    instances: int


@dataclasses.dataclass
class WriteResult:
    """What a writer wrote: the shards of each split, in shard order, and stale shards removed."""

    shards: Dict[str, List[ShardInfo]]
    removed_stale: List[str] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Execute: the local writer (worker processes + ShardedRecordWriter)
# ---------------------------------------------------------------------------------------
class _Buffer:
    """Encoded examples waiting for the Example proto's background import (bounded by bytes)."""

    def __init__(self, writers: Dict[str, ShardedRecordWriter], proto_import: BackgroundImport):
        self.writers = writers
        self.proto_import = proto_import
        self.items: List[Tuple[str, EncodedExample]] = []
        self.nbytes = 0

    def add(self, split: str, result: EncodedExample) -> None:
        self.items.append((split, result))
        self.nbytes += result.nbytes + BUFFER_ITEM_BYTES
        if self.proto_import.done() or self.nbytes > MAX_BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        self.proto_import.wait()
        for split, result in self.items:
            self.writers[split].write(serialize_example(attach_image(result)), instances=len(result.classes))
        self.items.clear()
        self.nbytes = 0


def _leave_a_core(workers: int, proto_import: BackgroundImport) -> Callable[[], int]:
    """How many workers may encode now: while the Example proto is imported, one core fewer than
    this process may use (at least one worker), so the import, which every record waits for, is
    not slowed by the workers taking turns on its core; then all of them."""
    during_import = min(workers, max(1, default_workers() - 1))
    return lambda: workers if proto_import.done() else during_import


@dataclasses.dataclass
class LocalWriter:
    """Encode in ``workers`` forked processes (default: all cores), write shards in input order
    with `ShardedRecordWriter` (byte-identical output for any worker count).

    This process imports the Example proto (TensorFlow Datasets' copy, ~0.3 s; no TensorFlow
    for local outputs) in a background thread meanwhile, with a core to itself
    (`_leave_a_core`); unchanged local image files do not come back through the pipes but are
    read again when their record is written (`detach_image` / `attach_image`).

    Speed (``.venv/bin/python tools/bench_convert.py --images 300 --workers 2 --shards 4``,
    quiet 2-core machine): 300 / 1000 / 3000 COCO images in 1.74 / 4.52 / 11.86 s, 4.60x /
    3.08x / 2.48x Model Garden's ``create_coco_tf_record`` (docs/benchmarks.md, Convert)."""

    workers: Optional[int] = None
    name = "local"

    def check(self, out_dir: str) -> None:
        """Nothing to check beyond the options `ConvertOptions` validates."""

    def write(self, plan: ConversionPlan, out_dir: str, tally: Tally, progress=None) -> WriteResult:
        workers = default_workers() if self.workers is None else max(1, int(self.workers))
        on_progress = progress.update if progress is not None else (lambda n: None)
        planned: Dict[int, EncodeTask] = {}

        def tasks():  # remembers each task for its result, which comes back in input order
            for k, task in enumerate(plan.tasks(tally.skip, on_progress)):
                planned[k] = task
                yield task.args

        writers = {s: ShardedRecordWriter(out_dir, s, plan.shard_counts[s]) for s in plan.splits}
        # Workers rasterise and PNG-encode; this process imports the Example proto meanwhile
        # (after the fork) and builds + writes the tf.train.Examples in input order.
        proto_import = BackgroundImport(EXAMPLE_PROTO_PACKAGE)
        with contextlib.ExitStack() as stack:
            for w in writers.values():
                stack.enter_context(w)  # on error: temporary shards removed, nothing renamed
            stack.callback(proto_import.join)  # never leave an import half done in a thread at exit
            results = parallel_map(_encode_local, tasks(), workers=workers, on_start=proto_import.start,
                                   active=_leave_a_core(workers, proto_import))
            stack.callback(results.close)  # stops the worker pool now, not at garbage collection
            buffer = _Buffer(writers, proto_import)
            for k, result in enumerate(results):
                task = planned.pop(k)
                for rec in result.skipped:
                    tally.skip(rec, task.order)
                if result.features is not None:
                    buffer.add(task.split, result)
                    tally.add(task.split, result.classes, bool(result.reencoded))
                on_progress(1)
            buffer.flush()
        return WriteResult(
            {s: [ShardInfo(p, n, k) for p, n, k in zip(w.paths, w.records, w.instances)] for s, w in writers.items()},
            [old for w in writers.values() for old in w.removed_stale])


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class SplitReport:
    """One split: totals, its shard files and per-shard counts, instances per class name."""

    images: int
    instances: int
    shards: List[ShardInfo]
    instances_per_class: Dict[str, int]

    def to_json(self) -> dict:
        return {
            "images": self.images,
            "instances": self.instances,
            "files": [sh.path for sh in self.shards],
            "shards": [{"file": io.basename(sh.path), "images": sh.images, "instances": sh.instances}
                       for sh in self.shards],
            "instances_per_class": dict(self.instances_per_class),
        }


@dataclasses.dataclass
class ConvertReport:
    """The result of a conversion, written as ``report.json`` by `to_json()`.

    ``skipped`` and ``notes`` are skip records (`tfod_seg.data.stream.skip_record`); ``label_map``
    is the path of the ``label_map.pbtxt`` written (None when there were no labels). Item
    access (``report["images"]``) reads the JSON form, as the report file does.
    """

    mask_type: str
    label_map: Optional[str]
    id_to_name: Dict[int, str]
    splits: Dict[str, SplitReport]
    skipped: List[dict]
    notes: List[dict]
    reencoded_images: int
    seed: int
    val_fraction: float

    @property
    def num_classes(self) -> int:
        return len(self.id_to_name)

    @property
    def images(self) -> int:
        return sum(s.images for s in self.splits.values())

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.splits.values())

    def instances_per_class(self) -> Dict[str, int]:
        return {name: sum(s.instances_per_class.get(name, 0) for s in self.splits.values())
                for _, name in sorted(self.id_to_name.items())}

    def skipped_by_reason(self) -> Dict[str, int]:
        return dict(sorted(collections.Counter(r["kind"] for r in self.skipped).items()))

    def to_json(self) -> dict:
        """The ``report.json`` object (key order fixed)."""
        return {
            "mask_type": self.mask_type,
            "num_classes": self.num_classes,
            "label_map": self.label_map,
            "images": self.images,
            "instances": self.instances,
            "splits": {s: info.to_json() for s, info in self.splits.items()},
            "instances_per_class": self.instances_per_class(),
            "num_skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason(),
            "skipped": self.skipped,
            "notes": self.notes,
            "reencoded_images": self.reencoded_images,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
        }

    def __getitem__(self, key: str):
        return self.to_json()[key]


def _report_notes(plan: ConversionPlan, tally: Tally, written: WriteResult) -> List[dict]:
    notes = plan.reader_notes()
    for old in written.removed_stale:
        notes.append(skip_record(old, "removed_stale_shard", "removed a shard file left by an earlier run", "note"))
    fraction = plan.options.val_fraction
    if fraction > 0 and tally.images.get("val") == 0:
        notes.append(skip_record(None, "empty_val", f"no image fell into val with --val-fraction {fraction}; "
                                 "use a larger fraction or more images", "note"))
    return notes


def build_report(plan: ConversionPlan, tally: Tally, written: WriteResult, out_dir: str) -> ConvertReport:
    """Write ``label_map.pbtxt`` and ``report.json`` into ``out_dir``; return the report."""
    lm_path = io.join(out_dir, LABEL_MAP_NAME)
    final_map = plan.final_label_map(lm_path)
    if final_map is not None:
        final_map.write(lm_path)
    id_to_name = final_map.to_dict() if final_map is not None else {}
    splits = {}
    for s in plan.splits:
        counts = tally.class_counts[s]
        splits[s] = SplitReport(images=tally.images[s], instances=sum(counts.values()), shards=written.shards[s],
                                instances_per_class={id_to_name.get(c, str(c)): n for c, n in sorted(counts.items())})
    report = ConvertReport(mask_type=plan.options.mask_type, label_map=lm_path if final_map is not None else None,
                           id_to_name=id_to_name, splits=splits, skipped=tally.skipped,
                           notes=_report_notes(plan, tally, written), reencoded_images=tally.reencoded,
                           seed=plan.options.seed, val_fraction=plan.options.val_fraction)
    io.atomic_write_json(io.join(out_dir, REPORT_NAME), report.to_json())
    return report


# ---------------------------------------------------------------------------------------
# The one entry point
# ---------------------------------------------------------------------------------------
def convert_dataset(samples: Iterable[Sample], out_dir: Union[str, os.PathLike], *,
                    label_map: Union[LabelMap, str, os.PathLike, None] = None,
                    num_shards: Optional[int] = None, val_fraction: float = 0.0, seed: int = 0,
                    mask_type: str = "png", workers: Optional[int] = None, strict: bool = False,
                    progress=None, writer=None) -> ConvertReport:
    """Convert ``samples`` to ``out_dir/{train,val}-NNNNN-of-NNNNN.tfrecord``.

    Also writes ``out_dir/label_map.pbtxt`` and ``out_dir/report.json`` and returns the
    `ConvertReport` (see the module docstring). ``out_dir`` may be a URL. ``writer`` is a
    writer object (`LocalWriter` by default, with ``workers`` processes; see
    ``tfod_seg.records.WRITERS``). ``progress`` is any object with ``update(n)`` (a tqdm bar);
    the local writer advances it once per input image.
    """
    options = ConvertOptions(num_shards=num_shards, val_fraction=val_fraction, seed=seed, mask_type=mask_type,
                             strict=strict)
    out_dir = io.check_path(out_dir, "output folder")
    plan = ConversionPlan(samples, options, label_map)
    writer = writer if writer is not None else LocalWriter(workers)
    writer.check(out_dir)  # usage errors before anything is created
    # One run per folder: a concurrent second run is refused instead of deleting this one's
    # shards; temporary files of a killed earlier run are removed once the lock is held.
    with io.output_lock(out_dir) as stale:
        if stale:
            log.info("removed %d temporary file(s) of an interrupted earlier run in %s", len(stale), out_dir)
        tally = Tally(plan.splits, strict=strict)
        written = writer.write(plan, out_dir, tally, progress)
        return build_report(plan, tally, written, out_dir)


def class_count_lines(counts: Dict[str, int]) -> List[str]:
    """``instances per class:`` and one aligned ``name  count`` line per class (none if empty)."""
    if not counts:
        return []
    width = max(len(name) for name in counts)
    return ["instances per class:"] + [f"  {name:<{width}}  {n}" for name, n in counts.items()]


def format_summary(report: Union[ConvertReport, dict]) -> str:
    """Human summary of a conversion report: images, instances per class, per shard, skips."""
    report = report.to_json() if isinstance(report, ConvertReport) else report
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
