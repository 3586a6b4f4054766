"""pycocotools' `COCOeval` over a dataset streamed in chunks of images, in memory that does
not grow with the ground truth or the detections.

`COCOeval.evaluate` matches detections to ground truth image by image and category by
category (``evaluateImg``); `COCOeval.accumulate` only reads, from each of those per-image
results, ``dtScores``, ``dtMatches``, ``dtIgnore`` and ``gtIgnore``, concatenated over the
images in ``params.imgIds`` order. So `ChunkedCocoEval` runs pycocotools' own ``evaluate``
on each chunk (``params.imgIds`` = the chunk's images, every category, the default
parameters), keeps only those four arrays per (category, area range, image) packed in a few
NumPy arrays per chunk (`CompactEvalImgs`), drops the rest (``ious``, ``_gts``/``_dts`` with
their RLE strings, ``gtMatches``, ids) and, after the last chunk, gives the packed results to
pycocotools' own ``accumulate`` and ``summarize``. The numbers are the whole-dataset
`COCOeval`'s, bit for bit, as long as chunks come in ascending image-id order (the order
``evaluate`` sorts images in).

Kept per detection (at most ``maxDets[-1]`` per image and category): its score (float64,
once) and, per area range, "matched" and "ignored" at each IoU threshold as bits
(pycocotools stores the matched ground-truth id as a float; ``accumulate`` only tests it
against 0): 24 bytes per detection with the default 10 thresholds and 4 area ranges.
"""

from __future__ import annotations

import collections.abc
import copy
from typing import Dict, List, Optional, Sequence

import numpy as np

from tfod_seg.evaluation.coco_metrics import quiet


class _Packed:
    """One chunk's per-image results of one category. What every area range shares (which
    images have a result, the detections' scores, where each image's detections and ground
    truth start) is stored once; per area range, the "matched" and "ignored" flags of each
    detection over the T IoU thresholds are bit-packed (`numpy.packbits`, 2 bytes for T=10)."""

    __slots__ = ("num_thresholds", "present", "rank", "dt_start", "gt_start", "scores", "matched", "dt_ignore",
                 "gt_ignore")

    def __init__(self, per_area: Sequence[Sequence[Optional[Dict]]], num_thresholds: int):
        self.num_thresholds = num_thresholds
        first = per_area[0]
        self.present = np.array([e is not None for e in first], bool)
        self.rank = np.cumsum(self.present) - 1  # position of each present entry among them
        found = [e for e in first if e is not None]
        self.dt_start = np.concatenate([[0], np.cumsum([len(e["dtScores"]) for e in found])]).astype(np.int64)
        self.gt_start = np.concatenate([[0], np.cumsum([len(e["gtIgnore"]) for e in found])]).astype(np.int64)
        self.scores = np.concatenate([np.asarray(e["dtScores"], np.float64) for e in found] or [np.zeros(0)])
        self.matched, self.dt_ignore, self.gt_ignore = [], [], []
        empty = np.zeros((num_thresholds, 0), bool)
        for entries in per_area:
            area_found = [e for e in entries if e is not None]
            scores = np.concatenate([np.asarray(e["dtScores"], np.float64) for e in area_found] or [np.zeros(0)])
            if len(area_found) != len(found) or not np.array_equal(scores, self.scores):
                raise ValueError("COCOeval's per-image results differ between area ranges in more than the flags")
            self.matched.append(np.packbits(np.concatenate(
                [np.asarray(e["dtMatches"]) != 0 for e in area_found] or [empty], axis=1), axis=0))
            self.dt_ignore.append(np.packbits(np.concatenate(
                [np.asarray(e["dtIgnore"], bool) for e in area_found] or [empty], axis=1), axis=0))
            self.gt_ignore.append(np.concatenate([np.asarray(e["gtIgnore"]) != 0 for e in area_found]
                                                 or [np.zeros(0, bool)]))

    def entry(self, a: int, i: int) -> Optional[Dict]:
        """Image ``i``'s result for area range ``a``, as ``evaluateImg`` gives what
        ``accumulate`` reads (None: no ground truth and no detection)."""
        if not self.present[i]:
            return None
        j = int(self.rank[i])
        d0, d1 = self.dt_start[j], self.dt_start[j + 1]
        g0, g1 = self.gt_start[j], self.gt_start[j + 1]
        t = self.num_thresholds
        return {"dtScores": self.scores[d0:d1],
                "dtMatches": np.unpackbits(self.matched[a][:, d0:d1], axis=0, count=t).astype(bool),
                "dtIgnore": np.unpackbits(self.dt_ignore[a][:, d0:d1], axis=0, count=t).astype(bool),
                "gtIgnore": self.gt_ignore[a][g0:g1]}

    def arrays(self) -> List[np.ndarray]:
        return [self.present, self.rank, self.dt_start, self.gt_start, self.scores, *self.matched, *self.dt_ignore,
                *self.gt_ignore]


