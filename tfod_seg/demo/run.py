"""The end-to-end demo: generated shapes → TFRecords → config → train → evaluate → export →
inference on held-out images → COCO scores, PR curves, overlays and a report.

Every stage is the project's own library call (the same code the subcommands run), so the
demo is also a smoke test of a whole install. Layout of ``out_dir``::

    dataset/            LabelMe JSON + images (`tfod_seg.demo.shapes.generate_shapes_dataset`)
    records/            {train,val}-*.tfrecord, label_map.pbtxt, report.json (`convert_dataset`)
    pipeline.yaml       Model Garden experiment from pipelines/garden_cpu_demo.yaml (`generate_config`)
    model/              checkpoints, TensorBoard summaries, the config used (`train`, `evaluate`)
    exported/           saved_model/ with the TFOD2 signature, label map, config (`export`)
    predictions/        the export run on (up to 32) held-out images: overlays/, coco/ (`run_inference`)
    score/              COCO metrics of the export on the val records, PR curves, report (`score_model`)
    report.md           metrics, per-stage times, links to the plots and a few overlays
    metrics.json        box_AP, mask_AP, mask_AP50, ..., wall_seconds, stage_seconds
    logs/engine.log     what Model Garden / Orbit print during train, evaluate, export

The headline metrics (``box_AP``, ``mask_AP``, ...) are those of the *exported* SavedModel on
the validation split (what a user gets); the checkpoint's own Model Garden evaluation is kept
under ``checkpoint_eval``.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import time
from typing import Callable, Dict, List, Optional

from tfod_seg.errors import UserError

logger = logging.getLogger(__name__)

TEMPLATE = "garden_cpu_demo"
#: Shape images generated; VAL_FRACTION of them are held out for evaluation and inference.
NUM_IMAGES = 500
VAL_FRACTION = 0.2
IMAGE_SIZE = 192
MIN_SCORE = 0.5  # detections drawn on the overlays
MAX_OVERLAY_IMAGES = 32  # held-out images run through `run_inference` for overlays (scoring uses all)
NUM_OVERLAYS_IN_REPORT = 4

STAGES = ("dataset", "convert", "config", "train", "evaluate", "export", "infer", "score", "report")
_MARKER = ".tfod-seg-demo"
_OWNED = ("dataset", "records", "model", "exported", "predictions", "score", "logs", "pipeline.yaml", "report.md",
          "metrics.json")


def _prepare_out_dir(out_dir: str) -> None:
    """Create ``out_dir`` or clear an earlier demo run there; never clobber a foreign folder."""
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not os.path.exists(os.path.join(out_dir, _MARKER)):
            raise UserError(f"{out_dir}: folder exists and is not empty (and is not an earlier demo output); "
                            "expected a new or empty folder for --out")
        for name in _OWNED:
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.unlink(path)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, _MARKER), "w", encoding="utf-8") as f:
        f.write("output of `tfod-seg demo`; the demo clears this folder's demo files when run again here\n")


class _Clock:
    """Per-stage wall times; tells `progress` which stage runs and advances it per stage."""

    def __init__(self, progress):
        self.progress = progress
        self.seconds: Dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        if self.progress is not None and hasattr(self.progress, "set_postfix_str"):
            self.progress.set_postfix_str(name)
        logger.info("demo stage: %s", name)
        t = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t, 2)
        logger.info("demo stage %s done in %.1f s", name, self.seconds[name])
        if self.progress is not None:
            self.progress.update(1)


@contextlib.contextmanager
def _stdout_to(path: str):
    """Send what libraries print on stdout (Orbit prints every train/eval log dict) to a file,
    so the console shows the demo's own progress; the file keeps the full logs."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        yield


def _val_image_files(dataset_dir: str, val_records: List[str]) -> List[str]:
    """Image files of the validation split, found through the records' ``image/filename``."""
    from tfod_seg.records.reader import iter_raw_records, parse_example

    files = []
    for path, index, serialized in iter_raw_records(val_records):
        rec = parse_example(serialized, path, index, decode_masks=False)
        candidate = os.path.join(dataset_dir, rec.filename)
        if os.path.isfile(candidate):
            files.append(candidate)
        else:
            logger.warning("held-out image %s (from %s) not found in %s", rec.filename, path, dataset_dir)
    return files


def _headline(score: Dict) -> Dict[str, float]:
    out = {}
    for iou_type, prefix in (("bbox", "box"), ("segm", "mask")):
        stats = score.get(iou_type) or {}
        for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"):
            if name in stats:
                out[f"{prefix}_{name}"] = float(stats[name])
    return out


