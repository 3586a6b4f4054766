"""The end-to-end demo: generated shapes → TFRecords → config → train → evaluate → export →
inference on held-out images → COCO scores, PR curves, overlays and a report.

Every stage is the project's own library call (the same code the subcommands run), so the
demo is also a smoke test of a whole install. Layout of ``out_dir``::

    dataset/            LabelMe JSON + images (`tfod_seg.demo.shapes.generate_shapes_dataset`)
    records/            {train,val}-*.tfrecord, label_map.pbtxt, report.json (`convert_dataset`)
    pipeline.yaml       Model Garden experiment from pipelines/garden_cpu_demo.yaml (`generate_config`)
    model/              checkpoints, TensorBoard summaries, the config used (`train`)
    exported/           saved_model/ with the TFOD2 signature, label map, config (`export`)
    predictions/        the export run on (up to 32) held-out images: overlays/, coco/ (`run_inference`)
    score/              COCO metrics of the export on the val records, PR curves, report (`score_model`)
    report.md           metrics, per-stage times, links to the plots and a few overlays
    metrics.json        box_AP, mask_AP, mask_AP50, ..., wall_seconds, stage_seconds
    logs/engine.log     what Model Garden / Orbit print during train and export
    logs/demo.log       everything else libraries log (`tfod-seg demo`)

**Time budget** (default 8 minutes for the whole demo): the training stage gets what the
budget leaves after the stages before it and a reserve for the stages after it; the reserve is
``POST_TRAIN_FACTOR`` times the demo's own start-up (up to the end of training's first loop),
measured in the run, so on a slower machine training stops earlier and the whole demo still
ends inside the budget. Training also stops at ``MAX_STEPS`` (or ``num_steps``) on a fast
machine. The learning-rate schedule is fitted to the steps actually run (see
`tfod_seg.engines.garden.loop`).

The metrics (``box_AP``, ``mask_AP``, ...) are those of the *exported* SavedModel on the
validation split (what a user gets). Training does not evaluate its checkpoint as well: the
score stage is that evaluation, and a second one would cost the budget its time. The
SavedModel is loaded once for the infer and score stages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from typing import Callable, Dict, List, Optional

from tfod_seg import io
from tfod_seg.annotations.labelme import read_labelme
from tfod_seg.config.generate import generate_config
from tfod_seg.demo.shapes import generate_shapes_dataset
from tfod_seg.engines.budget import parse_duration
from tfod_seg.engines.garden import export as export_mod
from tfod_seg.engines.garden import train as train_mod
from tfod_seg.errors import UserError
from tfod_seg.evaluation.score import score_model
from tfod_seg.inference.predict import load_predictor
from tfod_seg.inference.run import relative_path, run_inference
from tfod_seg.records.convert import convert_dataset
from tfod_seg.records.reader import iter_raw_records, parse_example

logger = logging.getLogger(__name__)

TEMPLATE = "garden_cpu_demo"
#: Shape images generated; VAL_FRACTION of them are held out for evaluation and inference.
NUM_IMAGES = 500
VAL_FRACTION = 0.2
IMAGE_SIZE = 128
TIME_BUDGET = "8m"  # the whole demo, dataset to report
MAX_STEPS = 2000  # training stops here on a fast machine (the template's train_steps)
STEPS_PER_LOOP = 10  # short loops: the budget is checked (and the rate measured) after each
#: The stages after training (export, inference, scoring, report) cost about as much wall time as
#: the demo's start-up up to the end of training's first loop (imports, dataset, convert, building
#: and tracing the model: the same single-threaded kind of work; measured 1.03-1.09x on one and two
#: cores). The reserve kept for them is this factor times that start-up, measured in each run.
POST_TRAIN_FACTOR = 1.2
MIN_SCORE = 0.5  # detections drawn on the overlays
MAX_OVERLAY_IMAGES = 32  # held-out images run through `run_inference` for overlays (scoring uses all)
NUM_OVERLAYS_IN_REPORT = 4

STAGES = ("dataset", "convert", "config", "train", "export", "infer", "score", "report")
_MARKER = ".tfod-seg-demo"
_OWNED = ("dataset", "records", "model", "exported", "predictions", "score", "logs/engine.log", "pipeline.yaml",
          "report.md", "metrics.json")


def _prepare_out_dir(out_dir: str) -> None:
    """Create ``out_dir`` or clear an earlier demo run there; never clobber a foreign folder."""
    # logs/ may already hold this run's own log (`tfod-seg demo` opens OUT/logs/demo.log first).
    if io.isdir(out_dir) and [n for n in io.listdir(out_dir) if n != "logs"]:
        if not io.exists(io.join(out_dir, _MARKER)):
            raise UserError(f"{out_dir}: folder exists and is not empty (and is not an earlier demo output); "
                            "expected a new or empty folder for --out")
        for name in _OWNED:
            path = io.join(out_dir, name)
            if io.isdir(path):
                io.rmtree(path)
            elif io.exists(path):
                io.remove(path)
    io.makedirs(out_dir, "--out")
    io.atomic_write_text(io.join(out_dir, _MARKER),
                         "output of `tfod-seg demo`; the demo clears this folder's demo files when run again here\n")


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
    so the console shows the demo's own progress; the file keeps the full logs (a URL gets a
    local file, uploaded when the block ends: object stores cannot append)."""
    io.makedirs(io.dirname(path))
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(io.atomic_path(path, "engine log")) if io.is_url(path) else path
        stack.enter_context(contextlib.redirect_stdout(stack.enter_context(io.open_file(target, "a"))))
        yield


