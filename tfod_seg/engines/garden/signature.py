"""The TFOD2 `serving_default` signature on top of Model Garden's detection export module.

Model Garden's `official.vision.serving.detection.DetectionModule` returns (measured on
tf-models-official 2.20) boxes in pixels of the resized model input, int32 classes and
num_detections, and an extra `image_info`; its input is called `inputs`. TFOD2's
`exporter_main_v2` returns instead:

==========================  =========  ===============  ==========================================
output                      dtype      shape            meaning
==========================  =========  ===============  ==========================================
num_detections              float32    [B]              valid rows in the outputs below
detection_boxes             float32    [B, M, 4]        normalised ``[ymin, xmin, ymax, xmax]``
detection_classes           float32    [B, M]           label-map ids (1..K; padded rows 0)
detection_scores            float32    [B, M]           descending; padded rows 0
detection_masks             float32    [B, M, h, w]     box-relative mask probabilities in [0, 1]
detection_masks_reframed    uint8      [B, N, H, W]     full-image 0/1 masks (prob > 0.5),
                                                        N = max(num_detections), H, W = input size
==========================  =========  ===============  ==========================================

M is the config's `detection_generator.max_num_detections`; h, w the mask head's output size.
`detection_masks_reframed` is what TFOD2 users otherwise compute by hand with
`reframe_box_masks_to_image_masks`; it is cut to the valid detections so a 100-detection
padding does not cost 100 full-size masks. The input is named `input_tensor` as in TFOD2.

`TFODDetectionModule` subclasses `DetectionModule` and converts its outputs on the graph,
so everything else (preprocessing, checkpoint loading, the three input types, saving) is
Model Garden's own code.
"""

from __future__ import annotations

from typing import Dict, Mapping

import tensorflow as tf

from official.vision.ops import box_ops
from official.vision.serving import detection

#: tfod-seg / TFOD2 `--input_type` → Model Garden `function_keys` name.
INPUT_TYPES: Dict[str, str] = {
    "image_tensor": "image_tensor",
    "encoded_image_string_tensor": "image_bytes",
    "tf_example": "tf_example",
}

INPUT_NAME = "input_tensor"

#: The outputs of `serving_default`, in TFOD2's order.
OUTPUT_KEYS = (
    "num_detections",
    "detection_boxes",
    "detection_classes",
    "detection_scores",
    "detection_masks",
    "detection_masks_reframed",
)


def reframe_box_masks(masks: tf.Tensor, boxes: tf.Tensor, height, width, threshold: float = 0.5) -> tf.Tensor:
    """Paste box-relative masks onto the full image, vectorised (one `crop_and_resize`).

    Args:
      masks: float [N, h, w] mask probabilities; mask pixel (i, j) covers the i-th of h equal
        rows and the j-th of w equal columns of its box.
      boxes: float [N, 4] normalised ``[ymin, xmin, ymax, xmax]`` of the image.
      height, width: the image size in pixels (ints or scalar tensors).
      threshold: probability above which a pixel belongs to the instance.

    Returns:
      uint8 [N, height, width] of 0/1.

    Each image pixel centre is mapped into the box's mask grid and sampled bilinearly; the mask
    is zero-padded by one pixel first, so pixels outside the box read 0 and the box edge falls
    half-way between the last mask pixel and the padding (the convention of Model Garden's
    `paste_instance_masks`).
    """
    masks = tf.convert_to_tensor(masks, tf.float32)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    mask_h = tf.cast(tf.shape(masks)[1], tf.float32)
    mask_w = tf.cast(tf.shape(masks)[2], tf.float32)
    padded = tf.pad(masks, [[0, 0], [1, 1], [1, 1]])[..., tf.newaxis]

    def axis_range(lo, hi, mask_n, image_n):
        # Sample coordinate (crop_and_resize units: 0 = first padded pixel centre, 1 = last)
        # of image pixel centre k: t(k) = (0.5 + mask_n * ((k + 0.5) / image_n - lo) / size) / (mask_n + 1).
        image_n = tf.cast(image_n, tf.float32)
        size = tf.maximum(hi - lo, 1e-6)

        def t(k):
            return (0.5 + mask_n * ((k + 0.5) / image_n - lo) / size) / (mask_n + 1.0)

        return t(0.0), t(image_n - 1.0)

    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    y1, y2 = axis_range(ymin, ymax, mask_h, height)
    x1, x2 = axis_range(xmin, xmax, mask_w, width)
    sample_boxes = tf.stack([y1, x1, y2, x2], axis=1)
    num = tf.shape(masks)[0]
    pasted = tf.image.crop_and_resize(
        padded, sample_boxes, tf.range(num), tf.stack([height, width]), method="bilinear", extrapolation_value=0.0
    )
    return tf.cast(pasted[..., 0] > threshold, tf.uint8)