def run_demo(out_dir, *, num_images: int = NUM_IMAGES, image_size: int = IMAGE_SIZE, num_steps: Optional[int] = None,
             val_fraction: float = VAL_FRACTION, seed: int = 0, progress=None,
             on_train_progress: Optional[Callable] = None) -> Dict:
    """Run the whole pipeline on a generated shapes dataset into ``out_dir`` (layout above).

    Args:
      out_dir: a new or empty folder, or the folder of an earlier demo (its demo files are replaced).
      num_images: shape images to generate (``val_fraction`` of them held out).
      image_size: side of the generated square images in pixels.
      num_steps: training steps (default: the template's).
      val_fraction: held-out share of the images (validation split).
      seed: dataset and split seed.
      progress: object with ``update(n)`` (and optionally ``set_postfix_str``), advanced once per
        stage (``len(STAGES)`` in all).
      on_train_progress: receives `tfod_seg.engines.progress.TrainEvent`s during training.

    Returns the content of ``out_dir/metrics.json``: ``box_AP``, ``box_AP50``, ``mask_AP``,
    ``mask_AP50``, ... (exported model on the val split, floats in [0, 1], -1 where COCO has no
    object of that size), ``checkpoint_eval`` (Model Garden's evaluation of the checkpoint),
    ``wall_seconds``, ``stage_seconds``, ``num_train_images``, ``num_val_images``, ``train_steps``
    and ``paths``.
    """
    from tfod_seg.annotations.labelme import read_labelme
    from tfod_seg.config.generate import generate_config
    from tfod_seg.demo.shapes import generate_shapes_dataset
    from tfod_seg.engines.garden.evaluate import evaluate
    from tfod_seg.engines.garden.export import export
    from tfod_seg.engines.garden.train import train
    from tfod_seg.evaluation.score import score_model
    from tfod_seg.inference.run import run_inference
    from tfod_seg.io import atomic_write_json, atomic_write_text
    from tfod_seg.records.convert import convert_dataset

    if num_images < 2:
        raise UserError(f"--num-images {num_images}: expected at least 2 (one to train, one to hold out)")
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"--val-fraction {val_fraction}: expected a value in (0, 1)")
    wall_start = time.perf_counter()
    out_dir = os.path.abspath(os.fspath(out_dir))
    _prepare_out_dir(out_dir)
    p = {name: os.path.join(out_dir, name) for name in ("dataset", "records", "model", "exported", "predictions", "score")}
    p["config"] = os.path.join(out_dir, "pipeline.yaml")
    clock = _Clock(progress)

    with clock.stage("dataset"):
        shapes = generate_shapes_dataset(p["dataset"], num_images, image_size, seed)
    with clock.stage("convert"):
        conversion = convert_dataset(read_labelme(p["dataset"]), p["records"], label_map=shapes["label_map"],
                                     val_fraction=val_fraction, seed=seed, strict=True)
        splits = conversion["splits"]
        if not splits.get("val", {}).get("images"):
            raise UserError(f"--num-images {num_images} with --val-fraction {val_fraction} held out no image; "
                            "use more images or a larger fraction")
        label_map = conversion["label_map"]
        train_glob = os.path.join(p["records"], "train-*.tfrecord")
        val_glob = os.path.join(p["records"], "val-*.tfrecord")
    with clock.stage("config"):
        config = generate_config(TEMPLATE, label_map=label_map, train=train_glob, val=val_glob, model_dir=p["model"],
                                 out=p["config"], steps=num_steps)
    log = os.path.join(out_dir, "logs", "engine.log")
    with clock.stage("train"), _stdout_to(log):
        trained = train(config, p["model"], num_train_steps=num_steps, on_progress=on_train_progress)
    with clock.stage("evaluate"), _stdout_to(log):
        checkpoint_eval = evaluate(config, p["model"], once=True)
    with clock.stage("export"), _stdout_to(log):
        saved_model = export(config, p["model"], p["exported"]).saved_model
    with clock.stage("infer"):
        val_records = sorted(glob.glob(val_glob))
        held_out = _val_image_files(p["dataset"], val_records)[:MAX_OVERLAY_IMAGES]
        inference = run_inference(p["exported"], held_out, p["predictions"], formats=("overlay", "coco"),
                                  min_score=MIN_SCORE, label_map=label_map).to_json()
    with clock.stage("score"):
        score = score_model(p["exported"], val_records, p["score"], label_map=label_map).to_json()
    with clock.stage("report"):
        metrics = _headline(score)
        metrics.update({
            "checkpoint_eval": {k: v for k, v in checkpoint_eval.to_json().items() if isinstance(v, (int, float, str))},
            "num_train_images": int(splits["train"]["images"]),
            "num_val_images": int(splits["val"]["images"]),
            "num_val_instances": int(splits["val"].get("instances", 0)),
            "image_size": image_size,
            "train_steps": trained.final_step if trained.final_step is not None else trained.total_steps,
            "final_loss": trained.final_loss,
            "seed": seed,
            "paths": {"config": config, "saved_model": saved_model, "predictions": p["predictions"],
                      "score": p["score"], "report": os.path.join(out_dir, "report.md")},
        })
        metrics["stage_seconds"] = dict(clock.seconds)  # the report's own few ms are not in its table
        metrics["wall_seconds"] = round(time.perf_counter() - wall_start, 2)
        atomic_write_text(os.path.join(out_dir, "report.md"), _report_md(out_dir, metrics, inference))
    metrics["wall_seconds"] = round(time.perf_counter() - wall_start, 2)
    metrics["stage_seconds"] = dict(clock.seconds)
    atomic_write_json(os.path.join(out_dir, "metrics.json"), metrics)
    return metrics


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) and v >= 0 else ("n/a" if isinstance(v, float) else str(v))


