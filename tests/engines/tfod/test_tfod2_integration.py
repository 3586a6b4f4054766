"""The real TFOD2 (TF 2.15 + object_detection) against this project's records, configs and
inference. Marked ``tfod``: run by `make test-tfod` with the `.venv-tfod` interpreter, skipped
in the normal suite (whose interpreter has no `object_detection`).

Budget: records + config checks take seconds; the module-scoped training (128 px, batch 1,
4 steps, a checkpoint every 2) + export take ~3-6 min on 2 shared cores, mostly graph tracing.
"""

import importlib.util
import io
import os

import numpy as np
import pytest

pytestmark = [
    pytest.mark.tfod,
    pytest.mark.skipif(importlib.util.find_spec("object_detection") is None,
                       reason="needs the TFOD2 environment: `make test-tfod` (builds .venv-tfod)"),
]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TEMPLATE = os.path.join(REPO, "pipelines", "tfod_mask_rcnn_resnet50_fpn_640.config")
SIZE = 128


@pytest.fixture(autouse=True, scope="module")
def compat_aliases():
    """The TFOD2 compatibility fixes (tf_slim's decoder calls control_flow_ops.case); `.venv-tfod`'s
    start-up hook has installed them already, this covers an interpreter without it."""
    from tfod_seg.engines.tfod.launcher import install_compat

    install_compat()