def resample_box_masks(masks: tf.Tensor, mask_boxes: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Re-express masks predicted over ``mask_boxes`` as masks over ``boxes`` (same size).

    Args:
      masks: float [N, h, w] relative to ``mask_boxes``.
      mask_boxes, boxes: float [N, 4] ``[ymin, xmin, ymax, xmax]`` in one coordinate frame;
        ``boxes`` is normally ``mask_boxes`` clipped to the image.

    Returns float [N, h, w] relative to ``boxes``; the identity where both boxes are equal.
    The mask is edge-padded by one pixel so the half-pixel at a clipped edge keeps its value.
    """
    masks = tf.convert_to_tensor(masks, tf.float32)
    mask_h = tf.cast(tf.shape(masks)[1], tf.float32)
    mask_w = tf.cast(tf.shape(masks)[2], tf.float32)
    padded = tf.pad(masks, [[0, 0], [1, 1], [1, 1]], mode="SYMMETRIC")[..., tf.newaxis]
    r_ymin, r_xmin, r_ymax, r_xmax = tf.unstack(mask_boxes, axis=1)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)

    def axis_range(lo, hi, ref_lo, ref_hi, n):
        # New mask pixel centre k sits at box-relative r = (k + 0.5) / n of [lo, hi]; in the old
        # mask that is pixel-centre coordinate u * n - 0.5 with u its position in [ref_lo, ref_hi],
        # i.e. crop_and_resize coordinate (u * n + 0.5) / (n + 1) of the padded mask.
        ref_size = tf.maximum(ref_hi - ref_lo, 1e-6)

        def t(k):
            u = (lo + (k + 0.5) / n * (hi - lo) - ref_lo) / ref_size
            return (u * n + 0.5) / (n + 1.0)

        return t(0.0), t(n - 1.0)

    y1, y2 = axis_range(ymin, ymax, r_ymin, r_ymax, mask_h)
    x1, x2 = axis_range(xmin, xmax, r_xmin, r_xmax, mask_w)
    out = tf.image.crop_and_resize(padded, tf.stack([y1, x1, y2, x2], axis=1), tf.range(tf.shape(masks)[0]),
                                   tf.cast(tf.stack([mask_h, mask_w]), tf.int32), method="bilinear")
    return tf.clip_by_value(out[..., 0], 0.0, 1.0)


def to_tfod_outputs(outputs: Mapping[str, tf.Tensor], images: tf.Tensor, image_info: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Convert Model Garden detection outputs (of `DetectionModule.serve`) to TFOD2's.

    Model Garden's boxes are pixels of the resized, padded model input (``image_info[:, 2]``
    is the resize scale, ``image_info[:, 0]`` the original size) and may reach into the
    padding, i.e. beyond the image; TFOD2's are normalised and clipped to the image, with
    masks relative to the clipped box. So: boxes → original pixels → normalised (Model
    Garden's `box_ops.normalize_boxes`) → clipped; masks resampled to the clipped boxes; the
    full-image masks are pasted from the unclipped boxes (no double resampling).
    """
    scale = tf.tile(image_info[:, 2:3, :], [1, 1, 2])
    original_size = image_info[:, 0:1, :]

    def normalized(pixel_boxes):
        return box_ops.normalize_boxes(tf.cast(pixel_boxes, tf.float32) / scale, original_size)

    raw_boxes = normalized(outputs["detection_boxes"])
    # With outer_boxes_scale != 1 Model Garden predicts masks relative to the outer boxes.
    mask_boxes = normalized(outputs.get("detection_outer_boxes", outputs["detection_boxes"]))
    boxes = tf.clip_by_value(raw_boxes, 0.0, 1.0)
    masks = tf.cast(outputs["detection_masks"], tf.float32)
    batch, max_det = tf.shape(masks)[0], tf.shape(masks)[1]
    mask_hw = tf.shape(masks)[2:4]
    flat_shape = tf.concat([[-1], mask_hw], axis=0)
    tfod_masks = resample_box_masks(tf.reshape(masks, flat_shape), tf.reshape(mask_boxes, [-1, 4]),
                                    tf.reshape(boxes, [-1, 4]))
    tfod_masks = tf.reshape(tfod_masks, tf.concat([[batch, max_det], mask_hw], axis=0))

    num = tf.cast(outputs["num_detections"], tf.int32)
    keep = tf.reduce_max(tf.concat([num, [0]], axis=0))
    image_hw = tf.shape(images)[1:3]
    reframed = reframe_box_masks(tf.reshape(masks[:, :keep], flat_shape), tf.reshape(mask_boxes[:, :keep], [-1, 4]),
                                 image_hw[0], image_hw[1])
    reframed = tf.reshape(reframed, tf.concat([[batch, keep], image_hw], axis=0))
    return {
        "num_detections": tf.cast(outputs["num_detections"], tf.float32),
        "detection_boxes": boxes,
        "detection_classes": tf.cast(outputs["detection_classes"], tf.float32),
        "detection_scores": tf.cast(outputs["detection_scores"], tf.float32),
        "detection_masks": tfod_masks,
        "detection_masks_reframed": reframed,
    }


class TFODDetectionModule(detection.DetectionModule):
    """Model Garden's `DetectionModule` whose `serve` returns the TFOD2 outputs above.

    Like a TFOD2 export, the loaded object is also callable (``detect_fn(input_tensor)``, the
    TFOD2 notebook's call), besides ``signatures["serving_default"](input_tensor=...)``.
    Requires a Mask R-CNN config with `include_mask` (the TFOD2 signature has masks) and
    `detection_generator.apply_nms` (the default).
    """

    @tf.function
    def __call__(self, input_tensor):
        if self._input_type == "image_bytes":
            return self.inference_from_image_bytes(input_tensor)
        if self._input_type == "tf_example":
            return self.inference_from_tf_example(input_tensor)
        return self.inference_from_image_tensors(input_tensor)

    def get_inference_signatures(self, function_keys):
        signatures = super().get_inference_signatures(function_keys)
        for fn in signatures.values():  # trace __call__ with the signature's input so it is saved
            (spec,) = tf.nest.flatten(fn.structured_input_signature)
            self.__call__.get_concrete_function(tf.TensorSpec(spec.shape, spec.dtype, name=INPUT_NAME))
        return signatures

    def serve(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        outputs = dict(super().serve(images))
        image_info = outputs.pop("image_info")
        return to_tfod_outputs(outputs, images, image_info)
