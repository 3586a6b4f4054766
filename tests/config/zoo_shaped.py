"""Faster R-CNN pipeline.configs in the shape of the TF2 zoo's, written here (not copied): one
per feature-extractor family and resizer, with the text-format details real configs use
(``batch_size: 1;``, ``.013333``-style floats, trailing comments, TPU-only fields in the
TPU-8 ones, a ``,`` separator inside ``batch_norm``)."""

from __future__ import annotations

EXTRACTORS = [
    "faster_rcnn_resnet50_keras", "faster_rcnn_resnet101_keras", "faster_rcnn_resnet152_keras",
    "faster_rcnn_resnet50_fpn_keras", "faster_rcnn_resnet101_fpn_keras", "faster_rcnn_resnet152_fpn_keras",
    "faster_rcnn_inception_resnet_v2_keras",
]
RESIZERS = ["fixed", "keep_aspect"]
CASES = [(e, r) for e in EXTRACTORS for r in RESIZERS]


def _resizer(kind: str, size: int) -> str:
    if kind == "fixed":
        return f"""    image_resizer {{
      fixed_shape_resizer {{
        height: {size}
        width: {size}
      }}
    }}"""
    return f"""    image_resizer {{
      keep_aspect_ratio_resizer {{
        min_dimension: {size}
        max_dimension: {size}
        pad_to_max_dimension: true
      }}
    }}"""


def _extractor(extractor: str) -> str:
    if "fpn" not in extractor:
        bn = "\n      batch_norm_trainable: true" if "resnet" in extractor else ""
        return f"""    feature_extractor {{
      type: '{extractor}'{bn}
    }}
    first_stage_anchor_generator {{
      grid_anchor_generator {{
        scales: [0.25, 0.5, 1.0, 2.0]
        aspect_ratios: [0.5, 1.0, 2.0]
        height_stride: 16
        width_stride: 16
      }}
    }}"""
    return f"""    feature_extractor {{
      type: '{extractor}'
      batch_norm_trainable: true
      fpn {{
        min_level: 2
        max_level: 6
      }}
      conv_hyperparams {{
        activation: RELU_6,
        regularizer {{
          l2_regularizer {{
            weight: 0.0004
          }}
        }}
        initializer {{
          truncated_normal_initializer {{
            stddev: 0.03
            mean: 0.0
          }}
        }}
        batch_norm {{
          scale: true,
          decay: 0.997,
          epsilon: 0.001,
        }}
      }}
      override_base_feature_extractor_hyperparams: true
    }}
    first_stage_anchor_generator {{
        multiscale_anchor_generator {{
          min_level: 2
          max_level: 6
          anchor_scale: 4.0  # the FPN paper uses 8
          aspect_ratios: [1.0, 2.0, 0.5]
          scales_per_octave: 2  # the FPN paper uses 1
          normalize_coordinates: false
        }}
    }}"""


def zoo_faster_rcnn(extractor: str, resizer: str, size: int = 640, tpu: bool = True) -> str:
    """A zoo-shaped Faster R-CNN config (TPU-8 flavour when ``tpu``: static-shape fields, bfloat16)."""
    irv2 = "inception" in extractor
    crop = "initial_crop_size: 17\n    maxpool_kernel_size: 1\n    maxpool_stride: 1" if irv2 else \
        "initial_crop_size: 14  # the paper crops 7x7\n    maxpool_kernel_size: 2\n    maxpool_stride: 2"
    tpu_model = """
    use_static_shapes: true
    use_matmul_crop_and_resize: true
    clip_anchors_to_image: true
    use_static_balanced_label_sampler: true
    use_matmul_gather_in_matcher: true""" if tpu else ""
    tpu_train = """
  sync_replicas: true
  startup_delay_steps: 0
  replicas_to_aggregate: 8
  max_number_of_boxes: 100
  unpad_groundtruth_tensors: false
  use_bfloat16: true  # works only on TPUs""" if tpu else ""
    return f"""# Faster R-CNN, {extractor}, {resizer} resizer ({'TPU-8' if tpu else 'GPU-8'} flavour).
# Written by tests/config/zoo_shaped.py in the shape of the TF2 zoo configs.

model {{
  faster_rcnn {{
    num_classes: 90
{_resizer(resizer, size)}
{_extractor(extractor)}
    first_stage_box_predictor_conv_hyperparams {{
      op: CONV
      regularizer {{
        l2_regularizer {{
          weight: 0.0
        }}
      }}
      initializer {{
        truncated_normal_initializer {{
          stddev: 0.01
        }}
      }}
    }}
    first_stage_nms_score_threshold: 0.0
    first_stage_nms_iou_threshold: 0.7
    first_stage_max_proposals: 300
    first_stage_localization_loss_weight: 2.0
    first_stage_objectness_loss_weight: 1.0
    {crop}
    second_stage_box_predictor {{
      mask_rcnn_box_predictor {{
        use_dropout: false
        dropout_keep_probability: 1.0
        fc_hyperparams {{
          op: FC
          regularizer {{
            l2_regularizer {{
              weight: 0.0
            }}
          }}
          initializer {{
            variance_scaling_initializer {{
              factor: 1.0
              uniform: true
              mode: FAN_AVG
            }}
          }}
        }}
      }}
    }}
    second_stage_post_processing {{
      batch_non_max_suppression {{
        score_threshold: 0.0
        iou_threshold: 0.6
        max_detections_per_class: 100
        max_total_detections: 300
      }}
      score_converter: SOFTMAX
    }}
    second_stage_localization_loss_weight: 2.0
    second_stage_classification_loss_weight: 1.0{tpu_model}
  }}
}}

train_config: {{
  batch_size: 64{tpu_train}
  num_steps: 25000
  optimizer {{
    momentum_optimizer: {{
      learning_rate: {{
        cosine_decay_learning_rate {{
          learning_rate_base: .04
          total_steps: 25000
          warmup_learning_rate: .013333
          warmup_steps: 2000
        }}
      }}
      momentum_optimizer_value: 0.9
    }}
    use_moving_average: false
  }}
  gradient_clipping_by_norm: 10.0
  fine_tune_checkpoint_version: V2
  fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/backbone.ckpt-1"
  fine_tune_checkpoint_type: "classification"

  data_augmentation_options {{
    random_horizontal_flip {{
    }}
  }}
  data_augmentation_options {{
    random_adjust_hue {{
    }}
  }}
}}

train_input_reader: {{
  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.txt"
  tf_record_input_reader {{
    input_path: "PATH_TO_BE_CONFIGURED/train2017-?????-of-00256.tfrecord"
  }}
}}

eval_config: {{
  metrics_set: "coco_detection_metrics"
  use_moving_averages: false
  batch_size: 1;
}}

eval_input_reader: {{
  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.txt"
  shuffle: false
  num_epochs: 1
  tf_record_input_reader {{
    input_path: "PATH_TO_BE_CONFIGURED/val2017-?????-of-00032.tfrecord"
  }}
}}
"""


def write_zoo_config(tmp_path, extractor: str, resizer: str, **kw) -> str:
    path = tmp_path / f"{extractor}_{resizer}.config"
    path.write_text(zoo_faster_rcnn(extractor, resizer, **kw))
    return str(path)
