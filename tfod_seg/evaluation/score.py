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

`score_coco` runs in three steps: `plan_scoring` (checks, pycocotools objects),
`execute_scoring` (COCOeval per IoU type, per-class AP, PR curves, confusion matrix) and
`report_scoring` (the files). The metrics are a `ScoreResult` whose `to_json()` is
``metrics.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import io as _stdio
import logging
import os
from typing import Dict, List, Optional

import numpy as np

from tfod_seg import io
from tfod_seg.errors import UserError
from tfod_seg.evaluation.coco_metrics import (IOU_TYPES, PR_IOUS, STAT_NAMES, best_f1, confusion_matrix, load_results,
                                              per_class_ap, pr_curves, quiet, run_cocoeval, stats_by_name)
from tfod_seg.evaluation.ground_truth import CocoBuilder, label_map_beside_records
from tfod_seg.evaluation.inputs import CocoInputs, check_ground_truth, check_inputs, check_results
from tfod_seg.evaluation.plots import plot_confusion, plot_pr_curves
from tfod_seg.inference.formats import coco_results
from tfod_seg.inference.predict import find_label_map, load_predictor
from tfod_seg.inference.stream import choose_batch, predict_stream, record_image_dataset
from tfod_seg.labelmap import LabelMap, read_label_map
from tfod_seg.records.reader import expand_patterns, iter_records

log = logging.getLogger(__name__)

_NO_AP = {"AP": -1.0, "AP50": -1.0, "AP75": -1.0}


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
    """Checked inputs of `execute_scoring`."""

    gt: object  # pycocotools COCO of the ground truth
    gt_doc: Dict
    results: List[Dict]  # prepared for pycocotools
    cat_ids: List[int]
    names: Dict[int, str]
    iou_types: List[str]  # what can be scored ("segm" needs masks on both sides)
    notes: List[str]


@dataclasses.dataclass
class _Scored:
    result: ScoreResult
    curves_rows: List[list]
    curves: Dict[tuple, Dict]  # (iou_type, iou) -> pr_curves(...)
    confusion: np.ndarray
    confusion_type: str


def _gt_coco(doc):
    from pycocotools.coco import COCO

    gt = COCO()
    gt.dataset = doc
    quiet(gt.createIndex)
    return gt


def score_files(gt_json, predictions_json, out_dir, *, confusion_min_score: float = 0.5) -> ScoreResult:
    """Score a COCO results JSON against a COCO ground-truth JSON (local paths or URLs); write
    the files listed in the module docstring to ``out_dir``; return the `ScoreResult`."""
    gt_path, pred_path = io.check_path(gt_json, "--gt"), io.check_path(predictions_json, "--predictions")
    gt_doc = io.read_json(gt_path, what="COCO ground-truth JSON file")
    gt_doc, table = check_ground_truth(gt_doc, gt_path)  # fail on the ground truth before reading results
    results = check_results(io.read_json(pred_path, what="COCO results JSON file"), table, pred_path)
    return _score_checked(CocoInputs(gt_doc, results), out_dir, confusion_min_score, None)


def plan_scoring(gt_doc: Dict, results: List[Dict], notes: Optional[List[str]] = None) -> ScoringPlan:
    """Index the ground truth, note unknown categories, decide which IoU types can be scored.
    ``gt_doc`` and ``results`` are the output of `tfod_seg.evaluation.inputs.check_inputs`."""
    notes = list(notes or [])
    gt = _gt_coco(gt_doc)  # checked and renumbered (`tfod_seg.evaluation.inputs`)
    names = {c["id"]: c["name"] for c in gt_doc["categories"]}
    unknown = sorted({int(r["category_id"]) for r in results if int(r["category_id"]) not in names})
    if unknown:
        count = sum(int(r["category_id"]) not in names for r in results)
        notes.append(f"{count} prediction(s) have category ids not in the ground truth ({unknown[:10]}); "
                     "they count for nothing")
    gt_has_masks = bool(gt_doc["annotations"]) and all("segmentation" in a for a in gt_doc["annotations"])
    dt_has_masks = all("segmentation" in r for r in results)
    iou_types = ["bbox"]
    if gt_has_masks and dt_has_masks:
        iou_types.append("segm")
    else:
        why = "the ground truth has no masks" if not gt_has_masks else "the predictions have no masks"
        notes.append(f"segm metrics not computed: {why}")
    return ScoringPlan(gt=gt, gt_doc=gt_doc, results=results, cat_ids=sorted(gt.getCatIds()), names=names,
                       iou_types=iou_types, notes=notes)


def _class_counts(plan: ScoringPlan) -> Dict[str, ClassMetrics]:
    num_gt = {c: 0 for c in plan.cat_ids}
    for a in plan.gt_doc["annotations"]:
        if not a.get("iscrowd"):
            num_gt[int(a["category_id"])] = num_gt.get(int(a["category_id"]), 0) + 1
    num_det = {c: 0 for c in plan.cat_ids}
    for r in plan.results:
        if int(r["category_id"]) in num_det:
            num_det[int(r["category_id"])] += 1
    return {plan.names[c]: ClassMetrics(id=c, num_gt=num_gt.get(c, 0), num_det=num_det.get(c, 0)) for c in plan.cat_ids}


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


