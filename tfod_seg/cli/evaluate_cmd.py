"""`tfod-seg evaluate`: COCO box and mask metrics of checkpoints on the config's val records."""

from __future__ import annotations

NAME = "evaluate"
HELP = "COCO box + mask metrics of the checkpoints in --checkpoint_dir (once, or as they appear)"
DESCRIPTION = (
    "Evaluate checkpoints on the validation records named in --pipeline_config_path, like TFOD2's\n"
    "model_main_tf2 --checkpoint_dir: with --once the latest checkpoint is evaluated and the command\n"
    "exits; without it, every new checkpoint is evaluated as training writes it, until one reaches the\n"
    "configured number of steps or none appears for --eval_timeout seconds.\n\n"
    "Model Garden configs need no COCO annotation file: the ground truth is read from the val records."
)
EPILOG = """examples:
  tfod-seg evaluate --pipeline_config_path out/garden.yaml --checkpoint_dir runs/shapes --once
  tfod-seg evaluate --pipeline_config_path out/garden.yaml --checkpoint_dir runs/shapes --once \\
      --metrics_json runs/shapes/metrics.json

  # beside a running `tfod-seg train`: evaluate each new checkpoint, give up after 10 idle minutes
  tfod-seg evaluate --pipeline_config_path out/garden.yaml --checkpoint_dir runs/shapes --eval_timeout 600

  # TFOD2 (needs `make tfod-env`)
  tfod-seg evaluate --pipeline_config_path out/pipeline.config --checkpoint_dir runs/tfod --once
"""

_ORDER = ("AP", "AP50", "AP75", "APs", "APm", "APl", "ARmax1", "ARmax10", "ARmax100")


def add_arguments(parser) -> None:
    from tfod_seg.cli._engine import add_engine_flag, add_tfod_python

    parser.add_argument("--pipeline_config_path", required=True, metavar="CFG",
                        help="Model Garden experiment .yaml or TFOD2 pipeline.config")
    parser.add_argument("--checkpoint_dir", required=True, metavar="DIR", help="directory with the checkpoints")
    parser.add_argument("--once", action="store_true", help="evaluate the latest checkpoint and exit")
    parser.add_argument("--eval_timeout", type=float, default=3600, metavar="S",
                        help="without --once: stop when no new checkpoint appears for S seconds")
    parser.add_argument("--metrics_json", default=None, metavar="PATH", help="also write the metrics to this JSON file")
    add_engine_flag(parser)
    tfod = parser.add_argument_group("TFOD2-only flags (passed to model_main_tf2)")
    tfod.add_argument("--model_dir", default=None, metavar="DIR",
                      help="where TFOD2 writes eval summaries (default: --checkpoint_dir)")
    tfod.add_argument("--sample_1_of_n_eval_examples", type=int, default=None, metavar="N")
    tfod.add_argument("--use_tpu", action="store_true", default=None)
    tfod.add_argument("--num_tpu_cores", type=int, default=8, metavar="N",
                      help="with --use_tpu: TPU cores the eval batch is split over (preflight check)")
    tfod.add_argument("--config_override", default=None, metavar="TEXT")
    add_tfod_python(tfod)
    tfod.add_argument("--log_file", default=None, metavar="PATH",
                      help="where to save the full TFOD2 log (default: CHECKPOINT_DIR/evaluate.log)")


def format_metrics(metrics: dict) -> str:
    if "mean_iou" in metrics:  # a semantic-segmentation (scene) model: IoU per class id
        per_class = sorted((int(k.split("/")[1]), v) for k, v in metrics.items() if k.startswith("iou/"))
        return "\n".join([f"mean IoU {metrics['mean_iou']:.4f}"] + [f"  class {i} IoU {v:.4f}" for i, v in per_class])
    lines = [f"{'metric':<10} {'box':>7} {'mask':>7}"]
    for name in _ORDER:
        box, mask = metrics.get(f"box_{name}"), metrics.get(f"mask_{name}")
        if box is None and mask is None:
            continue
        lines.append(f"{name:<10} {'' if box is None else f'{box:7.4f}':>7} {'' if mask is None else f'{mask:7.4f}':>7}")
    return "\n".join(lines)


def run(args) -> int:
    import sys

    from tfod_seg.cli._engine import prepare
    from tfod_seg.cli._train_display import TrainDisplay
    from tfod_seg.engines.base import EvaluateOptions
    from tfod_seg.io import atomic_write_json

    options = EvaluateOptions(
        config_path=args.pipeline_config_path, checkpoint_dir=args.checkpoint_dir, once=args.once,
        eval_timeout=args.eval_timeout, model_dir=args.model_dir,
        sample_1_of_n_eval_examples=args.sample_1_of_n_eval_examples, use_tpu=args.use_tpu,
        config_override=args.config_override, log_file=args.log_file, tfod_python=args.tfod_python)
    engine = prepare("evaluate", args, options)
    with TrainDisplay(f"evaluate ({engine.name})") as display:
        result = engine.evaluate(options, on_progress=display)
    if result.checkpoint:
        step = f" (step {result.step})" if result.step is not None else ""
        print(f"checkpoint {result.checkpoint}{step}")
    if result.metrics:
        print(format_metrics(result.metrics))
    if args.metrics_json:
        atomic_write_json(args.metrics_json, result.to_json())
        print(f"metrics written to {args.metrics_json}", file=sys.stderr)
    return 0
