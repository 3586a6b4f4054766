"""COCO box and mask metrics with pycocotools, and what COCOeval's accumulated arrays give:
per-class AP, precision-recall curves, best-F1 score thresholds.

``COCOeval.eval['precision']`` has shape ``[T, R, K, A, M]``: IoU thresholds
(0.50:0.05:0.95), 101 recall points (0:0.01:1), categories (``params.catIds`` order), area
ranges (all, small, medium, large), max detections (1, 10, 100); -1 where a category has no
ground truth. ``eval['scores']`` holds the detection score at which each precision point is
reached. Precision there is COCO's interpolated (monotone) precision.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")
PR_IOUS = (0.5, 0.75)


def quiet(fn, *args, **kwargs):
    """Call a pycocotools function without its prints on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def load_results(coco_gt, results: List[Dict]):
    """`COCO` object of ``results`` on ``coco_gt``'s images; an empty list gives an empty set
    (pycocotools' ``loadRes`` cannot take one)."""
    from pycocotools.coco import COCO

    if results:
        return quiet(coco_gt.loadRes, results)
    empty = COCO()
    empty.dataset = {"images": list(coco_gt.dataset["images"]), "categories": list(coco_gt.dataset.get("categories", [])),
                     "annotations": []}
    quiet(empty.createIndex)
    return empty


def run_cocoeval(coco_gt, coco_dt, iou_type: str):
    """An evaluated, accumulated and summarised `COCOeval` for ``iou_type`` ("bbox"/"segm")."""
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(coco_gt, coco_dt, iou_type)
    quiet(ev.evaluate)
    quiet(ev.accumulate)
    quiet(ev.summarize)
    return ev


def stats_by_name(ev) -> Dict[str, float]:
    """The 12 COCO summary numbers by name (-1 where COCO gives -1: no ground truth in range)."""
    return {name: round(float(v), 6) for name, v in zip(STAT_NAMES, ev.stats)}


def _iou_index(ev, iou: float) -> int:
    return int(np.argmin(np.abs(ev.params.iouThrs - iou)))


