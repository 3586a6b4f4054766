"""The inputs of `tfod_seg.evaluation.score.score_model`, streamed in chunks of images.

A model is run over TFRecords in two passes over the records, so that memory does not grow
with their number:

1. `tfod_seg.evaluation.ground_truth.scan_records` reads the image entries (sizes, names)
   and the class ids, without decoding images or masks: the categories and the batching
   (`tfod_seg.inference.stream.choose_batch`) are known before the first prediction;
2. `model_chunks` runs the model over the images (`tfod_seg.inference.stream`) and reads
   each record's ground truth beside its predictions, yielding ``(images, annotations,
   results)`` per chunk of images (COCO, image ids 1..N and annotation ids 1..M in record
   order).

`coco_outputs` writes ``gt.json`` and ``results.json`` as the chunks come, with the bytes
``json.dumps`` gives for the whole documents.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from tfod_seg import io
from tfod_seg.errors import UserError
from tfod_seg.evaluation.ground_truth import GT_INFO, RecordIndex, coco_annotations
from tfod_seg.inference.formats import coco_results
from tfod_seg.inference.stream import choose_batch, predict_stream, record_image_dataset
from tfod_seg.records.reader import iter_records

log = logging.getLogger(__name__)

Chunk = Tuple[List[Dict], List[Dict], List[Dict]]  # images, annotations, results


class _JsonLists:
    """Appends entries to the open ``annotations`` list of gt.json and to results.json."""

    def __init__(self, gt_file, results_file):
        self._files = (gt_file, results_file)
        self._started = [False, False]

    def add(self, annotations: Sequence[Dict], results: Sequence[Dict]) -> None:
        for n, entries in enumerate((annotations, results)):
            if entries:
                text = ", ".join(json.dumps(e) for e in entries)
                self._files[n].write((", " if self._started[n] else "") + text)
                self._started[n] = True


@contextlib.contextmanager
def coco_outputs(out_dir: str, images: List[Dict], categories: List[Dict]) -> Iterator[_JsonLists]:
    """Write ``out_dir/gt.json`` ({"info", "images", "annotations", "categories"}) and
    ``out_dir/results.json`` (a list) as annotations and results are added; both appear
    (atomically) when the block ends without an error."""
    head = json.dumps({"info": dict(GT_INFO), "images": images})
    with io.atomic_path(io.join(out_dir, "gt.json")) as gt_tmp, \
            io.atomic_path(io.join(out_dir, "results.json")) as results_tmp:
        with io.open_file(gt_tmp, "w") as gt_file, io.open_file(results_tmp, "w") as results_file:
            gt_file.write(head[:-1] + ', "annotations": [')
            results_file.write("[")
            yield _JsonLists(gt_file, results_file)
            gt_file.write('], "categories": ' + json.dumps(categories) + "}\n")
            results_file.write("]\n")


def _check_size(index: RecordIndex, i: int, h: int, w: int) -> None:
    im = index.images[i]
    if (h, w) != (im["height"], im["width"]):
        raise UserError(f"{im['record']}: image is {w}x{h} (WxH) but the record says {im['width']}x{im['height']}")


def model_chunks(predictor, files: Sequence[str], index: RecordIndex, *, chunk_images: int, batch_size: int = 1,
                 min_score: float = 0.0, workers: Optional[int] = None, progress=None,
                 records="records") -> Iterator[Chunk]:
    """Run ``predictor`` over the records' images and yield ``(images, annotations, results)``
    for each ``chunk_images`` images in record order: the image entries of ``index``
    (`scan_records` of the same ``files``), their ground truth (`coco_annotations`, read
    from the records beside the predictions) and the model's COCO results (image ids 1..N).
    ``progress.update(1)`` is called per image."""
    import tensorflow as tf

    def work(i, image, outputs, j):
        h, w = image.shape[:2]
        _check_size(index, i, h, w)
        return coco_results(predictor.detections_from_outputs(outputs, j, h, w, min_score=min_score), i + 1)

    batch = choose_batch(predictor, [(im["height"], im["width"]) for im in index.images], batch_size)
    ground_truth = iter_records(files)
    chunk: Chunk = ([], [], [])
    seen = next_annotation = 0
    try:
        for _, results in predict_stream(predictor, record_image_dataset(files, batch), work, workers=workers):
            rec = next(ground_truth, None) if seen < len(index.images) else None
            if rec is None:  # more images than records: the files changed since the scan
                seen += 1
                continue
            anns = coco_annotations(rec, seen + 1, next_annotation + 1)
            next_annotation += len(anns)
            chunk[0].append(index.images[seen])
            chunk[1].extend(anns)
            chunk[2].extend(results)
            seen += 1
            if progress is not None:
                progress.update(1)
            if len(chunk[0]) == chunk_images:
                yield chunk
                chunk = ([], [], [])
    except tf.errors.OpError as e:  # an undecodable image/encoded in a foreign record
        where = index.images[seen]["record"] if seen < len(index.images) else records
        raise UserError(f"{where}: cannot decode the record's image/encoded ({e.message.splitlines()[0]})") from None
    if seen != len(index.images):
        raise UserError(f"{records}: read {len(index.images)} examples for the ground truth but {seen} images")
    if chunk[0]:
        yield chunk
    log.info("scored %d images (batch %d)", seen, batch)
