"""Shared heavy fixtures: a tiny Model Garden Mask R-CNN trained ONCE per test session.

`tiny_trained_model` generates a small shapes dataset (LabelMe), converts it with the real
converter, writes a tiny experiment YAML derived from the CPU demo template and trains it with
`tfod_seg.engines.garden.train.train`. Tests must not train into its ``model_dir``: copy it
(`copy_model_dir`) before resuming or changing it.

"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any, Dict, List

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_TEMPLATE = os.path.join(REPO, "pipelines", "garden_cpu_demo.yaml")

TINY_IMAGE_SIZE = 64
TINY_STEPS = 40
TINY_NUM_IMAGES = 48

# Overrides turning the CPU demo template into a seconds-per-run test model.
TINY_OVERRIDES: Dict[str, Any] = {
    "task.model.input_size": [TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3],
    "task.model.min_level": 2,
    "task.model.max_level": 4,
    "task.model.anchor.anchor_size": 4.0,
    "task.model.norm_activation.norm_momentum": 0.99,
    "task.model.roi_sampler.foreground_fraction": 0.25,
    "task.model.anchor.num_scales": 1,
    "task.model.anchor.aspect_ratios": [0.5, 1.0, 2.0],
    "task.model.backbone.resnet.model_id": 10,
    "task.model.backbone.resnet.depth_multiplier": 1.0,
    "task.model.decoder.fpn.num_filters": 32,
    "task.model.rpn_head.num_filters": 32,
    "task.model.detection_head.num_convs": 1,
    "task.model.detection_head.num_filters": 32,
    "task.model.detection_head.fc_dims": 64,
    "task.model.mask_head.num_convs": 1,
    "task.model.mask_head.num_filters": 32,
    "task.model.roi_sampler.num_sampled_rois": 32,
    "task.model.mask_sampler.num_sampled_masks": 16,
    "task.model.roi_generator.pre_nms_top_k": 200,
    "task.model.roi_generator.num_proposals": 64,
    "task.model.roi_generator.test_pre_nms_top_k": 200,
    "task.model.roi_generator.test_num_proposals": 32,
    "task.model.detection_generator.pre_nms_top_k": 100,
    "task.model.detection_generator.max_num_detections": 20,
    "task.train_data.global_batch_size": 4,
    "task.train_data.parser.mask_crop_size": 28,
    "task.validation_data.global_batch_size": 4,
    "trainer.train_steps": TINY_STEPS,
    "trainer.steps_per_loop": 10,
    "trainer.summary_interval": 10,
    "trainer.checkpoint_interval": 20,
    # The template's own Adam rate: 0.02 (an SGD-era value) left the 40-step model scoring exactly 0.
    "trainer.optimizer_config.learning_rate.cosine.initial_learning_rate": 0.002,
    "trainer.optimizer_config.learning_rate.cosine.decay_steps": 200,
    "trainer.optimizer_config.warmup.linear.warmup_steps": 5,
    # Deterministic input: fixed shuffle seed, tf.data order kept (see _deterministic_training).
    "task.train_data.seed": 1,
    "task.train_data.deterministic": True,
}

#: Seed and TensorFlow thread counts the tiny model is trained with (see _deterministic_training).
TINY_SEED = 0
TINY_THREADS = 2


def _deterministic_training() -> Dict[str, Any]:
    """Make training the tiny model repeatable: the same weights in every session on a machine.

    Pins Python/NumPy/TensorFlow seeds (`tf.keras.utils.set_random_seed`), turns on TensorFlow's
    op determinism (every op, tf.data included, picks a deterministic kernel or raises) and
    fixes the intra/inter-op thread counts (CPU reductions split work by thread count). The
    thread counts can only be set before TensorFlow's runtime starts; if an earlier test in
    the session already started it, the counts it started with stay (reported in the result).
    """
    import tensorflow as tf

    threads = True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(TINY_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(TINY_THREADS)
    except RuntimeError:  # runtime already initialised by an earlier test
        threads = False
    tf.keras.utils.set_random_seed(TINY_SEED)
    tf.config.experimental.enable_op_determinism()
    return {"seed": TINY_SEED, "threads_pinned": threads,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


@dataclasses.dataclass(frozen=True)
class TinyModel:
    """Paths of the session's tiny trained model (read-only: copy before changing)."""

    root: str
    labelme_dir: str  # generated LabelMe dataset (images + JSON)
    records_dir: str  # converter output: train-*/val-* records, label_map.pbtxt, report.json
    train_records: str  # glob
    val_records: str  # glob
    label_map: str
    config: str  # Model Garden experiment YAML (header names the experiment)
    model_dir: str  # checkpoints after TINY_STEPS steps, params.yaml
    num_classes: int  # label-map size (Model Garden's num_classes is this + 1)
    image_size: int
    steps: int
    events: List[Any]  # TrainEvents seen while training
    result: Any  # the TrainSummary train() returned


