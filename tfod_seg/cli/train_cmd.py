"""`tfod-seg train`: train a Mask R-CNN from a config, resuming from the latest checkpoint."""

from __future__ import annotations

NAME = "train"
HELP = "train from a config (Model Garden .yaml or TFOD2 pipeline.config); resumes in --model_dir"
DESCRIPTION = (
    "Train the model described by --pipeline_config_path into --model_dir, with TFOD2's flag names.\n\n"
    "Re-running on the same --model_dir resumes from its latest checkpoint. --num_train_steps is the\n"
    "TOTAL number of steps (as in TFOD2), not 'more steps': if the checkpoint is already there, nothing\n"
    "is trained. Progress (step, loss, steps/s, ETA) is shown on the console and TensorBoard summaries\n"
    "are written to --model_dir. A NaN or infinite loss stops training and keeps the last good\n"
    "checkpoint. The config actually used is saved in --model_dir (params.yaml + a copy of the file).\n\n"
    "The engine follows from the config: .yaml -> Model Garden (garden), .config -> TFOD2 (tfod)."
)
EPILOG = """examples:
  # the CPU demo template on converted records (see `tfod-seg config`)
  tfod-seg train --pipeline_config_path out/garden.yaml --model_dir runs/shapes

  # continue the same run to 2000 steps in total, checkpoint every 200
  tfod-seg train --pipeline_config_path out/garden.yaml --model_dir runs/shapes \\
      --num_train_steps 2000 --checkpoint_every_n 200

  # transfer learning: backbone + FPN from another run, new heads (other classes)
  tfod-seg train --pipeline_config_path out/new.yaml --model_dir runs/new --checkpoint runs/shapes

  # two machines: TF_CONFIG on each names the cluster and the worker's index
  TF_CONFIG='{"cluster":{"worker":["10.0.0.1:2222","10.0.0.2:2222"]},"task":{"type":"worker","index":0}}' \\
      tfod-seg train --pipeline_config_path cfg.yaml --model_dir gs://bucket/run --strategy multi_worker

  # fit the run to the clock: steps and learning-rate schedule chosen from the measured speed
  tfod-seg train --pipeline_config_path out/garden.yaml --model_dir runs/budget --time_budget 20m

  # keep the best checkpoint by mask AP (MODEL_DIR/best/), stop after 3 evaluations without gain
  tfod-seg train --pipeline_config_path out/garden.yaml --model_dir runs/best --num_train_steps 5000 \\
      --eval_every 500 --patience 3 --min_delta 0.005
  tfod-seg export --pipeline_config_path out/garden.yaml --trained_checkpoint_dir runs/best \\
      --output_directory runs/best/exported --checkpoint best

  # real TFOD2 (needs `make tfod-env`)
  tfod-seg train --pipeline_config_path out/pipeline.config --model_dir runs/tfod --num_train_steps 5000
"""

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")


def add_arguments(parser) -> None:
    from tfod_seg.cli._engine import add_engine_flag, add_tfod_python

    parser.add_argument("--pipeline_config_path", required=True, metavar="CFG",
                        help="Model Garden experiment .yaml or TFOD2 pipeline.config")
    parser.add_argument("--model_dir", required=True, metavar="DIR", help="checkpoints, summaries, saved config")
    parser.add_argument("--num_train_steps", type=int, default=None, metavar="N",
                        help="TOTAL number of training steps (not 'more steps'); default: the config's")
    parser.add_argument("--checkpoint_every_n", type=int, default=None, metavar="K",
                        help="save a checkpoint every K steps; default: the config's")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto",
                        help="distribution: auto picks multi_worker with TF_CONFIG, mirrored with several "
                             "GPUs, gpu with one, else cpu")
    parser.add_argument("--tpu_name", default=None, help="TPU name or grpc:// address (with --strategy tpu)")
    parser.add_argument("--num_tpu_cores", type=int, default=8, metavar="N",
                        help="TPU cores the batch is split over (preflight check; 8 for a v2-8/v3-8)")
    parser.add_argument("--num_workers", type=int, default=1,
                        help="number of workers; > 1 means multi_worker (checked against TF_CONFIG)")
    parser.add_argument("--mixed_precision", action="store_true",
                        help="float16 on GPU, bfloat16 on TPU/CPU (garden engine)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="transfer learning (garden): initialise backbone + FPN from this checkpoint "
                             "(prefix or directory, e.g. another run's model_dir); heads start new. "
                             "Used only when --model_dir has no checkpoint yet")
    clock = parser.add_argument_group("time budget, best checkpoint, early stopping (garden engine)")
    clock.add_argument("--time_budget", default=None, metavar="DURATION",
                       help="e.g. 90s, 8m, 2h: measure steps/s after warm-up, choose the total steps so training "
                            "ends inside the budget and fit the learning-rate schedule to it (a complete schedule); "
                            "with --num_train_steps, whichever ends first. Resuming keeps the fitted schedule")
    clock.add_argument("--eval_every", default=None, metavar="N|DURATION",
                       help="evaluate on the val records every N steps (or every 5m, ...) and at the end; the best "
                            "checkpoint is kept in MODEL_DIR/best/ with best.json (export --checkpoint best)")
    clock.add_argument("--eval_metric", default="mask_AP", metavar="NAME",
                       help="metric choosing the best checkpoint (box_AP, mask_AP50, validation_loss, ...; "
                            "names with 'loss' are better lower)")
    clock.add_argument("--patience", type=int, default=None, metavar="K",
                       help="stop after K evaluations without an improvement of at least --min_delta")
    clock.add_argument("--min_delta", type=float, default=0.0, metavar="D",
                       help="smallest change of --eval_metric that counts as an improvement")
    add_engine_flag(parser)
    tfod = parser.add_argument_group("TFOD2-only flags (passed to model_main_tf2)")
    tfod.add_argument("--sample_1_of_n_eval_examples", type=int, default=None, metavar="N")
    tfod.add_argument("--use_tpu", action="store_true", default=None)
    tfod.add_argument("--config_override", default=None, metavar="TEXT",
                      help="pipeline_pb2.TrainEvalPipelineConfig text merged into the config")
    add_tfod_python(tfod)
    parser.add_argument("--log_file", default=None, metavar="PATH",
                        help="tfod engine: where to save the full TFOD2 log (default: MODEL_DIR/train.log)")