def execute_scoring(plan: ScoringPlan, *, confusion_min_score: float = 0.5) -> _Scored:
    """COCOeval per IoU type, the per-class table, PR curves and the confusion matrix."""
    evals, metrics = {}, {t: {n: -1.0 for n in STAT_NAMES} for t in IOU_TYPES}
    for iou_type in plan.iou_types:
        use = plan.results if iou_type == "segm" else [
            {k: v for k, v in r.items() if k != "segmentation"} for r in plan.results]
        evals[iou_type] = run_cocoeval(plan.gt, load_results(plan.gt, use), iou_type)
        metrics[iou_type] = stats_by_name(evals[iou_type])
    per_class = _class_counts(plan)
    rows, curves = _curves(plan, evals, per_class)
    cm_type = "segm" if "segm" in evals else "bbox"
    cm = confusion_matrix(plan.gt, plan.results, plan.cat_ids, iou_type=cm_type, min_score=confusion_min_score)
    result = ScoreResult(bbox=metrics["bbox"], segm=metrics["segm"], per_class=per_class)
    return _Scored(result=result, curves_rows=rows, curves=curves, confusion=cm, confusion_type=cm_type)


def report_scoring(plan: ScoringPlan, scored: _Scored, out_dir: str, confusion_min_score: float) -> None:
    """Write metrics.json, the CSV tables, the plots and report.md to ``out_dir``."""
    names, cm_type = plan.names, scored.confusion_type
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
                         _report(result, cm, cm_labels, cm_type, confusion_min_score, plots, out_dir, plan.notes,
                                 len(plan.gt_doc["images"]), len(plan.results)))


def score_coco(gt_doc: Dict, results: List[Dict], out_dir, *, confusion_min_score: float = 0.5,
               extra_notes: Optional[List[str]] = None) -> ScoreResult:
    """Score in-memory COCO ground truth and results (see `score_files`). Both are checked and
    renumbered first (`tfod_seg.evaluation.inputs`), so ids from 0 or of any order score the
    same as ids from 1."""
    return _score_checked(check_inputs(gt_doc, results), out_dir, confusion_min_score, extra_notes)


def _score_checked(inputs: CocoInputs, out_dir, confusion_min_score: float, notes: Optional[List[str]]) -> ScoreResult:
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    plan = plan_scoring(inputs.gt_doc, inputs.results, notes)
    scored = execute_scoring(plan, confusion_min_score=confusion_min_score)
    report_scoring(plan, scored, out_dir, confusion_min_score)
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


def _predict_records(predictor, files, builder: CocoBuilder, batch_size: int, min_score: float, progress,
                     workers: Optional[int], records) -> List[Dict]:
    """Stream the records' images through ``predictor``; COCO results with image ids 1..N in
    record order (the ids of ``builder``)."""
    import tensorflow as tf

    sizes = [(im["height"], im["width"]) for im in builder.images]

    def work(index, image, outputs, j):
        h, w = image.shape[:2]
        if (h, w) != sizes[index]:
            im = builder.images[index]
            raise UserError(f"{im['record']}: image is {w}x{h} (WxH) but the record says {sizes[index][1]}x{sizes[index][0]}")
        det = predictor.detections_from_outputs(outputs, j, h, w, min_score=min_score)
        return coco_results(det, index + 1)  # image ids 1..N in record order, as in gt.json

    batch = choose_batch(predictor, sizes, batch_size)
    results: List[Dict] = []
    seen = 0
    try:
        for _, entries in predict_stream(predictor, record_image_dataset(files, batch), work, workers=workers):
            results.extend(entries)
            seen += 1
            if progress is not None:
                progress.update(1)
    except tf.errors.OpError as e:  # an undecodable image/encoded in a foreign record
        where = builder.images[seen]["record"] if seen < len(builder.images) else records
        raise UserError(f"{where}: cannot decode the record's image/encoded ({e.message.splitlines()[0]})") from None
    if seen != len(builder.images):
        raise UserError(f"{records}: read {len(builder.images)} examples for the ground truth but {seen} images")
    log.info("scored %d images (batch %d)", seen, batch)
    return results


def score_model(model, records, out_dir, *, label_map=None, progress=None, min_score: float = 0.0,
                confusion_min_score: float = 0.5, batch_size: int = 1, workers: Optional[int] = None) -> ScoreResult:
    """Run a model over TFRecords and score it. Writes ``gt.json`` (COCO ground truth from
    the records, reusable with `score_files`), ``results.json`` and the files of
    `score_files` to ``out_dir``; returns the `ScoreResult`.

    ``model`` is an export directory, a ``.tflite`` / ``.onnx`` file from `tfod-seg export
    --format`, or a loaded predictor (`tfod_seg.inference.load_predictor`). The images go
    through the same streaming path as `tfod-seg infer` (`tfod_seg.inference.stream`): decoded
    from the records by `tf.data`, batched by ``batch_size`` when every image has the same size
    and the model takes batches, prefetched, masks pasted and RLE-encoded in ``workers``
    threads beside the model. The ground truth is read first
    (`tfod_seg.records.reader.iter_records`), which also gives the sizes that decide batching.

    ``label_map`` (a `LabelMap` or path) names the classes; by default the ``label_map.pbtxt``
    beside the records, else the records' class texts, else the one beside the model.
    ``progress.update(1)`` is called per image.
    """
    files = expand_patterns(records)
    predictor = load_predictor(model)
    label_map = _model_label_map(label_map, records, model)
    out_dir = io.makedirs(io.check_path(out_dir, "--out folder"), "--out folder")
    builder = CocoBuilder()
    for rec in iter_records(files):
        builder.add(rec)
    if not builder.images:
        raise UserError(f"{records}: the TFRecord files hold no examples")
    results = _predict_records(predictor, files, builder, batch_size, min_score, progress, workers, records)
    gt_doc = builder.to_dict(label_map)
    io.atomic_write_json(io.join(out_dir, "gt.json"), gt_doc, indent=None)
    io.atomic_write_json(io.join(out_dir, "results.json"), results, indent=None)
    return score_coco(gt_doc, results, out_dir, confusion_min_score=confusion_min_score)
