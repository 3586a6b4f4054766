"""Deployment exports of the session's tiny Mask R-CNN: a fixed-batch SavedModel, TFLite
(built-in ops) and ONNX (tf2onnx + onnxruntime), each against the batch-1 SavedModel
(`tiny_export`) on the same validation images.

Thresholds: the converted graphs are the same float32 network, so their raw outputs differ
only by operation order (measured here: identical boxes, classes and masks on every val
image). The assertions leave room for rounding flipping a near-tie: at most one detection more
or less, boxes within 0.01 of the image side, scores within 0.001, and pasted masks of at
least 20 pixels at IoU >= 0.9 with their SavedModel twins (the mask threshold 0.5 of a
barely trained model sits close to many probabilities, so a few edge pixels may flip).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tfod_seg.cli import main
from tfod_seg.errors import ConfigError, UserError


def _val_images(model, n=6):
    from tfod_seg.records.reader import iter_records

    images = []
    for rec in iter_records(model.val_records):
        images.append(rec.image())
        if len(images) == n:
            break
    return images


@pytest.fixture(scope="module")
def edge_exports(tiny_export, tmp_path_factory):
    """The tiny model exported as TFLite (batch 1), ONNX (dynamic batch) and a batch-2 SavedModel."""
    root = tmp_path_factory.mktemp("edge")
    base = ["export", "--pipeline_config_path", tiny_export.config,
            "--trained_checkpoint_dir", tiny_export.model.model_dir]
    out = {}
    for name, extra in (("tflite", ["--format", "tflite"]), ("onnx", ["--format", "onnx", "--batch_size", "dynamic"]),
                        ("b2", ["--batch_size", "2"])):
        assert main(base + ["--output_directory", str(root / name)] + extra) == 0, name
        out[name] = str(root / name)
    return out


def _match(reference, other):
    """Greedy match by box IoU; returns pairs (i, j)."""
    def iou(a, b):
        y0, x0 = np.maximum(a[:2], b[:2])
        y1, x1 = np.minimum(a[2:], b[2:])
        inter = max(y1 - y0, 0) * max(x1 - x0, 0)
        area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
        return inter / max(area(a) + area(b) - inter, 1e-9)

    pairs, used = [], set()
    for i, box in enumerate(reference.boxes):
        cands = [(iou(box, other.boxes[j]), j) for j in range(len(other)) if j not in used
                 and other.classes[j] == reference.classes[i]]
        if cands and max(cands)[0] > 0.9:
            j = max(cands)[1]
            used.add(j)
            pairs.append((i, j))
    return pairs


def _assert_consistent(ref, det):
    assert abs(len(ref) - len(det)) <= 1
    pairs = _match(ref, det)
    assert len(pairs) >= min(len(ref), len(det)) - 1
    for i, j in pairs:
        assert np.abs(ref.boxes[i] - det.boxes[j]).max() < 0.01
        assert abs(float(ref.scores[i]) - float(det.scores[j])) < 1e-3
        a, b = ref.masks[i].astype(bool), det.masks[j].astype(bool)
        if a.sum() >= 20:
            assert np.logical_and(a, b).sum() / np.logical_or(a, b).sum() >= 0.9


@pytest.mark.parametrize("name,model_file", [("tflite", "model.tflite"), ("onnx", "model.onnx"), ("b2", None)])
def test_formats_match_the_saved_model(edge_exports, tiny_export, name, model_file):
    from tfod_seg.inference import load_predictor

    reference = load_predictor(tiny_export.output_directory)
    model = load_predictor(os.path.join(edge_exports[name], model_file) if model_file else edge_exports[name])
    images = _val_images(tiny_export.model)
    total = 0
    for image in images:
        ref = reference.predict(image)
        _assert_consistent(ref, model.predict(image))
        total += len(ref)
    assert total > 0, "the tiny model detected nothing on the val images: nothing was compared"
    # batches: same detections as one at a time
    batch = model.predict_batch(images[:3])
    for image, det in zip(images[:3], batch):
        _assert_consistent(model.predict(image), det)


def test_spec_and_signature(edge_exports, tiny_export):
    spec = json.loads(open(os.path.join(edge_exports["tflite"], "model.json")).read())
    assert spec["format"] == "tflite" and spec["batch_size"] == 1
    assert spec["input_size"] == [tiny_export.model.image_size] * 2 and spec["mask_size"] > 0
    onnx_spec = json.loads(open(os.path.join(edge_exports["onnx"], "model.json")).read())
    assert onnx_spec["batch_size"] is None and "tf2onnx" in onnx_spec["versions"]
    assert os.path.isfile(os.path.join(edge_exports["tflite"], "label_map.pbtxt"))
    import tensorflow as tf

    sig = tf.saved_model.load(os.path.join(edge_exports["b2"], "saved_model")).signatures["serving_default"]
    (spec_in,) = sig.structured_input_signature[1].values()
    assert spec_in.shape.as_list()[0] == 2 and sorted(sig.structured_outputs) == sorted(
        tf.saved_model.load(tiny_export.saved_model).signatures["serving_default"].structured_outputs)


def test_infer_and_score_take_edge_models(edge_exports, tiny_export, tmp_path, capsys):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for k, image in enumerate(_val_images(tiny_export.model, 4)):
        Image.fromarray(image).save(images / f"val{k}.png")
    runs = {"saved_model": tiny_export.output_directory, "onnx": os.path.join(edge_exports["onnx"], "model.onnx"),
            "b2": edge_exports["b2"]}
    summaries = {}
    for name, model in runs.items():
        assert main(["infer", "--model", model, "--images", str(images), "--out", str(tmp_path / name),
                     "--min-score", "0.05", "--no-progress", "--batch-size", "2"]) == 0
        summaries[name] = json.loads((tmp_path / name / "summary.json").read_text())
        assert sorted(os.listdir(tmp_path / name / "labelme")) == [f"val{k}.json" for k in range(4)]
    assert summaries["b2"]["batch_size"] == 2 and summaries["onnx"]["batch_size"] == 2
    counts = {n: s["detections"] for n, s in summaries.items()}
    assert max(counts.values()) - min(counts.values()) <= 4, counts  # at most one near-tie per image
    metrics = {}
    for name, model in (("saved_model", tiny_export.output_directory),
                        ("tflite", os.path.join(edge_exports["tflite"], "model.tflite"))):
        assert main(["score", "--model", model, "--records", tiny_export.model.val_records,
                     "--out", str(tmp_path / f"score_{name}"), "--no-progress"]) == 0
        metrics[name] = json.loads((tmp_path / f"score_{name}" / "metrics.json").read_text())
    for t in ("bbox", "segm"):
        assert abs(metrics["tflite"][t]["AP"] - metrics["saved_model"][t]["AP"]) <= 0.02
    capsys.readouterr()


def test_bad_export_requests(tiny_export, tmp_path, capsys):
    from tfod_seg.engines.garden.edge import export_edge

    with pytest.raises(ConfigError, match="--quantize float16: not available for --format onnx"):
        export_edge(tiny_export.config, tiny_export.model.model_dir, tmp_path / "x", fmt="onnx", quantize="float16")
    with pytest.raises(ConfigError, match="TFLite models have a fixed batch"):
        export_edge(tiny_export.config, tiny_export.model.model_dir, tmp_path / "x", fmt="tflite", batch_size=None)
    from tfod_seg.config.garden import dump_experiment, load_experiment

    name, cfg = load_experiment(tiny_export.config, {"task.model.include_mask": False})
    no_masks = dump_experiment(cfg, str(tmp_path / "nomask.yaml"), name)
    with pytest.raises(ConfigError, match="include_mask is false"):
        export_edge(no_masks, tiny_export.model.model_dir, tmp_path / "x", fmt="tflite")
    base = ["export", "--pipeline_config_path", tiny_export.config, "--trained_checkpoint_dir",
            tiny_export.model.model_dir, "--output_directory", str(tmp_path / "y")]
    for extra, message in ((["--format", "coreml"], "invalid choice: 'coreml'"),
                           (["--batch_size", "0"], "expected an integer >= 1 or 'dynamic'")):
        with pytest.raises(SystemExit) as e:
            main(base + extra)
        assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_edge_model_without_spec_or_corrupt(edge_exports, tmp_path):
    from tfod_seg.inference import load_predictor

    lone = tmp_path / "lone.tflite"
    lone.write_bytes(open(os.path.join(edge_exports["tflite"], "model.tflite"), "rb").read())
    with pytest.raises(UserError, match="lone.tflite: no lone.json beside it"):
        load_predictor(str(lone))
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    (tmp_path / "bad.json").write_text(open(os.path.join(edge_exports["onnx"], "model.json")).read())
    with pytest.raises(UserError, match="bad.onnx: cannot load the model"):
        load_predictor(str(tmp_path / "bad.onnx"))
