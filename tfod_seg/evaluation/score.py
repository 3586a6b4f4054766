"""Score predictions against ground truth: `score_model` (an export on TFRecords) and
`score_files` (a COCO ground-truth JSON and a COCO results JSON).

Writes to ``out_dir`` (a local folder or URL):

    metrics.json        {"bbox": {AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl},
                         "segm": {...}, "per_class": {name: {"id", "num_gt", "num_det",
                         "bbox": {AP, AP50, AP75}, "segm": {...}, "best_f1": {"bbox", "segm"}}}}
    per_class.csv       the per-class AP table
    pr_curves.csv       iou_type, iou, class, recall, precision, score (COCO's 101 recall points)
    pr_{segm,bbox}_iou{50,75}.png   per-class and overall precision-recall curves
    thresholds.csv      best-F1 score threshold per class (IoU 0.5)
    confusion.csv/.png  class confusion among matched detections, with missed and spurious
    report.md           the table and the plots
    gt.json, results.json  (score_model only) the ground truth and predictions, for score_files

COCO gives -1 for a metric with no ground truth in range (e.g. APs without small objects);
metrics.json keeps -1 there. Without masks in the ground truth or predictions, ``segm`` holds
-1 everywhere and the report says why.

`score_coco` runs in three steps: `plan_scoring` (the categories), `ScoreAccumulator`
(COCOeval per IoU type, counts and confusion matrix, fed one chunk of images at a time, then
`ScoreAccumulator.finish`: per-class AP, PR curves) and `report_scoring` (the files). The
metrics are a `ScoreResult` whose `to_json()` is ``metrics.json``.

Memory does not grow with the dataset: COCOeval runs per chunk of ``chunk_images`` images
(`tfod_seg.evaluation.chunked`: the same numbers as one COCOeval over everything), the
confusion matrix and the counts are added up per chunk, and `score_model` streams the records
and the predictions (`tfod_seg.evaluation.stream`). `score_files` and `score_coco` still
hold the two JSON documents they are given.
"""

from __future__ import annotations

import csv
import dataclasses
import io as _stdio
import logging
import os
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from tfod_seg import io
from tfod_seg.errors import UserError
from tfod_seg.evaluation.chunked import ChunkedCocoEval
from tfod_seg.evaluation.coco_metrics import (IOU_TYPES, PR_IOUS, STAT_NAMES, best_f1, confusion_matrix, load_results,
                                              per_class_ap, pr_curves, quiet, stats_by_name)
from tfod_seg.evaluation.ground_truth import label_map_beside_records, scan_records
from tfod_seg.evaluation.inputs import CocoInputs, check_ground_truth, check_inputs, check_results
from tfod_seg.evaluation.plots import plot_confusion, plot_pr_curves
from tfod_seg.evaluation.stream import coco_outputs, model_chunks
from tfod_seg.inference.predict import find_label_map, load_predictor
from tfod_seg.labelmap import LabelMap, read_label_map
from tfod_seg.records.reader import expand_patterns

log = logging.getLogger(__name__)

_NO_AP = {"AP": -1.0, "AP50": -1.0, "AP75": -1.0}
DEFAULT_CHUNK_IMAGES = 100  # images per COCOeval chunk


@dataclasses.dataclass
class ClassMetrics:
    """One class's row of ``metrics.json`` ``per_class``."""

    id: int
    num_gt: int
    num_det: int
    bbox: Dict[str, float] = dataclasses.field(default_factory=lambda: dict(_NO_AP))  # AP, AP50, AP75
    segm: Dict[str, float] = dataclasses.field(default_factory=lambda: dict(_NO_AP))
    best_f1: Dict[str, Optional[Dict[str, float]]] = dataclasses.field(
        default_factory=lambda: {t: None for t in IOU_TYPES})  # threshold, f1, precision, recall at IoU 0.5

    def to_json(self) -> Dict:
        return {"id": self.id, "num_gt": self.num_gt, "num_det": self.num_det, "bbox": self.bbox,
                "best_f1": self.best_f1, "segm": self.segm}


@dataclasses.dataclass
class ScoreResult:
    """COCO metrics of one scoring run; `to_json()` is the content of ``metrics.json``."""

    bbox: Dict[str, float]  # the 12 COCO summary numbers (STAT_NAMES), -1 where undefined
    segm: Dict[str, float]
    per_class: Dict[str, ClassMetrics]  # by class name

    def to_json(self) -> Dict:
        return {"bbox": self.bbox, "segm": self.segm,
                "per_class": {name: c.to_json() for name, c in self.per_class.items()}}


