"""TFOD2 used directly, as its documentation and notebooks use it, in the `make tfod-env` environment.

Every TFOD2 entry point runs in a subprocess of the environment's interpreter with nothing from
tfod-seg in between (the scripts also check that no ``tfod_seg`` module got imported): what makes
them work is the environment's start-up hook (``tfod_seg_tfod2_compat.pth`` → compat.py).
tfod-seg only prepares the inputs a user would have (records, label map, pipeline.config).

One TFOD2 Mask R-CNN (128 px, batch 1, TFOD2's minimum of 100 steps) is trained once per module
and shared by the evaluation, export and notebook tests; the Model Garden export comes from
tfod-seg's own environment (``direct.main_python()``), 2 steps at 64 px.
Marked ``tfod``: `make test-tfod`.
"""

import importlib.util
import json

import numpy as np
import pytest

from tests.engines.tfod import direct

pytestmark = [
    pytest.mark.tfod,
    pytest.mark.skipif(importlib.util.find_spec("object_detection") is None,
                       reason="needs the TFOD2 environment: `make test-tfod` (builds .venv-tfod)"),
]

SIZE = 128
NO_TFOD_SEG = "\nresult['tfod_seg_imported'] = sorted(m for m in sys.modules if m.split('.')[0] == 'tfod_seg')\n" \
              "print(json.dumps(result))\n"


def cli(*argv):
    from tfod_seg.cli import main

    assert main([str(a) for a in argv]) == 0


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return direct.write_coco(tmp_path_factory.mktemp("coco"), num_images=12, size=SIZE)


@pytest.fixture(scope="module")
def records(coco, tmp_path_factory):
    """`tfod-seg convert` of the COCO data (PNG masks), train + val."""
    out = tmp_path_factory.mktemp("records")
    cli("convert", "--format", "coco", coco["all"], "--image-dir", coco["images"], "--out", out,
        "--val-fraction", "0.34", "--workers", "1", "--quiet", "--strict")
    return out


@pytest.fixture(scope="module")
def pipeline_config(records, tmp_path_factory):
    """`tfod-seg config`: the ResNet-50 FPN Mask R-CNN template at 128 px, batch 1, 100 steps."""
    out = tmp_path_factory.mktemp("config") / "pipeline.config"
    cli("config", "-t", "tfod_mask_rcnn_resnet50_fpn_640", "--label-map", records / "label_map.pbtxt",
        "--train", records / "train-*.tfrecord", "--val", records / "val-*.tfrecord", "--out", out,
        "--batch-size", "1", "--steps", str(direct.TFOD2_STEPS), "--image-size", str(SIZE), "--augment", "none",
        "--set", "model.faster_rcnn.first_stage_max_proposals=32",
        "--set", "+model.faster_rcnn.second_stage_batch_size=16")
    return out


@pytest.fixture(scope="module")
def trained(pipeline_config, tmp_path_factory):
    """`python -m object_detection.model_main_tf2` (100 steps): the model_dir."""
    return direct.train(pipeline_config, tmp_path_factory.mktemp("tfod2") / "model")


@pytest.fixture(scope="module")
def exported(pipeline_config, trained):
    """`python -m object_detection.exporter_main_v2 --input_type=image_tensor`: the output dir."""
    return direct.export(pipeline_config, trained, trained.parent / "exported")


# ---- the start-up hook ----------------------------------------------------------------------

HOOK_CHECK = """
import json, sys
result = {"at_start": sorted(m for m in ("tensorflow", "numpy", "PIL") if m in sys.modules),
          "hook": "tfod_seg_tfod2_compat" in sys.modules}
import numpy as np
from PIL import ImageFont
from tensorflow.python.ops import control_flow_ops
import object_detection.metrics.coco_tools as coco_tools
result["fixed"] = {
    "control_flow_ops.case": hasattr(control_flow_ops, "case"),
    "np.bool": hasattr(np, "bool"),
    "FreeTypeFont.getsize": hasattr(ImageFont.FreeTypeFont, "getsize"),
    "category_stats": getattr(coco_tools.COCOEvalWrapper.summarize, "tfod_seg_compat", False),
}
"""