def _val_image_files(dataset_dir: str, val_records: List[str]) -> List[str]:
    """Image files of the validation split, found through the records' ``image/filename``."""
    files = []
    for path, index, serialized in iter_raw_records(val_records):
        rec = parse_example(serialized, path, index, decode_masks=False)
        candidate = io.join(dataset_dir, rec.filename)
        if io.isfile(candidate):
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


@dataclasses.dataclass
class DemoPlan:
    """What the demo will do and where (paths under ``out_dir``)."""

    out_dir: str
    num_images: int
    image_size: int
    num_steps: int
    val_fraction: float
    seed: int
    deadline: float  # time.monotonic() at which the whole demo's budget ends
    budget_seconds: float

    def path(self, name: str) -> str:
        return io.join(self.out_dir, name)


def plan_demo(out_dir, *, num_images: int = NUM_IMAGES, image_size: int = IMAGE_SIZE, num_steps: Optional[int] = None,
              val_fraction: float = VAL_FRACTION, seed: int = 0, time_budget=TIME_BUDGET) -> DemoPlan:
    """Check the arguments, prepare ``out_dir`` and start the budget's clock."""
    if num_images < 2:
        raise UserError(f"--num-images {num_images}: expected at least 2 (one to train, one to hold out)")
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"--val-fraction {val_fraction}: expected a value in (0, 1)")
    if num_steps is not None and num_steps <= 0:
        raise UserError(f"--num-steps {num_steps}: expected a positive number of steps")
    budget = parse_duration(time_budget, "--time_budget")
    out_dir = io.abspath(os.fspath(out_dir))
    _prepare_out_dir(out_dir)
    return DemoPlan(out_dir, num_images, image_size, num_steps or MAX_STEPS, val_fraction, seed,
                    time.monotonic() + budget, budget)


class _PostTrainReserve:
    """``budget_reserve`` for `train`: seconds to keep for the stages after training,
    ``POST_TRAIN_FACTOR`` x the time from the demo's start to the first call with a measured
    rate (the end of training's first loops)."""

    def __init__(self, start: float, clock: Callable[[], float] = time.monotonic):
        self.start, self.clock = start, clock
        self.startup: Optional[float] = None

    def __call__(self, rate: Optional[float]) -> float:
        if not rate:
            return 0.0
        if self.startup is None:
            self.startup = self.clock() - self.start
        return POST_TRAIN_FACTOR * self.startup


