"""The Apache Beam writer: the same conversion as `LocalWriter`, as a Beam pipeline.

Runs on the DirectRunner (tests, one machine) or, unchanged, on Dataflow, Flink or Spark.
It reuses every step of the local conversion: the same readers and `ConversionPlan` (label
ids, seeded hash split, duplicate and label checks, in the launching process), the same
per-image encoding (`tfod_seg.records.convert.encode_task` → `build_example` →
`serialize_example`) on the workers, and the same `build_report` for ``label_map.pbtxt`` and
``report.json``. The pipeline::

    staged task chunks ─ Reshuffle ─ load chunk ─ Reshuffle ─ encode ─┬─ split → WriteToTFRecord
                                                                      │        (train-NNNNN-of-NNNNN.tfrecord, ...)
                                                                      │        → count each shard
                                                                      └─ counts + skips → one combined tally

**Same data**: for the same input, seed and label map the output holds exactly the same set
of serialized examples per split as the local writer, with the same shard names and counts
and the same ``report.json`` (skips in input order). Which shard an example lands in, and the
order inside a shard, differ: `WriteToTFRecord` spreads records over the shards itself (the
local writer goes round-robin in input order), so per-shard counts come from reading each
written shard back once, in parallel on the workers.

**Memory and scale**: the launching process streams the reader (annotation files are parsed
once, one at a time; a COCO JSON is loaded and indexed once there, so it must fit in the
launcher's memory, about 5-10x its file size) and writes the planned tasks in chunks of
`CHUNK_IMAGES` images to a staging folder beside the output; it never holds more than one
chunk. Workers read the images, rasterise and PNG-encode masks and serialize the Examples,
a chunk at a time. On the DirectRunner every stage's output is buffered in memory (that is how
the DirectRunner works), so its memory grows with the dataset; Dataflow, Flink and Spark
shuffle to disk. With embedded LabelMe ``imageData`` the image bytes pass through the
launcher and the staging folder.

**Strict**: a skip found while planning fails before the pipeline starts; a skip found by a
worker (a corrupt image) fails the pipeline and is re-raised as `StrictModeError` naming the
file. Without ``--strict`` a bad image is a counted skip, never a failed pipeline.

Paths: ``--out`` may be local or a URL that both TensorFlow and Beam can write (``gs://``);
``ram://`` is TensorFlow-only and is refused. Remote workers need ``tfod-seg`` installed
(``--setup_file`` or a container image: see docs/convert-at-scale.md) and images on storage they
can read.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import pickle
import re
import shlex
import uuid
from typing import Dict, Iterator, List, Optional, Sequence, Union

from tfod_seg import io
from tfod_seg.errors import StrictModeError, UserError
from tfod_seg.records import BEAM_RUNNERS
from tfod_seg.records.convert import (ConversionPlan, EncodeTask, ShardInfo, Tally, WriteResult, encode_task,
                                      strict_error)
from tfod_seg.records.example import serialize_example
from tfod_seg.records.writer import SHARD_PATTERN, default_workers, remove_stale_shards

log = logging.getLogger(__name__)

RUNNERS = BEAM_RUNNERS
CHUNK_IMAGES = 200  # images per staged task chunk (the unit a worker loads at once)
CHUNK_BYTES = 64 << 20  # ... or fewer, when embedded image bytes make a chunk this large
_STRICT_MARK = "(skipped; --strict turns skips into failures)"


# ---------------------------------------------------------------------------------------
# Worker-side steps (module-level functions: pickled by reference, run on Beam workers)
# ---------------------------------------------------------------------------------------
def load_chunk(path: str) -> Iterator[EncodeTask]:
    """The `EncodeTask`s staged in one chunk file."""
    yield from pickle.loads(io.read_bytes(path, what="staged task chunk"))


def encode(task: EncodeTask, strict: bool):
    """`encode_task` for one image → ``(split, serialized Example)`` on the main output (none
    for a skipped image) and its counts and skips on the ``tally`` output."""
    from apache_beam import pvalue

    result = encode_task(task.args)
    if strict and result.skipped:
        raise strict_error(result.skipped[0])
    written = result.features is not None
    if written:
        yield task.split, serialize_example(result.features)
    yield pvalue.TaggedOutput("tally", {
        "images": {task.split: 1} if written else {},
        "classes": {task.split: dict(collections.Counter(str(c) for c in result.classes))} if written else {},
        "reencoded": int(written and bool(result.reencoded)),
        "skipped": [[task.order, k, rec] for k, rec in enumerate(result.skipped)],
    })


def merge_tallies(parts) -> dict:
    """Associative merge of per-image tallies (a Beam combine function)."""
    total = {"images": {}, "classes": {}, "reencoded": 0, "skipped": []}
    for part in parts:
        for split, n in part["images"].items():
            total["images"][split] = total["images"].get(split, 0) + n
        for split, counts in part["classes"].items():
            mine = total["classes"].setdefault(split, {})
            for c, n in counts.items():
                mine[c] = mine.get(c, 0) + n
        total["reencoded"] += part["reencoded"]
        total["skipped"].extend(part["skipped"])
    return total


def count_shard(path: str) -> dict:
    """Images and instances in one written shard (read back once, on a worker, with tf.data)."""
    import tensorflow as tf

    images = instances = 0
    for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
        example = tf.train.Example.FromString(raw)
        instances += len(example.features.feature["image/object/class/label"].int64_list.value)
        images += 1
    return {"path": path, "images": images, "instances": instances}


# ---------------------------------------------------------------------------------------
# Launcher-side steps
# ---------------------------------------------------------------------------------------
def pipeline_args(runner: str, options: Union[str, Sequence[str], None] = None,
                  workers: Optional[int] = None) -> List[str]:
    """Beam pipeline flags for ``runner`` (one of `RUNNERS`) plus the user's ``options`` (a
    shell-quoted string or a list; they come last, so they win). The DirectRunner gets
    ``workers`` processes (default: all cores). Unknown flags raise `UserError`."""
    from apache_beam.options.pipeline_options import PipelineOptions

    if runner not in RUNNERS:
        raise UserError(f"--runner must be one of {', '.join(RUNNERS)}, got {runner!r}")
    args = [f"--runner={RUNNERS[runner]}"]
    if runner == "direct":
        n = default_workers() if workers is None else max(1, int(workers))
        args += [f"--direct_num_workers={n}",
                 f"--direct_running_mode={'multi_processing' if n > 1 else 'in_memory'}"]
    try:
        user = shlex.split(options) if isinstance(options, str) else list(options or ())
    except ValueError as e:
        raise UserError(f"--beam-options {options!r}: cannot split into flags ({e})") from None
    args += user
    parsed = PipelineOptions(args)
    known = parsed.get_all_options(retain_unknown_options=False)
    unknown = sorted(k for k in parsed.get_all_options(retain_unknown_options=True) if k not in known)
    if unknown:
        raise UserError(f"--beam-options: unknown Beam pipeline option(s) {', '.join('--' + k for k in unknown)} "
                        "(see `python -m apache_beam.examples.wordcount --help` for the options of each runner)")
    return args


def check_output(out_dir: str, runner: str) -> None:
    """Refuse outputs the pipeline cannot write: ``ram://`` (TensorFlow-only), or a local
    folder with Dataflow (its workers are other machines)."""
    if io.scheme(out_dir) == "ram":
        raise UserError(f"{out_dir}: --out on ram:// is TensorFlow's in-memory filesystem, which Beam cannot write; "
                        "use a local folder or gs://")
    if runner == "dataflow" and not io.is_url(out_dir):
        raise UserError(f"{out_dir}: --runner dataflow writes from remote workers; --out must be a gs:// URL")


def _task_bytes(task: EncodeTask) -> int:
    sample = task.args[0]
    return len(sample.image_bytes) if sample.image_bytes is not None else 1024


def _write_chunk(staging: str, index: int, chunk: List[EncodeTask]) -> str:
    path = io.join(staging, f"tasks-{index:05d}.pkl")
    with io.open_file(path, "wb") as f:
        f.write(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def stage_tasks(plan: ConversionPlan, staging: str, on_skip, on_progress) -> List[str]:
    """Plan the conversion and write its tasks, in chunks, to ``staging``; return the chunk paths."""
    paths: List[str] = []
    chunk: List[EncodeTask] = []
    nbytes = 0
    for task in plan.tasks(on_skip, on_progress):
        chunk.append(task)
        nbytes += _task_bytes(task)
        on_progress(1)
        if len(chunk) >= CHUNK_IMAGES or nbytes >= CHUNK_BYTES:
            paths.append(_write_chunk(staging, len(paths), chunk))
            chunk, nbytes = [], 0
    if chunk:
        paths.append(_write_chunk(staging, len(paths), chunk))
    return paths


def build_pipeline(p, chunks: List[str], plan: ConversionPlan, out_dir: str, staging: str, strict: bool) -> None:
    """Add the conversion to pipeline ``p`` (see the module docstring for its shape)."""
    import apache_beam as beam
    from apache_beam.io.textio import WriteToText
    from apache_beam.io.tfrecordio import WriteToTFRecord

    splits = tuple(plan.splits)
    tasks = (p | "staged chunks" >> beam.Create(chunks) | "spread chunks" >> beam.Reshuffle()
             | "load tasks" >> beam.FlatMap(load_chunk) | "spread tasks" >> beam.Reshuffle())
    encoded = tasks | "encode" >> beam.FlatMap(encode, strict).with_outputs("tally", main="examples")
    parts = encoded.examples | "by split" >> beam.Partition(lambda kv, n: splits.index(kv[0]), len(splits))
    shard_counts = []
    for split, part in zip(splits, parts):
        files = (part | f"{split}: drop key" >> beam.Map(lambda kv: kv[1])
                 | f"{split}: write" >> WriteToTFRecord(io.join(out_dir, split), file_name_suffix=".tfrecord",
                                                        num_shards=plan.shard_counts[split],
                                                        shard_name_template="-SSSSS-of-NNNNN"))
        shard_counts.append(files | f"{split}: count shards" >> beam.Map(count_shard))
    (shard_counts | "all shards" >> beam.Flatten() | "shards as JSON" >> beam.Map(json.dumps)
     | "write shard counts" >> WriteToText(io.join(staging, "shards"), file_name_suffix=".jsonl"))
    (encoded.tally | "combine tallies" >> beam.CombineGlobally(merge_tallies) | "tally as JSON" >> beam.Map(json.dumps)
     | "write tally" >> WriteToText(io.join(staging, "tally"), file_name_suffix=".json", shard_name_template=""))


def run_pipeline(args: List[str], build) -> None:
    """Run the pipeline ``build(p)`` fills; a worker's strict-mode failure becomes `StrictModeError`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    try:
        with beam.Pipeline(options=PipelineOptions(args)) as p:
            build(p)
    except StrictModeError:
        raise
    except Exception as e:  # runners wrap worker errors in their own exceptions
        m = re.search(r"StrictModeError: (.*?" + re.escape(_STRICT_MARK) + ")", str(e))
        if m:
            raise StrictModeError(m.group(1)) from None
        raise


