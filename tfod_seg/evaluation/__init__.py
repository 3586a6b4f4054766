"""COCO evaluation of instance-segmentation predictions: box and mask metrics (pycocotools),
per-class AP, precision-recall curves, best-F1 score thresholds, a class confusion matrix,
plots and a Markdown report. Entry points: `tfod_seg.evaluation.score.score_model` and
`score_files`. Scoring runs in chunks of images (`tfod_seg.evaluation.chunked`: pycocotools'
COCOeval per chunk, the same numbers as over the whole dataset), and `score_model` streams the
records and the predictions (`tfod_seg.evaluation.stream`), so its memory does not grow with
the dataset."""