def _data_stages(plan: DemoPlan, clock: _Clock) -> Dict:
    with clock.stage("dataset"):
        shapes = generate_shapes_dataset(plan.path("dataset"), plan.num_images, plan.image_size, plan.seed)
    with clock.stage("convert"):
        conversion = convert_dataset(read_labelme(plan.path("dataset")), plan.path("records"),
                                     label_map=shapes["label_map"], val_fraction=plan.val_fraction, seed=plan.seed,
                                     strict=True)
        conversion = conversion.to_json() if hasattr(conversion, "to_json") else conversion
        if not conversion["splits"].get("val", {}).get("images"):
            raise UserError(f"--num-images {plan.num_images} with --val-fraction {plan.val_fraction} held out no "
                            "image; use more images or a larger fraction")
    with clock.stage("config"):
        config = generate_config(TEMPLATE, label_map=conversion["label_map"], train=plan.path("records/train-*.tfrecord"),
                                 val=plan.path("records/val-*.tfrecord"), model_dir=plan.path("model"),
                                 out=plan.path("pipeline.yaml"), steps=plan.num_steps, target="cpu",
                                 image_size=plan.image_size,
                                 overrides=[f"trainer.steps_per_loop={STEPS_PER_LOOP}",
                                            f"trainer.summary_interval={STEPS_PER_LOOP}"])
    return {"conversion": conversion, "config": config}


def _model_stages(plan: DemoPlan, clock: _Clock, config: str, on_train_progress) -> Dict:
    log = plan.path("logs/engine.log")
    with clock.stage("train"), _stdout_to(log):
        trained = train_mod.train(config, plan.path("model"), num_train_steps=plan.num_steps,
                                  time_budget=max(1.0, plan.deadline - time.monotonic()),
                                  budget_reserve=_PostTrainReserve(plan.deadline - plan.budget_seconds),
                                  on_progress=on_train_progress)
    with clock.stage("export"), _stdout_to(log):
        exported = export_mod.export(config, plan.path("model"), plan.path("exported"))
    return {"trained": trained, "saved_model": exported.saved_model}


def _inference_stages(plan: DemoPlan, clock: _Clock, label_map: str) -> Dict:
    with clock.stage("infer"):
        model = load_predictor(plan.path("exported"))  # loaded once, for both stages
        val_records = io.glob(plan.path("records/val-*.tfrecord"))
        held_out = _val_image_files(plan.path("dataset"), val_records)[:MAX_OVERLAY_IMAGES]
        inference = run_inference(model, held_out, plan.path("predictions"),
                                  formats=("overlay", "coco"), min_score=MIN_SCORE, label_map=label_map).to_json()
    with clock.stage("score"):
        score = score_model(model, val_records, plan.path("score"), label_map=label_map).to_json()
    return {"inference": inference, "score": score}


def _metrics(plan: DemoPlan, data: Dict, model: Dict, results: Dict) -> Dict:
    splits, trained = data["conversion"]["splits"], model["trained"]
    metrics = _headline(results["score"])
    metrics.update({
        "num_train_images": int(splits["train"]["images"]),
        "num_val_images": int(splits["val"]["images"]),
        "num_val_instances": int(splits["val"].get("instances", 0)),
        "image_size": plan.image_size,
        "train_steps": trained.final_step if trained.final_step is not None else trained.total_steps,
        "train_steps_per_sec": trained.measured_steps_per_sec,
        "train_stop_reason": trained.stop_reason,
        "final_loss": trained.final_loss,
        "time_budget_seconds": plan.budget_seconds,
        "seed": plan.seed,
        "paths": {"config": data["config"], "saved_model": model["saved_model"], "predictions": plan.path("predictions"),
                  "score": plan.path("score"), "report": plan.path("report.md")},
    })
    return metrics


