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
    parser.add_argument("--pipeline_config_path", required=True, metavar="CFG",
                        help="Model Garden experiment .yaml or TFOD2 pipeline.config")
    parser.add_argument("--checkpoint_dir", required=True, metavar="DIR", help="directory with the checkpoints")
    parser.add_argument("--once", action="store_true", help="evaluate the latest checkpoint and exit")
    parser.add_argument("--eval_timeout", type=float, default=3600, metavar="S",
                        help="without --once: stop when no new checkpoint appears for S seconds")
    parser.add_argument("--metrics_json", default=None, metavar="PATH", help="also write the metrics to this JSON file")
    parser.add_argument("--engine", choices=("garden", "tfod"), default=None,
                        help="override the engine chosen from the config's extension")
    tfod = parser.add_argument_group("TFOD2-only flags (passed to model_main_tf2)")
    tfod.add_argument("--model_dir", default=None, metavar="DIR",
                      help="where TFOD2 writes eval summaries (default: --checkpoint_dir)")
    tfod.add_argument("--sample_1_of_n_eval_examples", type=int, default=None, metavar="N")
    tfod.add_argument("--use_tpu", action="store_true", default=None)
    tfod.add_argument("--config_override", default=None, metavar="TEXT")
    tfod.add_argument("--tfod-python", dest="tfod_python", default=None, metavar="PATH",
                      help="Python interpreter of the TFOD2 environment (default: .venv-tfod, found automatically)")
    tfod.add_argument("--log_file", default=None, metavar="PATH",
                      help="where to save the full TFOD2 log (default: CHECKPOINT_DIR/evaluate.log)")


def format_metrics(metrics: dict) -> str:
    lines = [f"{'metric':<10} {'box':>7} {'mask':>7}"]
    for name in _ORDER:
        box, mask = metrics.get(f"box_{name}"), metrics.get(f"mask_{name}")
        if box is None and mask is None:
            continue
        lines.append(f"{name:<10} {'' if box is None else f'{box:7.4f}':>7} {'' if mask is None else f'{mask:7.4f}':>7}")
    return "\n".join(lines)


def run(args) -> int:
    import sys

    from tfod_seg.engines import resolve_engine
    from tfod_seg.errors import UserError

    engine = resolve_engine(args.pipeline_config_path, args.engine)
    if engine == "tfod":
        from tfod_seg.cli._train_display import TrainDisplay
        from tfod_seg.cli.train_cmd import _run_tfod

        flags = {
            "pipeline_config_path": args.pipeline_config_path, "checkpoint_dir": args.checkpoint_dir,
            "model_dir": args.model_dir or args.checkpoint_dir, "eval_timeout": args.eval_timeout,
            "once": True if args.once else None,
            "sample_1_of_n_eval_examples": args.sample_1_of_n_eval_examples,
            "use_tpu": args.use_tpu, "config_override": args.config_override,
        }
        with TrainDisplay("evaluate (tfod)") as display:
            return _run_tfod(args, "evaluate", flags, display)
    bad = [f"--{n}" for n in ("model_dir", "sample_1_of_n_eval_examples", "use_tpu", "config_override", "log_file")
           if getattr(args, n, None) not in (None, False)]
    if args.tfod_python:
        bad.append("--tfod-python")
    if bad:
        raise UserError(f"{', '.join(bad)}: TFOD2-only flag(s), but the engine is garden (a Model Garden .yaml)")
    from tfod_seg.engines.garden.evaluate import evaluate

    metrics = evaluate(args.pipeline_config_path, args.checkpoint_dir, once=args.once,
                       eval_timeout=None if args.once else args.eval_timeout)
    print(f"checkpoint {metrics['checkpoint']} (step {metrics['step']})")
    print(format_metrics(metrics))
    if args.metrics_json:
        from tfod_seg.io import atomic_write_json

        atomic_write_json(args.metrics_json, metrics)
        print(f"metrics written to {args.metrics_json}", file=sys.stderr)
    return 0
