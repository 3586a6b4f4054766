"""TFOD2 Faster R-CNN feature-extractor families and what turns each into a complete Mask R-CNN.

The TF2 zoo ships a dozen Faster R-CNN configs (ResNet-50/101/152 v1, with or without FPN, at
640, 1024 and 800x1333) and one Mask R-CNN (Inception-ResNet-v2). A Faster R-CNN config already
uses ``mask_rcnn_box_predictor`` for its second stage, so Mask R-CNN is that predictor with the
mask head switched on and configured, plus ``number_of_stages: 3`` and a mask loss weight.

The values are the ones TFOD2's own Mask R-CNN configs use for the family:

* ResNet (v1, with or without FPN): ``samples/configs/mask_rcnn_resnet{50,101}_atrous_coco.config``
  (TFOD2 ships no ResNet-152 or FPN Mask R-CNN; these are the ResNet values it has);
* Inception-ResNet-v2: ``configs/tf2/mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config``.

Both use a 33x33 mask, 4 mask convolutions of automatic depth (``mask_prediction_conv_depth:
0``), a CONV ``conv_hyperparams`` without weight decay (truncated normal, stddev 0.01) and
``second_stage_mask_prediction_loss_weight: 4.0`` (TFOD2's proto defaults are 15x15, 2 layers
of depth 256 and weight 1.0). ``resize_masks: false`` comes from the TF2 config: TF2's input
pipeline already resizes the masks with the image, the model's own resize is a legacy TF1 step.

Fields the template already has are kept (a hand-tuned mask head stays as written).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tfod_seg.errors import ConfigError

RESNET_SOURCE = "TFOD2 samples/configs/mask_rcnn_resnet{50,101}_atrous_coco.config"
IRV2_SOURCE = "TFOD2 configs/tf2/mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config"

# The mask head of TFOD2's Mask R-CNN configs (identical in the ResNet and Inception-ResNet-v2 ones).
MASK_CONV_HYPERPARAMS: Dict[str, Any] = {
    "op": "CONV",  # written unquoted: an enum value (see MASK_ENUMS)
    "regularizer": {"l2_regularizer": {"weight": 0.0}},
    "initializer": {"truncated_normal_initializer": {"stddev": 0.01}},
}
MASK_ENUMS = {"op"}
TFOD_MASK_HEAD: Dict[str, Any] = {
    "mask_height": 33,
    "mask_width": 33,
    "mask_prediction_conv_depth": 0,
    "mask_prediction_num_conv_layers": 4,
    "conv_hyperparams": MASK_CONV_HYPERPARAMS,
}
TFOD_MASK_MODEL: Dict[str, Any] = {
    "second_stage_mask_prediction_loss_weight": 4.0,
    "resize_masks": False,
}


@dataclasses.dataclass(frozen=True)
class Family:
    """One TF2 Faster R-CNN feature extractor and its Mask R-CNN settings."""

    extractor: str             # feature_extractor.type in a TFOD2 config
    name: str                  # human name, e.g. "ResNet-50 v1 FPN"
    backbone: str              # "resnet" or "inception_resnet_v2"
    depth: Optional[int]       # ResNet depth (None for Inception-ResNet-v2)
    fpn: bool
    source: str                # the TFOD2 Mask R-CNN config the mask-head values come from
    mask_head: Mapping[str, Any] = dataclasses.field(default_factory=lambda: TFOD_MASK_HEAD)
    model: Mapping[str, Any] = dataclasses.field(default_factory=lambda: TFOD_MASK_MODEL)

    def to_json(self) -> Dict[str, Any]:
        return {"extractor": self.extractor, "name": self.name, "backbone": self.backbone, "depth": self.depth,
                "fpn": self.fpn, "source": self.source}


def _resnet(depth: int, fpn: bool) -> Family:
    suffix = "_fpn" if fpn else ""
    return Family(f"faster_rcnn_resnet{depth}{suffix}_keras", f"ResNet-{depth} v1{' FPN' if fpn else ''}",
                  "resnet", depth, fpn, RESNET_SOURCE)


FAMILIES: Dict[str, Family] = {
    f.extractor: f for f in [
        *(_resnet(d, fpn) for fpn in (False, True) for d in (50, 101, 152)),
        Family("faster_rcnn_inception_resnet_v2_keras", "Inception-ResNet-v2", "inception_resnet_v2", None, False,
               IRV2_SOURCE),
    ]
}
# TF1 (slim) extractors: model_main_tf2 cannot build them; name the Keras one to use instead.
TF1_TO_KERAS = {
    "faster_rcnn_resnet50": "faster_rcnn_resnet50_keras",
    "faster_rcnn_resnet101": "faster_rcnn_resnet101_keras",
    "faster_rcnn_resnet152": "faster_rcnn_resnet152_keras",
    "faster_rcnn_inception_resnet_v2": "faster_rcnn_inception_resnet_v2_keras",
}


def family_of(extractor: str, source: str = "<config>") -> Family:
    """The `Family` of a ``feature_extractor.type``; anything else is a ConfigError naming the
    supported types (and the Keras replacement of a TF1 extractor)."""
    fam = FAMILIES.get(str(extractor))
    if fam is not None:
        return fam
    field = "model.faster_rcnn.feature_extractor.type"
    if extractor in TF1_TO_KERAS:
        raise ConfigError(f"{source}: {field} {extractor!r} is a TF1 (slim) feature extractor that model_main_tf2 "
                          f"cannot build; use {TF1_TO_KERAS[extractor]!r}")
    raise ConfigError(f"{source}: {field} {extractor!r} is not a TF2 zoo Faster R-CNN feature extractor; expected "
                      f"one of {', '.join(FAMILIES)}")


def missing_mask_fields(present: Mapping[str, bool], family: Family) -> Tuple[List[Tuple[str, Any]], List[Tuple[str, Any]]]:
    """The (field, value) pairs to add to ``mask_rcnn_box_predictor`` and to ``faster_rcnn``:
    those of the family that ``present`` (field name → the template has it) lacks."""
    head = [(k, v) for k, v in family.mask_head.items() if not present.get(f"head.{k}")]
    model = [(k, v) for k, v in family.model.items() if not present.get(f"model.{k}")]
    return head, model


__all__ = ["Family", "FAMILIES", "family_of", "missing_mask_fields", "TFOD_MASK_HEAD", "TFOD_MASK_MODEL",
           "MASK_ENUMS"]