def options_from_args(args):
    from tfod_seg.engines.base import TrainOptions

    return TrainOptions(
        config_path=args.pipeline_config_path, model_dir=args.model_dir, num_train_steps=args.num_train_steps,
        checkpoint_every_n=args.checkpoint_every_n, strategy=args.strategy, tpu_name=args.tpu_name,
        num_workers=args.num_workers, mixed_precision=args.mixed_precision, init_checkpoint=args.checkpoint,
        time_budget=args.time_budget, eval_every=args.eval_every, patience=args.patience, min_delta=args.min_delta,
        eval_metric=args.eval_metric,
        sample_1_of_n_eval_examples=args.sample_1_of_n_eval_examples, use_tpu=args.use_tpu,
        config_override=args.config_override, log_file=args.log_file, tfod_python=args.tfod_python)


def print_summary(summary, stream=None) -> None:
    """The closing lines of `tfod-seg train` for a `TrainSummary`."""
    import sys

    from tfod_seg.cli._train_display import format_eta

    stream = stream or sys.stderr
    if summary.already_done:
        print(f"{summary.model_dir} is already at step {summary.final_step}, which reaches "
              f"num_train_steps={summary.total_steps} (a total, not 'more steps'): nothing to train. "
              f"Give a larger --num_train_steps to continue.", file=stream)
        return
    rate = summary.trained_steps / summary.train_seconds if summary.train_seconds else 0.0
    steps = (f"steps {summary.start_step} -> {summary.final_step}" if summary.start_step is not None
             else f"to step {summary.final_step}")
    line = (f"trained {steps} of {summary.total_steps} in {format_eta(summary.train_seconds)} "
            f"({rate:.2f} steps/s overall")
    if summary.steps_per_sec:
        line += f", {summary.steps_per_sec:.2f} in the last loop"
    line += ")"
    if summary.final_loss is not None:
        line += f"; final loss {summary.final_loss:.4g}"
    print(line, file=stream)
    if summary.stop_reason and summary.stop_reason != "total steps reached":
        measured = (f", {summary.measured_steps_per_sec:.2f} steps/s measured" if summary.measured_steps_per_sec
                    else "")
        print(f"stopped: {summary.stop_reason}{measured}", file=stream)
    if summary.best:
        print(f"best checkpoint: {summary.best['checkpoint']} ({summary.best['metric']} {summary.best['value']:.4f} "
              f"at step {summary.best['step']})", file=stream)
    if summary.checkpoint:
        print(f"checkpoint: {summary.checkpoint}", file=stream)
    if summary.params_yaml:
        print(f"config used: {summary.params_yaml}", file=stream)
    if summary.log_path:
        print(f"full log: {summary.log_path}", file=stream)


def run(args) -> int:
    from tfod_seg.cli._engine import prepare
    from tfod_seg.cli._train_display import TrainDisplay

    options = options_from_args(args)
    engine = prepare("train", args, options)
    with TrainDisplay("train" if engine.name == "garden" else f"train ({engine.name})") as display:
        summary = engine.train(options, on_progress=display)
    print_summary(summary)
    return 0
