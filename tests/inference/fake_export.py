"""FAKE SavedModels with the TFOD2 detection signature, for fast deterministic tests.

The fake "detects" one object per colour channel: class ``k`` (1=red, 2=green, 3=blue) is
the set of pixels whose channel ``k-1`` is > 127; its box is the tight box of those pixels
(normalised, pixel edges: ``ymax = (last_row + 1) / H``), its score is fixed
(`CLASS_SCORES`), and its box-relative mask is ``crop_and_resize`` of that pixel set into the
box, exactly like a real export's ``detection_masks``. Draw pure-colour shapes on black and the
predictions are known in advance.

Variants (`save_fake_export(path, variant)`):
* ``"boxrel"``   — only box-relative ``detection_masks`` (like TFOD2's exporter);
* ``"reframed"`` — also ``detection_masks_reframed`` (uint8 full image);
* ``"nomask"``   — boxes only;
* ``"batched"``  — input batch dimension ``None`` (others are ``[1, None, None, 3]``);
* ``"fixed64"``  — input fixed at ``[1, 64, 64, 3]`` (the model resizes nothing itself);
* ``"badsig"``   — a float32 ``images`` input instead of ``input_tensor``.
"""

from __future__ import annotations

import os

import numpy as np

CLASS_SCORES = (0.9, 0.75, 0.6)
MASK_SIZE = 33
COLOURS = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}


def _detect(images):
    import tensorflow as tf

    images = tf.cast(images, tf.int32)
    b = tf.shape(images)[0]
    h = tf.shape(images)[1]
    w = tf.shape(images)[2]
    on = images > 127  # [B, H, W, 3]
    rows = tf.reduce_any(on, axis=2)  # [B, H, K]
    cols = tf.reduce_any(on, axis=1)  # [B, W, K]
    present = tf.reduce_any(rows, axis=1)  # [B, K]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    ymin = tf.cast(tf.argmax(tf.cast(rows, tf.int32), axis=1), tf.float32)
    ymax = hf - tf.cast(tf.argmax(tf.cast(tf.reverse(rows, [1]), tf.int32), axis=1), tf.float32)
    xmin = tf.cast(tf.argmax(tf.cast(cols, tf.int32), axis=1), tf.float32)
    xmax = wf - tf.cast(tf.argmax(tf.cast(tf.reverse(cols, [1]), tf.int32), axis=1), tf.float32)
    boxes = tf.stack([ymin / hf, xmin / wf, ymax / hf, xmax / wf], axis=-1)  # [B, K, 4]
    boxes = tf.where(present[..., None], boxes, tf.zeros_like(boxes))
    scores = tf.where(present, tf.constant(CLASS_SCORES)[None, :], 0.0)  # [B, K]
    classes = tf.broadcast_to(tf.constant([1.0, 2.0, 3.0]), tf.shape(scores))
    order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
    boxes = tf.gather(boxes, order, batch_dims=1)
    scores = tf.gather(scores, order, batch_dims=1)
    classes = tf.gather(classes, order, batch_dims=1)
    num = tf.reduce_sum(tf.cast(scores > 0, tf.float32), axis=1)
    # Box-relative masks: channel (class - 1) cropped to the box with crop_and_resize, the
    # exact inverse of TFOD2's reframing (both use corner-aligned normalised coordinates).
    onf = tf.cast(on, tf.float32)  # [B, H, W, 3]
    chan = tf.cast(classes, tf.int32) - 1  # [B, K]
    per_class = tf.transpose(onf, [0, 3, 1, 2])  # [B, 3, H, W]
    sel = tf.gather(per_class, chan, batch_dims=1)  # [B, K, H, W]
    flat = tf.reshape(sel, [-1, h, w, 1])
    sample = tf.reshape(boxes, [-1, 4])
    crops = tf.image.crop_and_resize(flat, sample, tf.range(tf.shape(flat)[0]), [MASK_SIZE, MASK_SIZE])
    masks = tf.reshape(crops, [b, -1, MASK_SIZE, MASK_SIZE])
    masks = masks * tf.cast(scores > 0, tf.float32)[..., None, None]
    reframed = tf.cast(sel > 0, tf.uint8) * tf.cast(scores > 0, tf.uint8)[..., None, None]
    return {
        "num_detections": num,
        "detection_boxes": boxes,
        "detection_classes": classes,
        "detection_scores": scores,
        "detection_masks": masks,
        "detection_masks_reframed": reframed,
    }


def save_fake_export(path, variant: str = "boxrel") -> str:
    """Write a fake export of ``variant`` to ``path/saved_model`` and return ``path``."""
    import tensorflow as tf

    batch = None if variant == "batched" else 1
    size = 64 if variant == "fixed64" else None

    class Fake(tf.Module):
        pass

    mod = Fake()

    if variant == "badsig":
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="images")])
        def serve(images):
            return {"detection_boxes": tf.zeros([1, 1, 4])}
    else:
        @tf.function(input_signature=[tf.TensorSpec([batch, size, size, 3], tf.uint8, name="input_tensor")])
        def serve(input_tensor):
            out = _detect(input_tensor)
            if variant != "reframed":
                out.pop("detection_masks_reframed")
            if variant == "nomask":
                out.pop("detection_masks")
            return out

    mod.serve = serve
    tf.saved_model.save(mod, os.path.join(os.fspath(path), "saved_model"), signatures={"serving_default": serve})
    return os.fspath(path)


def write_label_map(path) -> str:
    from tfod_seg.labelmap import LabelMap

    LabelMap.from_names(["red", "green", "blue"]).write(os.path.join(os.fspath(path), "label_map.pbtxt"))
    return os.fspath(path)


def shapes_image(height=48, width=64, shapes=(("rect", 1, (8, 6, 30, 24)), ("circle", 2, (44, 30, 12)))):
    """A black uint8 image with pure-colour shapes: ``("rect", cls, (x0, y0, x1, y1))`` is an
    inclusive pixel rectangle, ``("circle", cls, (cx, cy, r))`` a filled disc. Returns
    (image, {cls: mask uint8})."""
    import cv2

    img = np.zeros((height, width, 3), np.uint8)
    masks = {}
    for kind, cls, geom in shapes:
        m = np.zeros((height, width), np.uint8)
        if kind == "rect":
            x0, y0, x1, y1 = geom
            m[y0:y1 + 1, x0:x1 + 1] = 1
        else:
            cx, cy, r = geom
            cv2.circle(m, (cx, cy), r, 1, -1)
        masks[cls] = m
        img[m > 0] = np.maximum(img[m > 0], np.array(COLOURS[cls], np.uint8))
    return img, masks


_CACHE: dict = {}


def fake_export(tmp_path_factory, variant: str) -> str:
    """Session-cached fake export (with a label map beside it)."""
    if variant not in _CACHE:
        path = tmp_path_factory.mktemp(f"fake_{variant}")
        save_fake_export(path, variant)
        write_label_map(path)
        _CACHE[variant] = os.fspath(path)
    return _CACHE[variant]
