"""Rendering ground truth and predictions side by side (`render`); the drawing primitives it
uses live in `tfod_seg.inference.draw` (inference draws overlays with them too)."""
