"""The one streaming inference path shared by `tfod-seg infer` and `tfod-seg score --model`.

* `image_dataset` (image files) and `record_image_dataset` (TFRecords) build a `tf.data`
  pipeline of ``(indices, uint8 image batch)``: parallel decode in input order, batched when
  every image has the same size (`choose_batch`), prefetched.
* `predict_stream` runs the model on each batch in the calling thread and hands every image
  with its raw outputs to ``work(index, image, outputs, j)`` in a small thread pool (mask
  pasting, RLE/PNG/JSON encoding: NumPy, OpenCV, zlib and pycocotools spend most of their
  time outside the GIL), and yields ``(index, result)`` in input order, so whatever the caller
  aggregates (COCO results, counts, skips) is the same for any number of workers.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from tfod_seg.errors import UserError
from tfod_seg.inference.predict import read_image

log = logging.getLogger(__name__)


def default_workers() -> int:
    """Writer threads: one per core, at least 2 and at most 4."""
    return max(2, min(4, os.cpu_count() or 2))


def choose_batch(predictor, sizes: Sequence[Tuple[int, int]], batch_size: int) -> int:
    """Images per model call. A model with a fixed batch (``predictor.max_batch``: an export
    with ``--batch_size N``) is always called with N images (the last call zero-padded), so
    same-sized images are grouped by N. A model taking any batch gets ``batch_size``. Images
    of different sizes go one at a time."""
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: expected an integer >= 1")
    if not sizes:
        return 1
    same = len(set(sizes)) == 1
    fixed = predictor.max_batch
    if not same:
        if batch_size > 1 or (fixed or 1) > 1:
            log.info("batch size 1: images differ in size")
        return 1
    if fixed is not None:
        if batch_size not in (1, fixed):
            log.info("batch size %d: the model's fixed batch (not --batch-size %d)", fixed, batch_size)
        return fixed
    return batch_size


def image_dataset(files: Sequence[str], batch_size: int, errors: Dict[str, str], fallback_shape=None):
    """A `tf.data.Dataset` of ``(indices, uint8 image batch)`` decoding image ``files`` in parallel
    (`tfod_seg.inference.predict.read_image`: local paths or URLs, EXIF orientation applied, any
    mode to 8-bit RGB, the same policy as conversion).

    An image that fails to decode yields zeros of ``fallback_shape`` (or ``(1, 1, 3)``) and its
    reason is put in ``errors[path]``, so one bad file never stops the stream.
    """
    import tensorflow as tf

    def load(i):
        path = files[int(i)]
        try:
            return read_image(path)
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
    return ds.batch(batch_size).prefetch(2)


def record_image_dataset(record_files: Sequence[str], batch_size: int):
    """A `tf.data.Dataset` of ``(indices, uint8 image batch)`` from the ``image/encoded`` feature
    of TFRecord files, in file order then record order (the order of
    `tfod_seg.records.reader.iter_records`), decoded with ``tf.io.decode_image`` as Model
    Garden's and TFOD2's input pipelines do."""
    import tensorflow as tf

    def decode(i, serialized):
        feats = tf.io.parse_single_example(serialized, {"image/encoded": tf.io.FixedLenFeature([], tf.string)})
        img = tf.io.decode_image(feats["image/encoded"], channels=3, expand_animations=False)
        img.set_shape([None, None, 3])
        return i, tf.cast(img, tf.uint8)

    ds = tf.data.TFRecordDataset(list(record_files)).enumerate()
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(2)


def predict_stream(predictor, dataset, work: Callable, *, workers: Optional[int] = None,
                   is_bad: Optional[Callable[[int], bool]] = None) -> Iterator[Tuple[int, object]]:
    """Run ``predictor`` over ``dataset`` batches; yield ``(index, work(...))`` in input order.

    ``work(index, image, outputs, j)`` gets one image, the raw signature outputs of its batch
    and its position ``j`` in that batch; it runs in a pool of ``workers`` threads (default
    `default_workers`) while the model works on the next batches. Images for which
    ``is_bad(index)`` is true (failed decode) are not passed to ``work``: their result is None.
    At most ``2 * workers + 2`` images are in flight (bounded memory).
    """
    workers = workers or default_workers()
    limit = 2 * workers + 2
    pending: collections.deque = collections.deque()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tfod-seg-write") as pool:
        try:
            for idx, batch in dataset:
                indices = [int(i) for i in idx.numpy()]
                arr = batch.numpy()
                bad = [is_bad is not None and is_bad(i) for i in indices]
                outputs = None if all(bad) else predictor.predict_raw(arr)
                for j, index in enumerate(indices):
                    pending.append((index, None if bad[j] else pool.submit(work, index, arr[j], outputs, j)))
                while len(pending) > limit:
                    index, fut = pending.popleft()
                    yield index, None if fut is None else fut.result()
            while pending:
                index, fut = pending.popleft()
                yield index, None if fut is None else fut.result()
        finally:  # on an error or an early stop, drop work not started yet
            for _, fut in pending:
                if fut is not None:
                    fut.cancel()