@dataclasses.dataclass
class ScoringPlan:
    """What is known before the first chunk: the categories (every output lists them in this
    order), the notes so far and the confusion matrix's score threshold."""

    categories: List[Dict]
    cat_ids: List[int]  # sorted
    names: Dict[int, str]
    notes: List[str]
    confusion_min_score: float = 0.5


@dataclasses.dataclass
class _Scored:
    result: ScoreResult
    curves_rows: List[list]
    curves: Dict[tuple, Dict]  # (iou_type, iou) -> pr_curves(...)
    confusion: np.ndarray
    confusion_type: str
    num_images: int
    num_results: int
    notes: List[str]


def _gt_coco(doc):
    from pycocotools.coco import COCO

    gt = COCO()
    gt.dataset = doc
    quiet(gt.createIndex)
    return gt


def score_files(gt_json, predictions_json, out_dir, *, confusion_min_score: float = 0.5,
                chunk_images: int = DEFAULT_CHUNK_IMAGES) -> ScoreResult:
    """Score a COCO results JSON against a COCO ground-truth JSON (local paths or URLs); write
    the files listed in the module docstring to ``out_dir``; return the `ScoreResult`."""
    gt_path, pred_path = io.check_path(gt_json, "--gt"), io.check_path(predictions_json, "--predictions")
    gt_doc = io.read_json(gt_path, what="COCO ground-truth JSON file")
    gt_doc, table = check_ground_truth(gt_doc, gt_path)  # fail on the ground truth before reading results
    results = check_results(io.read_json(pred_path, what="COCO results JSON file"), table, pred_path)
    return _score_checked(CocoInputs(gt_doc, results), out_dir, confusion_min_score, None, chunk_images)


def plan_scoring(categories: List[Dict], notes: Optional[List[str]] = None,
                 confusion_min_score: float = 0.5) -> ScoringPlan:
    """The plan of a run scoring against ``categories`` (checked COCO ``categories``)."""
    names = {int(c["id"]): c["name"] for c in categories}
    return ScoringPlan(categories=list(categories), cat_ids=sorted(names), names=names, notes=list(notes or []),
                       confusion_min_score=confusion_min_score)


class ScoreAccumulator:
    """The execute step, one chunk of images at a time (`add`), then `finish`: COCOeval per
    IoU type (`ChunkedCocoEval`), the per-class counts, the confusion matrices (added up per
    image) and whether masks can be scored; nothing that grows with the detections is kept.

    "segm" is scored when every ground-truth annotation (at least one) and every prediction
    has a mask; until a chunk shows otherwise, both IoU types are evaluated."""

    def __init__(self, plan: ScoringPlan):
        self.plan = plan
        k = len(plan.cat_ids)
        self.evals = {t: ChunkedCocoEval(t, plan.cat_ids) for t in IOU_TYPES}
        self.confusion = {t: np.zeros((k + 1, k + 1), np.int64) for t in IOU_TYPES}
        self.num_gt = {c: 0 for c in plan.cat_ids}
        self.num_det = {c: 0 for c in plan.cat_ids}
        self.unknown: Dict[int, int] = {}  # category id not in the ground truth -> predictions
        self.gt_masks = self.dt_masks = True
        self.any_annotation = False
        self.num_images = self.num_results = 0

    def add(self, images: List[Dict], annotations: List[Dict], results: List[Dict]) -> None:
        """Score one chunk: checked COCO images (ids above the previous chunk's), their
        annotations and results (`tfod_seg.evaluation.inputs`)."""
        self._count(images, annotations, results)
        self.gt_masks = self.gt_masks and all("segmentation" in a for a in annotations)
        self.dt_masks = self.dt_masks and all("segmentation" in r for r in results)
        if not (self.gt_masks and self.dt_masks):
            self.evals.pop("segm", None)
            self.confusion.pop("segm", None)
        gt = _gt_coco({"images": images, "annotations": annotations, "categories": self.plan.categories})
        for iou_type, ev in self.evals.items():  # bbox first: pycocotools adds fields to the segm results
            use = results if iou_type == "segm" else [{k: v for k, v in r.items() if k != "segmentation"}
                                                      for r in results]
            ev.add(gt, load_results(gt, use))
        for iou_type, cm in self.confusion.items():
            cm += confusion_matrix(gt, results, self.plan.cat_ids, iou_type=iou_type,
                                   min_score=self.plan.confusion_min_score)

    def _count(self, images, annotations, results) -> None:
        self.num_images += len(images)
        self.num_results += len(results)
        self.any_annotation = self.any_annotation or bool(annotations)
        for a in annotations:
            if not a.get("iscrowd"):
                self.num_gt[int(a["category_id"])] = self.num_gt.get(int(a["category_id"]), 0) + 1
        for r in results:
            c = int(r["category_id"])
            if c in self.num_det:
                self.num_det[c] += 1
            else:
                self.unknown[c] = self.unknown.get(c, 0) + 1

    def _notes(self, segm: bool) -> List[str]:
        notes = list(self.plan.notes)
        if self.unknown:
            notes.append(f"{sum(self.unknown.values())} prediction(s) have category ids not in the ground truth "
                         f"({sorted(self.unknown)[:10]}); they count for nothing")
        if not segm:
            why = "the ground truth has no masks" if not (self.any_annotation and self.gt_masks) \
                else "the predictions have no masks"
            notes.append(f"segm metrics not computed: {why}")
        return notes

    def finish(self) -> _Scored:
        """Accumulate COCOeval over all chunks; the metrics, per-class table, PR curves and
        confusion matrix."""
        plan = self.plan
        segm = self.any_annotation and "segm" in self.evals
        evals = {t: self.evals[t].finish() for t in IOU_TYPES if t == "bbox" or segm}
        metrics = {t: stats_by_name(evals[t]) if t in evals else {n: -1.0 for n in STAT_NAMES} for t in IOU_TYPES}
        per_class = {plan.names[c]: ClassMetrics(id=c, num_gt=self.num_gt[c], num_det=self.num_det[c])
                     for c in plan.cat_ids}
        rows, curves = _curves(plan, evals, per_class)
        cm_type = "segm" if segm else "bbox"
        result = ScoreResult(bbox=metrics["bbox"], segm=metrics["segm"], per_class=per_class)
        return _Scored(result=result, curves_rows=rows, curves=curves, confusion=self.confusion[cm_type],
                       confusion_type=cm_type, num_images=self.num_images, num_results=self.num_results,
                       notes=self._notes(segm))