class CompactEvalImgs(collections.abc.Sequence):
    """``COCOeval.evalImgs`` of all chunks, read-only, in its layout: index
    ``k * A * I + a * I + i`` (category, area range, image) gives None (no ground truth and no
    detection) or a dict with ``dtScores``, ``dtMatches``, ``dtIgnore``, ``gtIgnore`` (what
    `COCOeval.accumulate` reads), made from the packed arrays when asked for. The entries of
    the last (category, area range) asked for are kept until another is asked for:
    ``accumulate`` reads each one once per ``maxDets`` value."""

    __slots__ = ("num_categories", "num_areas", "num_images", "_starts", "_chunks", "_block", "_block_entries")

    def __init__(self, num_categories: int, num_areas: int):
        self.num_categories, self.num_areas = num_categories, num_areas
        self.num_images = 0
        self._starts: List[int] = []  # first image position of each chunk
        self._chunks: List[List[_Packed]] = []  # per chunk: one per category
        self._block, self._block_entries = -1, []

    def add(self, eval_imgs: Sequence[Optional[Dict]], num_images: int, num_thresholds: int) -> None:
        """Append one chunk's ``evalImgs`` (``K * A * num_images`` entries, pycocotools' order)."""
        k_a = self.num_categories * self.num_areas
        if len(eval_imgs) != k_a * num_images:
            raise ValueError(f"evalImgs has {len(eval_imgs)} entries; expected {k_a} x {num_images}")
        per_k = []
        for k in range(self.num_categories):
            first = k * self.num_areas
            per_k.append(_Packed([eval_imgs[(first + a) * num_images:(first + a + 1) * num_images]
                                  for a in range(self.num_areas)], num_thresholds))
        self._starts.append(self.num_images)
        self._chunks.append(per_k)
        self.num_images += num_images
        self._block, self._block_entries = -1, []

    def __len__(self) -> int:
        return self.num_categories * self.num_areas * self.num_images

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        ka, i = divmod(index, self.num_images)
        if ka != self._block:
            k, a = divmod(ka, self.num_areas)
            self._block, self._block_entries = ka, [
                packed[k].entry(a, j) for packed, n in zip(self._chunks, self._chunk_sizes()) for j in range(n)]
        return self._block_entries[i]

    def _chunk_sizes(self) -> List[int]:
        return [b - a for a, b in zip(self._starts, self._starts[1:] + [self.num_images])]

    def nbytes(self) -> int:
        """Bytes held in the packed arrays."""
        return sum(x.nbytes for chunk in self._chunks for p in chunk for x in p.arrays())


class ChunkedCocoEval:
    """`COCOeval` of one IoU type ("bbox" or "segm") fed chunk by chunk.

    ``add(coco_gt, coco_dt)`` evaluates a chunk: the `COCO` objects hold that chunk's images
    (image ids above those of earlier chunks), their ground truth and detections (see
    `tfod_seg.evaluation.coco_metrics.load_results`). ``finish()`` returns a `COCOeval`
    accumulated and summarised over every chunk (``params.imgIds`` there are the images'
    positions 0..N-1; ``eval`` and ``stats`` are the whole-dataset ones).
    """

    def __init__(self, iou_type: str, cat_ids: Sequence[int]):
        from pycocotools.cocoeval import Params

        self.iou_type = iou_type
        self.params = Params(iouType=iou_type)
        self.params.catIds = sorted(int(c) for c in set(cat_ids))
        self.eval_imgs = CompactEvalImgs(len(self.params.catIds), len(self.params.areaRng))
        self._last_image = None

    def add(self, coco_gt, coco_dt) -> None:
        from pycocotools.cocoeval import COCOeval

        img_ids = sorted(coco_gt.getImgIds())
        if not img_ids:
            return
        if self._last_image is not None and img_ids[0] <= self._last_image:
            raise ValueError(f"chunk image ids start at {img_ids[0]}, not above the last chunk's {self._last_image}")
        ev = COCOeval(coco_gt, coco_dt, self.iou_type)
        ev.params = copy.deepcopy(self.params)
        ev.params.imgIds = img_ids
        quiet(ev.evaluate)
        self.eval_imgs.add(ev.evalImgs, len(img_ids), len(self.params.iouThrs))
        self._last_image = img_ids[-1]

    def finish(self):
        """The accumulated and summarised `COCOeval` of all chunks."""
        from pycocotools.cocoeval import COCOeval

        ev = COCOeval(iouType=self.iou_type)
        ev.params = copy.deepcopy(self.params)
        ev.params.imgIds = list(range(self.eval_imgs.num_images))
        ev._paramsEval = copy.deepcopy(ev.params)
        ev.evalImgs = self.eval_imgs
        quiet(ev.accumulate)
        quiet(ev.summarize)
        return ev


__all__ = ["ChunkedCocoEval", "CompactEvalImgs"]