def collect(staging: str, plan: ConversionPlan, tally: Tally, out_dir: str) -> Dict[str, List[ShardInfo]]:
    """Add the pipeline's combined tally to ``tally`` (which puts the skips in input order) and
    return each split's shards, in shard order, with their counts."""
    combined = json.loads(io.read_text(io.join(staging, "tally.json")))
    for split, n in combined["images"].items():
        tally.images[split] += n
    for split, counts in combined["classes"].items():
        tally.class_counts[split].update({int(c): n for c, n in counts.items()})
    tally.reencoded += combined["reencoded"]
    for order, _, rec in sorted(combined["skipped"], key=lambda x: x[:2]):
        tally.skip(rec, order)
    counted = {}
    for path in io.glob(io.join(staging, "shards*.jsonl")):
        for line in io.read_text(path).splitlines():
            if line.strip():
                info = json.loads(line)
                counted[io.basename(info["path"])] = info
    shards = {}
    for split in plan.splits:
        n = plan.shard_counts[split]
        shards[split] = []
        for i in range(n):
            path = io.join(out_dir, SHARD_PATTERN.format(name=split, index=i, count=n))
            info = counted.get(io.basename(path))
            if info is None:
                raise RuntimeError(f"{path}: the Beam pipeline finished without writing this shard")
            shards[split].append(ShardInfo(path, info["images"], info["instances"]))
    return shards


