"""COCO evaluation of instance-segmentation predictions: box and mask metrics (pycocotools),
per-class AP, precision-recall curves, best-F1 score thresholds, a class confusion matrix,
plots and a Markdown report. Entry points: `tfod_seg.evaluation.score.score_model` and
`score_files`."""