def _curves(plan: ScoringPlan, evals: Dict, per_class: Dict[str, ClassMetrics]):
    """PR curves at each IoU of `PR_IOUS` (CSV rows, curves for the plots) and best-F1 points."""
    rows, curves_by = [], {}
    for iou_type, ev in evals.items():
        ap = per_class_ap(ev)
        for c in plan.cat_ids:
            setattr(per_class[plan.names[c]], iou_type, ap.get(c, dict(_NO_AP)))
        for iou in PR_IOUS:
            curves = curves_by[(iou_type, iou)] = pr_curves(ev, iou)
            for cid, cv in curves.items():
                cname = "all" if cid == "all" else plan.names[cid]
                for r_, p_, s_ in zip(cv["recall"], cv["precision"], cv["score"]):
                    rows.append([iou_type, iou, cname, round(float(r_), 4), round(float(p_), 6),
                                 "" if np.isnan(s_) else round(float(s_), 6)])
            if iou == 0.5:
                for c in plan.cat_ids:
                    per_class[plan.names[c]].best_f1[iou_type] = best_f1(curves[c]) if c in curves else None
    return rows, curves_by


def chunk_inputs(inputs: CocoInputs, chunk_images: int) -> Iterator[Tuple[List[Dict], List[Dict], List[Dict]]]:
    """``(images, annotations, results)`` per ``chunk_images`` images of checked inputs, in
    image-id order (annotations and results keep their order within an image)."""
    anns: Dict[int, List[Dict]] = {}
    results: Dict[int, List[Dict]] = {}
    for a in inputs.gt_doc["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    for r in inputs.results:
        results.setdefault(r["image_id"], []).append(r)
    images = sorted(inputs.gt_doc["images"], key=lambda im: im["id"])
    for start in range(0, len(images), chunk_images):
        part = images[start:start + chunk_images]
        yield (part, [a for im in part for a in anns.get(im["id"], [])],
               [r for im in part for r in results.get(im["id"], [])])


def report_scoring(plan: ScoringPlan, scored: _Scored, out_dir: str) -> None:
    """Write metrics.json, the CSV tables, the plots and report.md to ``out_dir``."""
    names, cm_type, confusion_min_score = plan.names, scored.confusion_type, plan.confusion_min_score
    plots = []
    for (iou_type, iou), curves in scored.curves.items():
        path = io.join(out_dir, f"pr_{iou_type}_iou{int(round(iou * 100))}.png")
        plot_pr_curves(curves, names, f"{'mask' if iou_type == 'segm' else 'box'} precision-recall, IoU {iou:.2f}", path)
        plots.append(path)
    cm_labels = [names[c] for c in plan.cat_ids] + ["background"]
    plot_confusion(scored.confusion, cm_labels, f"confusion ({'mask' if cm_type == 'segm' else 'box'} IoU >= 0.5, "
                   f"score >= {confusion_min_score})", io.join(out_dir, "confusion.png"))
    result = scored.result.to_json()
    io.atomic_write_json(io.join(out_dir, "metrics.json"), result)
    io.atomic_write_text(io.join(out_dir, "pr_curves.csv"),
                         _csv(["iou_type", "iou", "class", "recall", "precision", "score"], scored.curves_rows))
    ap_cols = [(t, m) for t in IOU_TYPES for m in ("AP", "AP50", "AP75")]
    io.atomic_write_text(io.join(out_dir, "per_class.csv"), _csv(
        ["class", "id", "num_gt", "num_det"] + [f"{t}_{m}" for t, m in ap_cols],
        [[n, d["id"], d["num_gt"], d["num_det"]] + [d[t][m] for t, m in ap_cols] for n, d in result["per_class"].items()]))
    io.atomic_write_text(io.join(out_dir, "thresholds.csv"), _csv(
        ["class", "iou_type", "threshold", "f1", "precision", "recall"],
        [[n, t, *(d["best_f1"][t][k] for k in ("threshold", "f1", "precision", "recall"))]
         for n, d in result["per_class"].items() for t in IOU_TYPES if d["best_f1"].get(t)]))
    cm = scored.confusion
    io.atomic_write_text(io.join(out_dir, "confusion.csv"),
                         _csv(["true \\ predicted"] + cm_labels, [[lab] + cm[i].tolist() for i, lab in enumerate(cm_labels)]))
    io.atomic_write_text(io.join(out_dir, "report.md"),
                         _report(result, cm, cm_labels, cm_type, confusion_min_score, plots, out_dir, scored.notes,
                                 scored.num_images, scored.num_results))


def score_coco(gt_doc: Dict, results: List[Dict], out_dir, *, confusion_min_score: float = 0.5,
               extra_notes: Optional[List[str]] = None, chunk_images: int = DEFAULT_CHUNK_IMAGES) -> ScoreResult:
    """Score in-memory COCO ground truth and results (see `score_files`). Both are checked and
    renumbered first (`tfod_seg.evaluation.inputs`), so ids from 0 or of any order score the
    same as ids from 1. ``chunk_images``: images per COCOeval chunk (any value gives the same
    outputs; it bounds the memory of the evaluation)."""
    return _score_checked(check_inputs(gt_doc, results), out_dir, confusion_min_score, extra_notes, chunk_images)


def _score_checked(inputs: CocoInputs, out_dir, confusion_min_score: float, notes: Optional[List[str]],
                   chunk_images: int) -> ScoreResult:
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    plan = plan_scoring(inputs.gt_doc["categories"], notes, confusion_min_score)
    acc = ScoreAccumulator(plan)
    for chunk in chunk_inputs(inputs, chunk_images):
        acc.add(*chunk)
    scored = acc.finish()
    report_scoring(plan, scored, out_dir)
    return scored.result


def _csv(header, rows) -> str:
    buf = _stdio.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _fmt(v) -> str:
    return "n/a" if v is None or v < 0 else f"{v:.3f}"


def _report(result, cm, cm_labels, cm_type, cm_score, plots, out_dir, notes, n_images, n_results) -> str:
    lines = ["# Evaluation report", "", f"{n_images} images, {n_results} predictions.", ""]
    lines += ["## COCO metrics", "", "| | " + " | ".join(STAT_NAMES) + " |", "|---" * (len(STAT_NAMES) + 1) + "|"]
    for t, label in (("segm", "mask"), ("bbox", "box")):
        lines.append(f"| {label} | " + " | ".join(_fmt(result[t][n]) for n in STAT_NAMES) + " |")
    lines += ["", "n/a: no ground truth in that range (COCO's -1).", "", "## Per class", "",
              "| class | GT | predictions | mask AP | mask AP50 | mask AP75 | box AP | box AP50 | box AP75 | best-F1 threshold (mask, IoU 0.5) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in result["per_class"].items():
        bf = d["best_f1"].get("segm") or d["best_f1"].get("bbox")
        thr = f"{bf['threshold']:.3f} (F1 {bf['f1']:.3f}, P {bf['precision']:.2f}, R {bf['recall']:.2f})" if bf else "n/a"
        lines.append(f"| {name} | {d['num_gt']} | {d['num_det']} | " + " | ".join(
            _fmt(d[t][m]) for t in ("segm", "bbox") for m in ("AP", "AP50", "AP75")) + f" | {thr} |")
    lines += ["", "## Precision-recall curves", ""]
    for p in plots:
        lines.append(f"![{io.basename(p)}]({io.basename(p)})")
    lines += ["", "Data: `pr_curves.csv`; best-F1 thresholds: `thresholds.csv`.", "",
              f"## Confusion matrix ({'mask' if cm_type == 'segm' else 'box'} IoU >= 0.5, score >= {cm_score})", "",
              "Rows: true class (background = a detection that matched nothing). Columns: predicted class "
              "(background = ground truth no detection matched).", "",
              "| true \\ predicted | " + " | ".join(cm_labels) + " |", "|---" * (len(cm_labels) + 1) + "|"]
    for i, lab in enumerate(cm_labels):
        lines.append(f"| {lab} | " + " | ".join(str(int(v)) for v in cm[i]) + " |")
    lines += ["", "![confusion](confusion.png)", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _model_label_map(label_map, records, model) -> Optional[LabelMap]:
    if label_map is not None and not isinstance(label_map, LabelMap):
        return read_label_map(label_map, allow_gaps=True)
    if label_map is None:
        path = label_map_beside_records(records)
        if path is None and isinstance(model, (str, os.PathLike)):
            path = find_label_map(model)
        return read_label_map(path, allow_gaps=True) if path else None
    return label_map


def _checked_chunk(chunk, categories: List[Dict], before: List[int]):
    """One chunk of `model_chunks` through `tfod_seg.evaluation.inputs`' checks, numbered after
    the ``before`` = [images, annotations, results] of the earlier chunks (updated)."""
    images, anns, results = chunk
    gt, table = check_ground_truth({"images": images, "annotations": anns, "categories": categories},
                                   first_image=before[0], first_annotation=before[1])
    checked = check_results(results, table, first_result=before[2])
    before[:] = [before[0] + len(images), before[1] + len(anns), before[2] + len(results)]
    return gt["images"], gt["annotations"], checked


def score_model(model, records, out_dir, *, label_map=None, progress=None, min_score: float = 0.0,
                confusion_min_score: float = 0.5, batch_size: int = 1, workers: Optional[int] = None,
                chunk_images: int = DEFAULT_CHUNK_IMAGES) -> ScoreResult:
    """Run a model over TFRecords and score it. Writes ``gt.json`` (COCO ground truth from
    the records, reusable with `score_files`), ``results.json`` and the files of
    `score_files` to ``out_dir``; returns the `ScoreResult`.

    ``model`` is an export directory, a ``.tflite`` / ``.onnx`` file from `tfod-seg export
    --format`, or a loaded predictor (`tfod_seg.inference.load_predictor`). The images go
    through the same streaming path as `tfod-seg infer` (`tfod_seg.inference.stream`): decoded
    from the records by `tf.data`, batched by ``batch_size`` when every image has the same size
    and the model takes batches, prefetched, masks pasted and RLE-encoded in ``workers``
    threads beside the model. The records are scanned first (image sizes, which decide
    batching, and classes, without decoding masks), then read again beside the predictions
    and scored ``chunk_images`` images at a time (`tfod_seg.evaluation.stream`), while
    ``gt.json`` and ``results.json`` are written: memory does not grow with the dataset.

    ``label_map`` (a `LabelMap` or path) names the classes; by default the ``label_map.pbtxt``
    beside the records, else the records' class texts, else the one beside the model.
    ``progress.update(1)`` is called per image.
    """
    files = expand_patterns(records)
    predictor = load_predictor(model)
    label_map = _model_label_map(label_map, records, model)
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    index = scan_records(files)
    if not index.images:
        raise UserError(f"{records}: the TFRecord files hold no examples")
    categories = index.categories(label_map)
    plan = plan_scoring(categories, None, confusion_min_score)
    acc, before = ScoreAccumulator(plan), [0, 0, 0]
    with coco_outputs(out_dir, index.images, categories) as outputs:
        for chunk in model_chunks(predictor, files, index, chunk_images=chunk_images, batch_size=batch_size,
                                  min_score=min_score, workers=workers, progress=progress, records=records):
            outputs.add(chunk[1], chunk[2])
            acc.add(*_checked_chunk(chunk, categories, before))
    scored = acc.finish()
    report_scoring(plan, scored, out_dir)
    return scored.result