def write_tiny_config(path: str, train_records: str, val_records: str, num_classes: int,
                      extra: Dict[str, Any] | None = None) -> str:
    """A tiny experiment YAML from the CPU demo template (+ ``extra`` dotted overrides)."""
    from tfod_seg.config.garden import dump_experiment, load_experiment

    overrides = dict(TINY_OVERRIDES)
    overrides.update({
        "task.model.num_classes": num_classes + 1,
        "task.train_data.input_path": train_records,
        "task.validation_data.input_path": val_records,
        "task.validation_data.num_examples": -1,  # counted by the engine
    })
    overrides.update(extra or {})
    name, cfg = load_experiment(DEMO_TEMPLATE, overrides)
    return dump_experiment(cfg, path, name, header=["tiny test experiment (tests/garden_fixtures.py)"])


def copy_model_dir(model: TinyModel, dest: str) -> str:
    """A private copy of the fixture's model_dir to resume or modify."""
    shutil.copytree(model.model_dir, dest)
    return dest


@pytest.fixture(scope="session")
def tiny_trained_model(tmp_path_factory) -> TinyModel:
    from tfod_seg.annotations.labelme import read_labelme
    from tfod_seg.demo.shapes import generate_shapes_dataset
    from tfod_seg.engines.garden.train import train
    from tfod_seg.records.convert import convert_dataset

    root = str(tmp_path_factory.mktemp("tiny_garden"))
    labelme_dir = os.path.join(root, "labelme")
    summary = generate_shapes_dataset(labelme_dir, num_images=TINY_NUM_IMAGES, image_size=TINY_IMAGE_SIZE, seed=11)
    records_dir = os.path.join(root, "records")
    report = convert_dataset(read_labelme(labelme_dir), records_dir, label_map=summary["label_map"],
                             val_fraction=0.25, seed=0, workers=1)
    train_glob = os.path.join(records_dir, "train-*.tfrecord")
    val_glob = os.path.join(records_dir, "val-*.tfrecord")
    config = write_tiny_config(os.path.join(root, "tiny.yaml"), train_glob, val_glob, report["num_classes"])
    model_dir = os.path.join(root, "model")
    events: List[Any] = []
    from tensorflow.python.framework import config as tf_config  # no public switch back off

    was_deterministic = tf_config.is_op_determinism_enabled()
    _deterministic_training()
    try:
        result = train(config, model_dir, strategy="cpu", on_progress=events.append)
    finally:  # the rest of the session keeps TensorFlow's defaults (faster non-deterministic kernels)
        if not was_deterministic:
            tf_config.disable_op_determinism()
    return TinyModel(root=root, labelme_dir=labelme_dir, records_dir=records_dir, train_records=train_glob,
                     val_records=val_glob, label_map=report["label_map"], config=config, model_dir=model_dir,
                     num_classes=report["num_classes"], image_size=TINY_IMAGE_SIZE, steps=TINY_STEPS,
                     events=events, result=result)


# ---- export fixture ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TinyExport:
    """The session's tiny model exported once with the TFOD2 signature (read-only).

    Exported from a copy of the model's config whose detection score threshold is 0, so the
    barely trained model still returns its low-score detections (weights and architecture are
    the model's own; only post-processing differs). Scores that underflow to 0 still give none.
    """

    output_directory: str  # saved_model/, checkpoint/, pipeline.yaml, label_map.pbtxt
    saved_model: str  # output_directory/saved_model
    config: str  # the config exported with (tiny config, score threshold 0)
    input_type: str
    model: TinyModel


@pytest.fixture(scope="session")
def tiny_export(tiny_trained_model, tmp_path_factory) -> TinyExport:
    from tfod_seg.config.garden import dump_experiment, load_experiment
    from tfod_seg.engines.garden.export import export

    root = str(tmp_path_factory.mktemp("tiny_export"))
    name, cfg = load_experiment(tiny_trained_model.config,
                                {"task.model.detection_generator.pre_nms_score_threshold": 0.0})
    config = dump_experiment(cfg, os.path.join(root, "export.yaml"), name,
                             header=["tiny test model, score threshold 0 (tests/garden_fixtures.py: tiny_export)"])
    out = os.path.join(root, "export")
    saved_model = export(config, tiny_trained_model.model_dir, out, input_type="image_tensor").saved_model
    return TinyExport(output_directory=out, saved_model=saved_model, config=config, input_type="image_tensor",
                      model=tiny_trained_model)