def test_start_up_hook_applies_the_fixes_lazily_and_can_be_turned_off():
    on = direct.run_json(HOOK_CHECK + NO_TFOD_SEG)
    assert on["hook"] and on["at_start"] == []  # nothing heavy imported at start-up
    assert all(on["fixed"].values()), on["fixed"]
    assert on["tfod_seg_imported"] == []
    off = direct.run_json(HOOK_CHECK + NO_TFOD_SEG, env={"TFOD_SEG_TFOD2_COMPAT": "0"})
    assert not off["hook"] and not any(off["fixed"].values()), off["fixed"]  # what the hook fixes


def test_per_category_stats_match_pycocotools_for_one_category():
    """compat's per-category COCO stats equal COCOeval.stats when there is one category."""
    code = """
import json, sys
import numpy as np
from pycocotools.coco import COCO
from object_detection.metrics import coco_tools
gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0},
                      {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 40, 20], "area": 800, "iscrowd": 0}],
      "categories": [{"id": 1, "name": "a"}]}
coco = COCO(); coco.dataset = gt; coco.createIndex()
dets = coco.loadRes([{"image_id": 1, "category_id": 1, "bbox": [12, 10, 30, 28], "score": 0.9},
                     {"image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.8},
                     {"image_id": 2, "category_id": 1, "bbox": [52, 50, 38, 20], "score": 0.3}])
wrapper = coco_tools.COCOEvalWrapper(coco, dets, agnostic_mode=False, iou_type="bbox")
summary, per_category = wrapper.ComputeMetrics(include_metrics_per_category=True, all_metrics_per_category=True)
result = {"stats": list(map(float, wrapper.stats)), "per_category": list(map(float, wrapper.category_stats[:, 0])),
          "by_category": per_category}
"""
    out = direct.run_json(code + NO_TFOD_SEG)
    np.testing.assert_allclose(out["per_category"], out["stats"])
    assert 0 < out["stats"][0] < 1
    assert out["by_category"]["PerformanceByCategory/mAP/a"] == pytest.approx(out["stats"][0])
    assert out["by_category"]["Precision/mAP@.50IOU ByCategory/a"] == pytest.approx(out["stats"][1])


# ---- model_main_tf2, exporter_main_v2 -------------------------------------------------------

@pytest.mark.slow
def test_model_main_tf2_trains(trained):
    assert sorted(p.name for p in trained.glob("ckpt-*.index")) == ["ckpt-1.index", "ckpt-2.index"]  # steps 0, 100
    scalars = direct.event_scalars(trained / "train")
    assert np.isfinite(scalars["Loss/total_loss"])
    assert "Loss/BoxClassifierLoss/mask_loss" in scalars  # the mask head trained


@pytest.mark.slow
def test_model_main_tf2_evaluates_with_checkpoint_dir(pipeline_config, trained, tmp_path):
    """Returns after evaluating the step-100 checkpoint (= the config's num_steps); metrics in events."""
    direct.evaluate(pipeline_config, trained, tmp_path)
    scalars = direct.event_scalars(tmp_path / "eval")
    for key in ("DetectionBoxes_Precision/mAP", "DetectionMasks_Precision/mAP",
                "DetectionMasks_PerformanceByCategory/mAP/square", "DetectionMasks_PerformanceByCategory/mAP/disc"):
        assert -1 <= scalars[key] <= 1, key


@pytest.mark.slow
def test_exporter_main_v2(exported):
    code = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
sig = model.signatures["serving_default"]
result = {"inputs": {k: v.dtype.name for k, v in sig.structured_input_signature[1].items()},
          "outputs": sorted(sig.structured_outputs)}
"""
    assert (exported / "pipeline.config").is_file() and (exported / "checkpoint" / "ckpt-0.index").is_file()
    out = direct.run_json(code + NO_TFOD_SEG, exported / "saved_model")
    assert out["inputs"] == {"input_tensor": "uint8"}
    assert {"detection_boxes", "detection_classes", "detection_scores", "detection_masks",
            "num_detections"} <= set(out["outputs"])