@dataclasses.dataclass
class BeamWriter:
    """Write the records with an Apache Beam pipeline on ``runner`` (`RUNNERS`), with extra
    Beam flags ``options``; ``workers`` sets the DirectRunner's processes."""

    runner: str = "direct"
    options: Union[str, Sequence[str], None] = None
    workers: Optional[int] = None
    name = "beam"

    def check(self, out_dir: str) -> None:
        """Runner, Beam flags and output folder, before anything is written."""
        pipeline_args(self.runner, self.options, self.workers)
        check_output(out_dir, self.runner)

    def write(self, plan: ConversionPlan, out_dir: str, tally: Tally, progress=None) -> WriteResult:
        args = pipeline_args(self.runner, self.options, self.workers)
        on_progress = progress.update if progress is not None else (lambda n: None)
        staging = io.join(out_dir, f".tfod-seg-beam-{uuid.uuid4().hex[:12]}")
        io.makedirs(staging)
        beam_temp = io.join(out_dir, "beam-temp-*")
        before = set(io.glob(beam_temp))
        try:
            chunks = stage_tasks(plan, staging, tally.skip, on_progress)
            log.info("running the Beam pipeline (%s, %d task chunks): %s", self.runner, len(chunks), " ".join(args))
            run_pipeline(args, lambda p: build_pipeline(p, chunks, plan, out_dir, staging, tally.strict))
            shards = collect(staging, plan, tally, out_dir)
        except BaseException:
            for leftover in set(io.glob(beam_temp)) - before:  # a failed WriteToTFRecord's temporary folder
                _quiet_rmtree(leftover)
            raise
        finally:
            _quiet_rmtree(staging)
        removed = [old for s in plan.splits for old in remove_stale_shards(out_dir, s, [sh.path for sh in shards[s]])]
        return WriteResult(shards, removed)


def _quiet_rmtree(path: str) -> None:
    try:
        io.rmtree(path)
    except Exception as e:  # noqa: BLE001 - cleanup must not hide the real error
        log.warning("could not remove %s: %s", path, e)
