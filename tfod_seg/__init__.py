"""tfod-seg: annotated images to a deployed Mask R-CNN instance-segmentation model on TensorFlow.

Importing this package must stay cheap: no TensorFlow, no NumPy at module level.
"""

__version__ = "0.1.0"