def _mean_valid(a: np.ndarray) -> float:
    valid = a[a > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def per_class_ap(ev) -> Dict[int, Dict[str, float]]:
    """``{category_id: {"AP", "AP50", "AP75"}}`` (all areas, 100 detections); -1 without GT."""
    prec = ev.eval["precision"]
    t50, t75 = _iou_index(ev, 0.5), _iou_index(ev, 0.75)
    out = {}
    for k, cid in enumerate(ev.params.catIds):
        p = prec[:, :, k, 0, -1]
        out[int(cid)] = {"AP": round(_mean_valid(p), 6), "AP50": round(_mean_valid(p[t50]), 6),
                         "AP75": round(_mean_valid(p[t75]), 6)}
    return out


def pr_curves(ev, iou: float) -> Dict[object, Dict[str, np.ndarray]]:
    """Precision-recall curves at IoU ``iou``: ``{category_id | "all": {"recall", "precision",
    "score"}}`` over COCO's 101 recall points, cut at the highest recall reached. "all" is
    the mean over categories that have ground truth (scores are not defined for it: NaN)."""
    t = _iou_index(ev, iou)
    rec_thrs = ev.params.recThrs
    prec = ev.eval["precision"][t, :, :, 0, -1]  # [R, K]
    scores = ev.eval["scores"][t, :, :, 0, -1]
    max_recall = ev.eval["recall"][t, :, 0, -1]  # [K]
    out: Dict[object, Dict[str, np.ndarray]] = {}
    for k, cid in enumerate(ev.params.catIds):
        if prec[0, k] <= -1:  # no ground truth for this category
            continue
        reach = rec_thrs <= max(float(max_recall[k]), 0.0) + 1e-9
        if max_recall[k] <= 0:
            reach = np.zeros_like(reach)
        out[int(cid)] = {"recall": rec_thrs[reach], "precision": prec[reach, k], "score": scores[reach, k]}
    valid = prec[0] > -1
    if valid.any():
        mean = prec[:, valid].mean(axis=1)
        reach = mean > 0
        out["all"] = {"recall": rec_thrs[reach], "precision": mean[reach], "score": np.full(int(reach.sum()), np.nan)}
    return out


def best_f1(curve: Dict[str, np.ndarray]) -> Optional[Dict[str, float]]:
    """The point of a PR curve with the highest F1: ``{"threshold", "f1", "precision",
    "recall"}``; keep detections with ``score >= threshold``. None for an empty curve."""
    p, r, s = curve["precision"], curve["recall"], curve["score"]
    if not len(p):
        return None
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    i = int(np.argmax(f1))
    if f1[i] <= 0:
        return None
    return {"threshold": round(float(s[i]), 6), "f1": round(float(f1[i]), 6), "precision": round(float(p[i]), 6),
            "recall": round(float(r[i]), 6)}


def confusion_matrix(coco_gt, results: Sequence[Dict], cat_ids: Sequence[int], *, iou_type: str = "segm",
                     iou_threshold: float = 0.5, min_score: float = 0.5) -> np.ndarray:
    """Class confusion among detections with ``score >= min_score``, matched to ground truth
    regardless of class (greedy by score, highest IoU >= ``iou_threshold``, crowd GT ignored).

    Returns ``(K + 1, K + 1)`` int64: rows are true classes in ``cat_ids`` order then
    "background" (spurious detections: matched nothing), columns are predicted classes then
    "background" (missed ground truth). Detections of unknown categories are left out.
    """
    from pycocotools import mask as mask_utils

    index = {int(c): i for i, c in enumerate(cat_ids)}
    k = len(cat_ids)
    cm = np.zeros((k + 1, k + 1), np.int64)
    key = "segmentation" if iou_type == "segm" else "bbox"
    by_image: Dict[int, List[Dict]] = {}
    for d in results:
        if d.get("score", 1.0) >= min_score and int(d["category_id"]) in index:
            by_image.setdefault(int(d["image_id"]), []).append(d)
    for image_id in coco_gt.getImgIds():
        img = coco_gt.imgs[image_id]
        gts = [g for g in coco_gt.imgToAnns.get(image_id, []) if not g.get("iscrowd") and int(g["category_id"]) in index]
        dts = sorted(by_image.get(image_id, []), key=lambda d: -d.get("score", 1.0))
        matched_gt = np.zeros(len(gts), bool)
        if gts and dts:
            g_geo = [_geometry(g, key, img) for g in gts]
            d_geo = [_geometry(d, key, img) for d in dts]
            ious = np.asarray(mask_utils.iou(d_geo, g_geo, [0] * len(gts))).reshape(len(dts), len(gts))
        else:
            ious = np.zeros((len(dts), len(gts)))
        for i, d in enumerate(dts):
            cand = np.where(~matched_gt & (ious[i] >= iou_threshold), ious[i], -1.0)
            j = int(np.argmax(cand)) if len(gts) else -1
            if j >= 0 and cand[j] >= iou_threshold:
                matched_gt[j] = True
                cm[index[int(gts[j]["category_id"])], index[int(d["category_id"])]] += 1
            else:
                cm[k, index[int(d["category_id"])]] += 1
        for j, g in enumerate(gts):
            if not matched_gt[j]:
                cm[index[int(g["category_id"])], k] += 1
    return cm


def _geometry(ann: Dict, key: str, img: Dict):
    from pycocotools import mask as mask_utils

    if key == "bbox":
        return list(ann["bbox"])
    seg = ann["segmentation"]
    h, w = int(img["height"]), int(img["width"])
    if isinstance(seg, list):  # polygons
        rles = mask_utils.frPyObjects(seg, h, w)
        return mask_utils.merge(rles)
    if isinstance(seg.get("counts"), list):
        return mask_utils.frPyObjects(seg, h, w)
    counts = seg["counts"]
    return {"size": seg["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