def make_samples(n, size=SIZE, seed=0):
    """Squares and discs (two classes) with their exact masks, as `Sample`s with PNG bytes."""
    from PIL import Image

    from tfod_seg.data.types import Bitmap, Instance, Sample

    rng = np.random.default_rng(seed)
    samples, masks = [], {}
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        img = np.full((size, size, 3), 40, np.uint8)
        instances, inst_masks = [], []
        for k in range(1 + i % 2):
            w, h = (int(v) for v in rng.integers(size // 6, size // 2, 2))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            label = ("square", "disc")[k]
            if label == "square":
                m = ((xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)).astype(np.uint8)
            else:
                m = ((((xx - x0 - w / 2) / (w / 2)) ** 2 + ((yy - y0 - h / 2) / (h / 2)) ** 2) <= 1).astype(np.uint8)
            img[m > 0] = (200, 80, 80) if label == "square" else (80, 200, 80)
            ys, xs = np.nonzero(m)
            instances.append(Instance(label, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), Bitmap(m)))
            inst_masks.append(m)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        samples.append(Sample(f"img{i}", f"img{i}.png", size, size, tuple(instances), image_bytes=buf.getvalue()))
        masks[f"img{i}.png"] = np.stack(inst_masks)
    return samples, masks


def _decode_all(pattern, mask_type):
    import tensorflow as tf
    from object_detection.core import standard_fields as fields
    from object_detection.data_decoders.tf_example_decoder import TfExampleDecoder
    from object_detection.protos import input_reader_pb2

    decoder = TfExampleDecoder(load_instance_masks=True, instance_mask_type=getattr(input_reader_pb2, mask_type))
    out = {}
    for path in tf.io.gfile.glob(pattern):
        for raw in tf.data.TFRecordDataset(path):
            d = decoder.decode(raw)
            out[d[fields.InputDataFields.filename].numpy().decode()] = (
                d[fields.InputDataFields.groundtruth_instance_masks].numpy(),
                d[fields.InputDataFields.groundtruth_classes].numpy(),
                d[fields.InputDataFields.image].numpy(),
            )
    return out


@pytest.mark.parametrize("mask_type, tfod_mask_type", [("png", "PNG_MASKS"), ("numerical", "NUMERICAL_MASKS")])
def test_records_decode_with_tfod2_decoder(tmp_path, mask_type, tfod_mask_type):
    from tfod_seg.records.convert import convert_dataset

    samples, masks = make_samples(4)
    report = convert_dataset(samples, tmp_path, mask_type=mask_type, workers=1)
    assert report["mask_type"] == mask_type
    decoded = _decode_all(str(tmp_path / "train-*.tfrecord"), tfod_mask_type)
    assert sorted(decoded) == sorted(masks)
    for name, (got, classes, image) in decoded.items():
        assert got.shape == masks[name].shape and image.shape == (SIZE, SIZE, 3)
        np.testing.assert_array_equal(got.astype(np.uint8), masks[name])
        assert list(classes) == [1, 2][: len(classes)]  # square = 1, disc = 2 (label map order)


def _generate(tmp_path, records, steps):
    from tfod_seg.config.generate import generate_config

    return generate_config(
        TEMPLATE, label_map=str(records / "label_map.pbtxt"), train=str(records / "train-*.tfrecord"),
        val=str(records / "val-*.tfrecord"), model_dir=str(tmp_path / "run"), out=str(tmp_path / "pipeline.config"),
        batch_size=1, steps=steps, image_size=SIZE, augment="none",
        overrides=["model.faster_rcnn.first_stage_max_proposals=32", "+model.faster_rcnn.second_stage_batch_size=16"])


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from tfod_seg.records.convert import convert_dataset

    out = tmp_path_factory.mktemp("records")
    samples, _ = make_samples(12)
    convert_dataset(samples, out, val_fraction=0.25, workers=1)
    return out


def test_generated_config_parses_with_pipeline_pb2(tmp_path, records):
    from object_detection.protos import input_reader_pb2
    from object_detection.utils import config_util

    path = _generate(tmp_path, records, steps=4)
    configs = config_util.get_configs_from_pipeline_file(path)
    frcnn = configs["model"].faster_rcnn
    assert frcnn.num_classes == 2 and frcnn.number_of_stages == 3
    assert frcnn.image_resizer.keep_aspect_ratio_resizer.max_dimension == SIZE
    assert frcnn.second_stage_box_predictor.mask_rcnn_box_predictor.predict_instance_masks
    for reader in [configs["train_input_config"], *configs["eval_input_configs"]]:
        assert reader.load_instance_masks and reader.mask_type == input_reader_pb2.PNG_MASKS
    assert configs["train_config"].num_steps == 4 and configs["train_config"].batch_size == 1
    assert not configs["train_config"].fine_tune_checkpoint  # no placeholder left


@pytest.fixture(scope="module")
def trained(tmp_path_factory, records):
    """A real TFOD2 Mask R-CNN trained for 4 steps, checkpointed at 0 (TFOD2's ckpt-1), 2 and 4."""
    from tfod_seg.engines.tfod import run

    work = tmp_path_factory.mktemp("tfod")
    config = _generate(work, records, steps=4)
    events = []
    run("train", {"pipeline_config_path": config, "model_dir": str(work / "run"), "checkpoint_every_n": 2},
        on_progress=events.append)
    return work, config, events


@pytest.mark.slow
def test_training_reports_progress_and_writes_checkpoints(trained):
    work, _, events = trained
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert all(e.total_steps == 4 and e.loss is not None and np.isfinite(e.loss) for e in events)
    assert "Loss/BoxClassifierLoss/mask_loss" in events[0].extra  # the mask head runs
    assert sorted(f for f in os.listdir(work / "run") if f.endswith(".index")) == [
        "ckpt-1.index", "ckpt-2.index", "ckpt-3.index"]
    assert "Step 4 per-step time" in (work / "run" / "train.log").read_text()


@pytest.mark.slow
def test_traps_on_the_real_model_dir(trained, tmp_path):
    import shutil

    from tfod_seg.engines.tfod import run
    from tfod_seg.errors import EngineError

    work, config, _ = trained
    with pytest.raises(EngineError, match=r"already at step 4 \(ckpt-3\)"):
        run("train", {"pipeline_config_path": config, "model_dir": str(work / "run"), "num_train_steps": 4})
    only_step0 = tmp_path / "step0"
    only_step0.mkdir()
    for f in os.listdir(work / "run"):
        if f.startswith("ckpt-1."):
            shutil.copy(work / "run" / f, only_step0 / f)
    with pytest.raises(EngineError, match="ckpt-1 is from step 0"):
        run("export", {"pipeline_config_path": config, "trained_checkpoint_dir": str(only_step0),
                       "output_directory": str(tmp_path / "never")})


@pytest.mark.slow
def test_export_then_inference(trained):
    from tfod_seg.engines.tfod import run
    from tfod_seg.inference.predict import Predictor

    work, config, _ = trained
    out = work / "exported"
    run("export", {"pipeline_config_path": config, "trained_checkpoint_dir": str(work / "run"),
                   "output_directory": str(out), "input_type": "image_tensor"})
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert (out / "label_map.pbtxt").is_file()  # beside the export, where inference looks

    predictor = Predictor(str(out))
    raw = predictor.predict_raw(np.zeros((1, SIZE, SIZE, 3), np.uint8))
    for key in ("detection_boxes", "detection_classes", "detection_scores", "detection_masks", "num_detections"):
        assert key in raw
    samples, _ = make_samples(1, seed=5)
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(samples[0].image_bytes)).convert("RGB"))
    det = predictor.predict(image)
    assert det.masks is not None and det.masks.shape == (len(det.boxes), SIZE, SIZE)
    assert set(np.unique(det.masks)) <= {0, 1}
    assert ((det.boxes >= 0) & (det.boxes <= 1)).all()