def _report_md(out_dir: str, m: Dict, inference: Dict) -> str:
    rel = lambda path: os.path.relpath(path, out_dir)  # noqa: E731
    lines = [
        "# tfod-seg demo report",
        "",
        f"Mask R-CNN (Model Garden, template `pipelines/{TEMPLATE}.yaml`) trained for {m['train_steps']} steps on "
        f"{m['num_train_images']} generated shape images ({m['image_size']} px), scored on "
        f"{m['num_val_images']} held-out images ({m['num_val_instances']} instances). Metrics are COCO "
        "AP@[.5:.95] of the exported SavedModel (TFOD2 signature) on the held-out split.",
        "",
        "| metric | box | mask |",
        "| --- | --- | --- |",
    ]
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"):
        if f"box_{name}" in m or f"mask_{name}" in m:
            lines.append(f"| {name} | {_fmt(m.get(f'box_{name}', -1.0))} | {_fmt(m.get(f'mask_{name}', -1.0))} |")
    ce = m.get("checkpoint_eval", {})
    if "mask_AP" in ce:
        lines += ["", f"Model Garden's own evaluation of the checkpoint: box AP {_fmt(float(ce.get('box_AP', -1)))}, "
                      f"mask AP {_fmt(float(ce['mask_AP']))}."]
    lines += ["", "## Time (wall clock, seconds)", "", "| stage | seconds |", "| --- | --- |"]
    for stage, sec in m["stage_seconds"].items():
        lines.append(f"| {stage} | {sec:.1f} |")
    lines.append(f"| **total** | **{m['wall_seconds']:.1f}** |")
    score_dir = m["paths"]["score"]
    plots = sorted(glob.glob(os.path.join(score_dir, "pr_*.png")))
    if plots:
        lines += ["", "## Precision-recall curves", ""]
        lines += [f"![{os.path.basename(pp)}]({rel(pp)})" for pp in plots]
    if os.path.isfile(os.path.join(score_dir, "report.md")):
        lines += ["", f"Per-class table, thresholds and confusion matrix: [{rel(score_dir)}/report.md]"
                      f"({rel(score_dir)}/report.md)."]
    overlays = sorted(glob.glob(os.path.join(m["paths"]["predictions"], "overlays", "*.png")))
    if overlays:
        lines += ["", f"## Predictions on held-out images (score ≥ {MIN_SCORE})", ""]
        lines += [f"![{os.path.basename(o)}]({rel(o)})" for o in overlays[:NUM_OVERLAYS_IN_REPORT]]
        lines.append("")
        lines.append(f"All {len(overlays)} overlays: `{rel(os.path.dirname(overlays[0]))}/`; "
                     f"{inference.get('detections', 0)} detections in all.")
    lines += ["", "Files: `metrics.json` (these numbers), `pipeline.yaml` (the config), `model/` (checkpoints, "
                  "TensorBoard), `exported/saved_model` (the SavedModel).", ""]
    return "\n".join(lines)
