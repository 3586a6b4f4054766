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
        "--model-dir", out.parent / "model",
        "--batch-size", "1", "--steps", str(direct.TFOD2_STEPS), "--image-size", str(SIZE), "--augment", "none",
        "--set", "model.faster_rcnn.first_stage_max_proposals=32",
        "--set", "+model.faster_rcnn.second_stage_batch_size=16")
    return out


@pytest.fixture(scope="module")
def trained(pipeline_config):
    """`python -m object_detection.model_main_tf2` (100 steps): the model_dir."""
    return direct.train(pipeline_config, pipeline_config.parent / "model")


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
    assert "Loss/BoxClassifierLoss/mask_loss" in scalars  # the mask head is part of the loss


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


# ---- dataset tools, label maps, configs, drawing ---------------------------------------------

DECODE_TFOD2_RECORDS = """
import glob, json, sys
import numpy as np
import tensorflow as tf
from pycocotools.coco import COCO
from object_detection.core import standard_fields as fields
from object_detection.data_decoders.tf_example_decoder import TfExampleDecoder
from object_detection.protos import input_reader_pb2

pattern, annotations, label_map = sys.argv[1:4]
coco = COCO(annotations)
image_ids = {im["file_name"]: im["id"] for im in coco.dataset["images"]}
decoder = TfExampleDecoder(label_map_proto_file=label_map, load_instance_masks=True,
                           instance_mask_type=input_reader_pb2.PNG_MASKS)
result = {"images": {}}
for path in sorted(glob.glob(pattern)):
    for raw in tf.data.TFRecordDataset(path):
        d = decoder.decode(raw)
        name = d[fields.InputDataFields.filename].numpy().decode()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_ids[name]]))
        masks = d[fields.InputDataFields.groundtruth_instance_masks].numpy().astype(np.uint8)
        want = np.stack([coco.annToMask(a) for a in anns])
        result["images"][name] = {
            "classes": d[fields.InputDataFields.groundtruth_classes].numpy().tolist(),
            "want_classes": [a["category_id"] for a in anns],
            "masks_equal": masks.shape == want.shape and bool((masks == want).all()),
            "image_shape": list(d[fields.InputDataFields.image].shape)}
"""


def test_create_coco_tf_record_with_masks(coco, tmp_path):
    """As TFOD2's docs call it (train, val and test-dev sets); TFOD2's decoder, given the label map
    (the records carry class names only), reads classes and masks back as pycocotools has them."""
    images = coco["images"]
    direct.run(["-m", "object_detection.dataset_tools.create_coco_tf_record", "--logtostderr",
                f"--train_image_dir={images}", f"--val_image_dir={images}", f"--test_image_dir={images}",
                f"--train_annotations_file={coco['train']}", f"--val_annotations_file={coco['val']}",
                f"--testdev_annotations_file={coco['val']}", f"--output_dir={tmp_path}", "--include_masks"])
    assert len(list(tmp_path.glob("coco_train.record-*-of-00100"))) == 100
    label_map = tmp_path / "label_map.pbtxt"
    label_map.write_text("item { id: 1 name: 'square' }\nitem { id: 2 name: 'disc' }\n")
    out = direct.run_json(DECODE_TFOD2_RECORDS + NO_TFOD_SEG, tmp_path / "coco_train.record-*", coco["train"],
                          label_map)
    want_names = {im["file_name"] for im in json.loads(coco["train"].read_text())["images"]}
    assert set(out["images"]) == want_names and out["tfod_seg_imported"] == []
    for name, got in out["images"].items():
        assert got["masks_equal"], name
        assert got["classes"] == got["want_classes"] and got["image_shape"] == [SIZE, SIZE, 3]


LABEL_MAP_UTIL = """
import json, sys
from object_detection.utils import label_map_util
path = sys.argv[1]
label_map = label_map_util.load_labelmap(path)
result = {"dict": label_map_util.get_label_map_dict(path),
          "index": label_map_util.create_category_index_from_labelmap(path, use_display_name=True),
          "max": label_map_util.get_max_label_map_index(label_map),
          "categories": label_map_util.convert_label_map_to_categories(label_map, max_num_classes=90)}
"""