def run_demo(out_dir, *, num_images: int = NUM_IMAGES, image_size: int = IMAGE_SIZE, num_steps: Optional[int] = None,
             val_fraction: float = VAL_FRACTION, seed: int = 0, time_budget=TIME_BUDGET, progress=None,
             on_train_progress: Optional[Callable] = None) -> Dict:
    """Run the whole pipeline on a generated shapes dataset into ``out_dir`` (layout above).

    Args:
      out_dir: a new or empty folder, or the folder of an earlier demo (its demo files are replaced).
      num_images: shape images to generate (``val_fraction`` of them held out).
      image_size: side of the generated square images in pixels.
      num_steps: most training steps (default ``MAX_STEPS``); the time budget may stop earlier.
      val_fraction: held-out share of the images (validation split).
      seed: dataset and split seed.
      time_budget: the whole demo's wall time (``"8m"``, seconds, ...); training adapts to it.
      progress: object with ``update(n)`` (and optionally ``set_postfix_str``), advanced once per
        stage (``len(STAGES)`` in all).
      on_train_progress: receives `tfod_seg.engines.progress.TrainEvent`s during training.

    Returns the content of ``out_dir/metrics.json``: ``box_AP``, ``box_AP50``, ``mask_AP``,
    ``mask_AP50``, ... (exported model on the val split, floats in [0, 1], -1 where COCO has no
    object of that size), ``wall_seconds``, ``stage_seconds``, ``num_train_images``, ``num_val_images``, ``train_steps``,
    ``train_steps_per_sec``, ``train_stop_reason``, ``time_budget_seconds`` and ``paths``.
    """
    wall_start = time.perf_counter()
    plan = plan_demo(out_dir, num_images=num_images, image_size=image_size, num_steps=num_steps,
                     val_fraction=val_fraction, seed=seed, time_budget=time_budget)
    clock = _Clock(progress)
    data = _data_stages(plan, clock)
    model = _model_stages(plan, clock, data["config"], on_train_progress)
    results = _inference_stages(plan, clock, data["conversion"]["label_map"])
    with clock.stage("report"):
        metrics = _metrics(plan, data, model, results)
        metrics["stage_seconds"] = dict(clock.seconds)  # the report's own few ms are not in its table
        metrics["wall_seconds"] = round(time.perf_counter() - wall_start, 2)
        io.atomic_write_text(plan.path("report.md"), _report_md(plan.out_dir, metrics, results["inference"]))
    metrics["wall_seconds"] = round(time.perf_counter() - wall_start, 2)
    metrics["stage_seconds"] = dict(clock.seconds)
    io.atomic_write_json(plan.path("metrics.json"), metrics)
    return metrics


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) and v >= 0 else ("n/a" if isinstance(v, float) else str(v))


def _report_md(out_dir: str, m: Dict, inference: Dict) -> str:
    rel = lambda path: relative_path(path, out_dir)  # noqa: E731
    lines = [
        "# tfod-seg demo report",
        "",
        f"Mask R-CNN (Model Garden, template `pipelines/{TEMPLATE}.yaml`) trained for {m['train_steps']} steps "
        f"({m.get('train_stop_reason') or 'total steps reached'}; demo budget {m['time_budget_seconds']:.0f} s) on "
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
    lines += ["", "## Time (wall clock, seconds)", "", "| stage | seconds |", "| --- | --- |"]
    for stage, sec in m["stage_seconds"].items():
        lines.append(f"| {stage} | {sec:.1f} |")
    lines.append(f"| **total** | **{m['wall_seconds']:.1f}** |")
    score_dir = m["paths"]["score"]
    plots = io.glob(io.join(score_dir, "pr_*.png"))
    if plots:
        lines += ["", "## Precision-recall curves", ""]
        lines += [f"![{io.basename(pp)}]({rel(pp)})" for pp in plots]
    if io.isfile(io.join(score_dir, "report.md")):
        lines += ["", f"Per-class table, thresholds and confusion matrix: [{rel(score_dir)}/report.md]"
                      f"({rel(score_dir)}/report.md)."]
    overlays = io.glob(io.join(m["paths"]["predictions"], "overlays", "*.png"))
    if overlays:
        lines += ["", f"## Predictions on held-out images (score ≥ {MIN_SCORE})", ""]
        lines += [f"![{io.basename(o)}]({rel(o)})" for o in overlays[:NUM_OVERLAYS_IN_REPORT]]
        lines.append("")
        lines.append(f"All {len(overlays)} overlays: `{rel(io.dirname(overlays[0]))}/`; "
                     f"{inference.get('detections', 0)} detections in all.")
    lines += ["", "Files: `metrics.json` (these numbers), `pipeline.yaml` (the config), `model/` (checkpoints, "
                  "TensorBoard), `exported/saved_model` (the SavedModel).", ""]
    return "\n".join(lines)