def test_label_map_util_reads_the_converted_label_map(records):
    out = direct.run_json(LABEL_MAP_UTIL + NO_TFOD_SEG, records / "label_map.pbtxt")
    assert out["dict"] == {"square": 1, "disc": 2} and out["max"] == 2
    assert out["index"] == {"1": {"id": 1, "name": "square"}, "2": {"id": 2, "name": "disc"}}
    assert [c["name"] for c in out["categories"]] == ["square", "disc"]


CONFIG_UTIL = """
import json, os, sys
from object_detection.utils import config_util
path, new_eval_path, out_dir = sys.argv[1:4]
configs = config_util.get_configs_from_pipeline_file(path)
configs = config_util.merge_external_params_with_configs(configs, kwargs_dict={
    "train_steps": 7, "batch_size": 2, "eval_input_path": new_eval_path,
    "model.faster_rcnn.first_stage_max_proposals": 16})
config_util.save_pipeline_config(config_util.create_pipeline_proto_from_configs(configs), out_dir)
again = config_util.get_configs_from_pipeline_file(os.path.join(out_dir, "pipeline.config"))
frcnn, reader = again["model"].faster_rcnn, again["eval_input_configs"][0]
result = {"num_classes": frcnn.num_classes, "stages": frcnn.number_of_stages,
          "proposals": frcnn.first_stage_max_proposals, "steps": again["train_config"].num_steps,
          "batch_size": again["train_config"].batch_size,
          "eval_paths": list(reader.tf_record_input_reader.input_path),
          "masks": [r.load_instance_masks for r in (again["train_input_config"], reader)],
          "predict_masks": frcnn.second_stage_box_predictor.mask_rcnn_box_predictor.predict_instance_masks}
"""


def test_config_util_reads_merges_and_saves_the_generated_config(pipeline_config, tmp_path):
    out = direct.run_json(CONFIG_UTIL + NO_TFOD_SEG, pipeline_config, "other/val-*.tfrecord", tmp_path)
    assert out == {"num_classes": 2, "stages": 3, "proposals": 16, "steps": 7, "batch_size": 2,
                   "eval_paths": ["other/val-*.tfrecord"], "masks": [True, True], "predict_masks": True,
                   "tfod_seg_imported": []}


VISUALIZATION_UTILS = """
import json, sys
import numpy as np
from object_detection.utils import visualization_utils as vis_util
category_index = {1: {"id": 1, "name": "square"}, 2: {"id": 2, "name": "disc"}}
image = np.full((96, 96, 3), 128, np.uint8)
boxes = np.array([[0.3, 0.1, 0.7, 0.45], [0.5, 0.55, 0.9, 0.95]], np.float32)
masks = np.zeros((2, 96, 96), np.uint8)
masks[0, 35:60, 15:38] = 1
masks[1, 55:80, 58:85] = 1
drawn = vis_util.visualize_boxes_and_labels_on_image_array(
    image.copy(), boxes, np.array([1, 2]), np.array([0.9, 0.8]), category_index, instance_masks=masks,
    use_normalized_coordinates=True, line_thickness=2)
no_labels = vis_util.visualize_boxes_and_labels_on_image_array(
    image.copy(), boxes, np.array([1, 2]), np.array([0.9, 0.8]), category_index, instance_masks=masks,
    use_normalized_coordinates=True, line_thickness=2, skip_labels=True, skip_scores=True)
below = vis_util.visualize_boxes_and_labels_on_image_array(
    image.copy(), boxes, np.array([1, 2]), np.array([0.2, 0.1]), category_index, instance_masks=masks,
    use_normalized_coordinates=True)
changed = (drawn != image).any(-1)
result = {"mask_interiors": [bool(changed[45, 25]), bool(changed[68, 70])], "background": bool(changed[5, 90]),
          "labels_drawn": int(((drawn != no_labels).any(-1)).sum()), "below_threshold": int((below != image).sum())}
"""


def test_visualization_utils_draws_boxes_masks_and_labels():
    """Masks tinted, labels drawn (Pillow >= 10 needs the getsize fix), nothing below the threshold."""
    out = direct.run_json(VISUALIZATION_UTILS + NO_TFOD_SEG)
    assert out["mask_interiors"] == [True, True] and not out["background"]
    assert out["labels_drawn"] > 0 and out["below_threshold"] == 0


# ---- TFLite (SSD) -----------------------------------------------------------------------------

SSD_CONFIG = """model {
  ssd {
    num_classes: 2
    image_resizer { fixed_shape_resizer { height: 64 width: 64 } }
    feature_extractor {
      type: "ssd_mobilenet_v2_keras"
      depth_multiplier: 0.25
      min_depth: 8
      conv_hyperparams {
        regularizer { l2_regularizer { weight: 4e-05 } }
        initializer { truncated_normal_initializer { mean: 0.0 stddev: 0.03 } }
        activation: RELU_6
        batch_norm { decay: 0.97 center: true scale: true epsilon: 0.001 }
      }
      override_base_feature_extractor_hyperparams: true
    }
    box_coder { faster_rcnn_box_coder { y_scale: 10.0 x_scale: 10.0 height_scale: 5.0 width_scale: 5.0 } }
    matcher {
      argmax_matcher {
        matched_threshold: 0.5 unmatched_threshold: 0.5 ignore_thresholds: false
        negatives_lower_than_unmatched: true force_match_for_each_row: true use_matmul_gather: true
      }
    }
    similarity_calculator { iou_similarity { } }
    box_predictor {
      convolutional_box_predictor {
        conv_hyperparams {
          regularizer { l2_regularizer { weight: 4e-05 } }
          initializer { truncated_normal_initializer { mean: 0.0 stddev: 0.03 } }
          activation: RELU_6
          batch_norm { decay: 0.97 center: true scale: true epsilon: 0.001 }
        }
        min_depth: 0 max_depth: 0 num_layers_before_predictor: 0 use_dropout: false
        kernel_size: 1 box_code_size: 4 apply_sigmoid_to_scores: false class_prediction_bias_init: -4.6
      }
    }
    anchor_generator {
      ssd_anchor_generator {
        num_layers: 6 min_scale: 0.2 max_scale: 0.95
        aspect_ratios: 1.0 aspect_ratios: 2.0 aspect_ratios: 0.5
      }
    }
    post_processing {
      batch_non_max_suppression {
        score_threshold: 1e-08 iou_threshold: 0.6 max_detections_per_class: 10 max_total_detections: 10
      }
      score_converter: SIGMOID
    }
    normalize_loss_by_num_matches: true
    loss {
      localization_loss { weighted_smooth_l1 { } }
      classification_loss { weighted_sigmoid_focal { gamma: 2.0 alpha: 0.75 } }
      classification_weight: 1.0
      localization_weight: 1.0
    }
    encode_background_as_zeros: true
    normalize_loc_loss_by_codesize: true
    inplace_batchnorm_update: true
    freeze_batchnorm: false
  }
}
train_config {
  batch_size: 2
  num_steps: 100
  optimizer {
    momentum_optimizer {
      learning_rate { constant_learning_rate { learning_rate: 0.01 } }
      momentum_optimizer_value: 0.9
    }
    use_moving_average: false
  }
}
"""

SSD_CHECKPOINT = """
import sys
import tensorflow as tf
from object_detection.builders import model_builder
from object_detection.utils import config_util
configs = config_util.get_configs_from_pipeline_file(sys.argv[1])
model = model_builder.build(configs["model"], is_training=False)
image, shapes = model.preprocess(tf.zeros([1, 64, 64, 3]))
model.postprocess(model.predict(image, shapes), shapes)
tf.train.Checkpoint(model=model).save(sys.argv[2] + "/ckpt")
"""

RUN_TFLITE = """
import json, sys
import numpy as np
import tensorflow as tf
interpreter = tf.lite.Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
(inp,) = interpreter.get_input_details()
interpreter.set_tensor(inp["index"], np.random.default_rng(0).uniform(-1, 1, inp["shape"]).astype(np.float32))
interpreter.invoke()
result = {"input": inp["shape"].tolist(),
          "outputs": sorted(interpreter.get_tensor(d["index"]).shape for d in interpreter.get_output_details())}
"""


@pytest.mark.slow
def test_tflite_export_of_an_ssd(tmp_path):
    """export_tflite_graph_tf2 then tflite_convert, as TFOD2's mobile guide does (SSD only: TFOD2 has
    no TFLite path for Mask R-CNN). The checkpoint is an untrained SSD saved with tf.train.Checkpoint."""
    config = tmp_path / "pipeline.config"
    config.write_text(SSD_CONFIG)
    direct.run(["-c", SSD_CHECKPOINT, config, tmp_path / "ckpt"])
    direct.run(["-m", "object_detection.export_tflite_graph_tf2", f"--pipeline_config_path={config}",
                f"--trained_checkpoint_dir={tmp_path / 'ckpt'}", f"--output_directory={tmp_path / 'tflite'}"])
    direct.run_tool("tflite_convert", [f"--saved_model_dir={tmp_path / 'tflite' / 'saved_model'}",
                                       f"--output_file={tmp_path / 'model.tflite'}"])
    out = direct.run_json(RUN_TFLITE + NO_TFOD_SEG, tmp_path / "model.tflite")
    assert out["input"] == [1, 64, 64, 3]
    assert out["outputs"] == [[1], [1, 10], [1, 10], [1, 10, 4]]  # count, classes, scores, boxes


# ---- notebook code on an export from each engine ----------------------------------------------

# TFOD2's TF2 Mask R-CNN inference code (the TF Hub / model zoo colab), unchanged but for the paths
# and the drawing threshold. (The box-only tutorial's `value[0, :num_detections]` over every output
# fails on TFOD2's own 3-stage Mask R-CNN exports, tensorflow/models#9255: they also return 1-D
# side outputs such as `image_shape`.)
NOTEBOOK = """import json
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

from object_detection.utils import label_map_util
from object_detection.utils import ops as utils_ops
from object_detection.utils import visualization_utils as viz_utils

PATH_TO_SAVED_MODEL, PATH_TO_LABELS, IMAGE_PATH = sys.argv[1:4]

category_index = label_map_util.create_category_index_from_labelmap(PATH_TO_LABELS, use_display_name=True)
detect_fn = tf.saved_model.load(PATH_TO_SAVED_MODEL)

image_np = np.array(Image.open(IMAGE_PATH))[np.newaxis, ...]  # [1, H, W, 3] uint8
input_tensor = tf.convert_to_tensor(image_np)
results = detect_fn(input_tensor)
result = {key: value.numpy() for key, value in results.items()}
# (not the tutorial's .30: a threshold the tiny test model's best detection passes, so that
# something is drawn; visualization_utils draws scores strictly above it)
min_score_thresh = min(.30, float(result['detection_scores'][0].max(initial=0)) / 2)

label_id_offset = 0
image_np_with_mask = image_np.copy()

if 'detection_masks' in result:
  # we need to convert np.arrays to tensors
  detection_masks = tf.convert_to_tensor(result['detection_masks'][0])
  detection_boxes = tf.convert_to_tensor(result['detection_boxes'][0])

  # Reframe the bbox mask to the image size.
  detection_masks_reframed = utils_ops.reframe_box_masks_to_image_masks(
            detection_masks, detection_boxes,
              image_np.shape[1], image_np.shape[2])
  detection_masks_reframed = tf.cast(detection_masks_reframed > 0.5,
                                      tf.uint8)
  result['detection_masks_reframed'] = detection_masks_reframed.numpy()

viz_utils.visualize_boxes_and_labels_on_image_array(
      image_np_with_mask[0],
      result['detection_boxes'][0],
      (result['detection_classes'][0] + label_id_offset).astype(int),
      result['detection_scores'][0],
      category_index,
      use_normalized_coordinates=True,
      max_boxes_to_draw=200,
      min_score_thresh=min_score_thresh,
      agnostic_mode=False,
      instance_masks=result.get('detection_masks_reframed', None),
      line_thickness=8)

n = int(result['num_detections'][0])
masks = result['detection_masks_reframed'][:n]
exported = results.get('detection_masks_reframed')
out = {
    "num_detections": n,
    "outputs": sorted(results),
    "top_score": float(result['detection_scores'][0].max(initial=0)),
    "boxes_in_unit_square": bool(((result['detection_boxes'][0][:n] >= 0) & (result['detection_boxes'][0][:n] <= 1)).all()),
    "classes": sorted(set(result['detection_classes'][0][:n].astype(int).tolist())),
    "label_map_ids": sorted(category_index),
    "masks_shape": list(masks.shape),
    "mask_values": sorted(np.unique(masks).tolist()),
    "drawn_pixels": int((image_np_with_mask != image_np).any(-1).sum()),
    "reframed_agreement": None if exported is None else float(np.mean((exported.numpy()[0][:n] > 0) == (masks > 0))),
}
result = out
"""


@pytest.fixture(scope="module")
def garden_exported(tmp_path_factory):
    if direct.main_python() is None:
        pytest.skip("needs tfod-seg's own environment (.venv, `make install`) for the Model Garden export")
    return direct.garden_export(tmp_path_factory.mktemp("garden"))


def _notebook_inputs(engine, request):
    if engine == "tfod":
        export, coco = request.getfixturevalue("exported"), request.getfixturevalue("coco")
        return export / "saved_model", request.getfixturevalue("records") / "label_map.pbtxt", \
            sorted(coco["images"].glob("*.jpg"))[0]
    export = request.getfixturevalue("garden_exported")
    return export / "saved_model", export / "label_map.pbtxt", sorted(export.parent.glob("labelme/*.jpg"))[0]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["tfod", "garden"])
def test_inference_notebook_code_on_an_export(engine, request):
    saved_model, label_map, image = _notebook_inputs(engine, request)
    out = direct.run_json(NOTEBOOK + NO_TFOD_SEG, saved_model, label_map, image)
    n = out["num_detections"]
    assert n > 0 and out["top_score"] > 0 and out["tfod_seg_imported"] == []
    assert out["boxes_in_unit_square"] and set(out["classes"]) <= set(out["label_map_ids"])
    size = 128 if engine == "tfod" else 64
    assert out["masks_shape"] == [n, size, size] and set(out["mask_values"]) <= {0, 1}
    assert out["drawn_pixels"] > 0  # boxes, labels and masks drawn above the threshold
    if engine == "garden":  # its export also has TFOD2-style full-image masks: the notebook's agree
        assert out["reframed_agreement"] >= 0.95


# ---- reading `tfod-seg convert` records the way users write it ---------------------------------

READ_RECORDS = """
import glob, json, sys
import numpy as np
import tensorflow as tf

feature_description = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/filename": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/mask": tf.io.VarLenFeature(tf.string),
}

result = {"images": {}}
for raw in tf.data.TFRecordDataset(sorted(glob.glob(sys.argv[1]))):
    ex = tf.io.parse_single_example(raw, feature_description)
    image = tf.io.decode_image(ex["image/encoded"], channels=3)
    pngs = tf.sparse.to_dense(ex["image/object/mask"], default_value=b"")
    masks = [tf.io.decode_png(png, channels=1)[..., 0].numpy() for png in pngs]
    dense = lambda key: tf.sparse.to_dense(ex[key]).numpy().tolist()
    result["images"][ex["image/filename"].numpy().decode()] = {
        "size": [int(ex["image/height"]), int(ex["image/width"])], "image": list(image.shape),
        "boxes": [list(b) for b in zip(*(dense(f"image/object/bbox/{k}") for k in ("ymin", "xmin", "ymax", "xmax")))],
        "labels": dense("image/object/class/label"), "texts": [t.decode() for t in dense("image/object/class/text")],
        "masks": [np.argwhere(m).tolist() for m in masks], "mask_shapes": [list(m.shape) for m in masks]}
"""


def test_user_code_reads_converted_records(records, coco):
    """tf.io.parse_single_example with the TFOD2 keys, PNG masks via tf.io.decode_png: the COCO
    polygons come back (masks equal to pycocotools' rasterisation, boxes within a pixel)."""
    from pycocotools.coco import COCO

    result = direct.run_json(READ_RECORDS + NO_TFOD_SEG, records / "*-*-of-*.tfrecord")
    out, truth = result["images"], COCO(str(coco["all"]))
    assert result["tfod_seg_imported"] == []
    assert sorted(out) == sorted(im["file_name"] for im in truth.dataset["images"])
    for image in truth.dataset["images"]:
        got, anns = out[image["file_name"]], truth.loadAnns(truth.getAnnIds(imgIds=[image["id"]]))
        assert got["size"] == [SIZE, SIZE] and got["image"] == [SIZE, SIZE, 3]
        assert got["labels"] == [a["category_id"] for a in anns]
        assert got["texts"] == [("square", "disc")[a["category_id"] - 1] for a in anns]
        for box, points, shape, ann in zip(got["boxes"], got["masks"], got["mask_shapes"], anns):
            x, y, w, h = ann["bbox"]
            np.testing.assert_allclose(np.array(box) * SIZE, [y, x, y + h, x + w], atol=1.01)
            assert shape == [SIZE, SIZE]
            mask = np.zeros((SIZE, SIZE), np.uint8)
            mask[tuple(np.array(points).T)] = 1
            np.testing.assert_array_equal(mask, truth.annToMask(ann))  # rasterised with pycocotools too
