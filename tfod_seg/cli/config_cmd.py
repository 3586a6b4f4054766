"""`tfod-seg config`: generate a Mask R-CNN config from a template, `--check` an existing one, or
`--migrate` a TFOD2 pipeline.config to a Model Garden experiment."""

from __future__ import annotations

import sys

NAME = "config"
HELP = "Mask R-CNN config (TFOD2 pipeline.config or Model Garden YAML) from a template; --check; --migrate"
DESCRIPTION = """Generate a Mask R-CNN config with every coupled field set from the label map, the
records and your flags (num_classes, masks on both input readers, mask metrics, input paths,
checkpoint + its type, batch size, steps and learning-rate schedule). The template's kind picks
the target: a TFOD2 .config or a Model Garden experiment .yaml (`tfod-seg templates` lists them).
A TFOD2 Faster R-CNN template (any TF2 zoo feature extractor) becomes a complete Mask R-CNN with
the mask head TFOD2's own Mask R-CNN configs use for that family; the header lists what was added.
--target cpu|gpu|tpu (default: from --strategy, else gpu) sets or clears the TPU-only fields and
the precision (TFOD2), or the precision and loop intervals (Model Garden).
Layering: template -> generated values -> --set overrides. When --batch-size changes and --lr is
not given, the learning rate scales linearly and the file's header says so.

--check FILE validates an existing config: num_classes vs the label map, input globs match
records, mask settings vs the records' report.json, checkpoint exists, warm-up < steps,
batch size vs dataset size, TPU-only fields / precision vs --strategy (the one `tfod-seg train`
will use). Exit status 1 when an error is found.

--migrate PIPELINE.config --out EXPERIMENT.yaml turns a TFOD2 Faster/Mask R-CNN config into a
Model Garden Mask R-CNN experiment; every field without an equivalent is listed in the file's
header and printed here."""
EPILOG = """examples:
  tfod-seg config --template garden_maskrcnn_resnet50_fpn_640 --label-map records/label_map.pbtxt \\
      --train 'records/train-*.tfrecord' --val 'records/val-*.tfrecord' --model-dir runs/a --out runs/a.yaml
  tfod-seg config --template tfod_mask_rcnn_resnet50_fpn_640 --label-map records/label_map.pbtxt \\
      --train 'records/train-*.tfrecord' --val 'records/val-*.tfrecord' --model-dir runs/t \\
      --checkpoint zoo/faster_rcnn_resnet50_v1_fpn_640x640_coco17_tpu-8/checkpoint/ckpt-0 \\
      --checkpoint-type detection --batch-size 4 --steps 5000 --augment flip,scale --out runs/t.config
  tfod-seg config ... --set trainer.validation_interval=500 --set task.model.detection_generator.max_num_detections=50
  tfod-seg config ... --set eval_config.metrics_set[1]=coco_mask_metrics --set +train_config.use_bfloat16=false
  tfod-seg config --check runs/a.yaml
  tfod-seg config --check runs/t.config --label-map records/label_map.pbtxt --strategy tpu
  tfod-seg config --template my_faster_rcnn_resnet101.config --target tpu --label-map ... --out runs/t.config
  tfod-seg config --migrate runs/t.config --out runs/t.yaml --label-map records/label_map.pbtxt --target gpu
"""


def add_arguments(parser) -> None:
    parser.add_argument("--check", metavar="FILE", help="validate an existing config instead of generating one")
    parser.add_argument("--migrate", metavar="PIPELINE",
                        help="turn a TFOD2 pipeline.config into a Model Garden Mask R-CNN experiment (--out .yaml)")
    parser.add_argument("--target", choices=["cpu", "gpu", "tpu"],
                        help="hardware the job runs on (default: from --strategy, else gpu): TPU-only fields, "
                             "precision, loop intervals")
    parser.add_argument("--template", "-t", help="template name (see `tfod-seg templates`) or path")
    parser.add_argument("--label-map", help="label_map.pbtxt (from `tfod-seg convert`)")
    parser.add_argument("--train", help="training record glob(s), comma-separated, e.g. 'out/train-*.tfrecord'")
    parser.add_argument("--val", help="validation record glob(s)")
    parser.add_argument("--model-dir", help="where training will write checkpoints (recorded in the header)")
    parser.add_argument("--out", "-o", help="config file to write (.config for TFOD2, .yaml for Model Garden)")
    parser.add_argument("--batch-size", type=int, help="global training batch size (default: the template's)")
    parser.add_argument("--steps", type=int, help="training steps; the schedule is scaled to it (default: template's)")
    parser.add_argument("--lr", type=float, help="base learning rate (default: template's, scaled with the batch size)")
    parser.add_argument("--warmup-steps", type=int, help="warm-up steps (default: template's, scaled with --steps)")
    parser.add_argument("--image-size", type=int, help="square input size in pixels (default: template's)")
    parser.add_argument("--checkpoint", help="checkpoint to start from (a ckpt-N prefix or a directory)")
    parser.add_argument("--checkpoint-type", choices=["detection", "classification", "backbone", "full"],
                        help="what --checkpoint is: detection (restore backbone+FPN/RPN, new heads; default), "
                             "classification/backbone (backbone only), full (everything: same classes)")
    parser.add_argument("--augment", help="training augmentation, replaces the template's: flip, vflip, "
                                          "scale[=MIN:MAX], none (comma-separated)")
    parser.add_argument("--mask-type", choices=["png", "numerical"],
                        help="how the records store masks (default: from report.json beside the records, else png)")
    parser.add_argument("--strategy", choices=["mirrored", "one_device", "multi_worker_mirrored", "tpu", "auto", "cpu",
                                               "gpu", "multi_worker"],
                        help="Model Garden runtime.distribution_strategy; picks the default --target; "
                             "--check: the strategy `tfod-seg train` will use")
    parser.add_argument("--mixed-precision", choices=["float32", "float16", "bfloat16"],
                        help="Model Garden runtime.mixed_precision_dtype (TFOD2: bfloat16 sets use_bfloat16)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any field after generation (dotted key; repeatable; TFOD2: +KEY=VALUE "
                             "adds a field the template lacks)")
    parser.add_argument("--report", help="--check: the records' report.json (default: found beside the train records)")


def run(args) -> int:
    from tfod_seg.config.checks import check_config
    from tfod_seg.errors import ConfigError

    if args.check and args.migrate:
        raise ConfigError("give either --check FILE or --migrate PIPELINE, not both")
    if args.check:
        _refuse_ignored(args, GENERATION_FLAGS + ("out", "target"),
                        f"--check validates {args.check} as it is (it takes --label-map, --report, --strategy)")
        problems = check_config(args.check, label_map=args.label_map, report=args.report, strategy=args.strategy)
        return _print_problems(args.check, problems)
    if args.migrate:
        return _migrate(args)
    missing = [f for f, v in (("--template", args.template), ("--label-map", args.label_map), ("--train", args.train),
                              ("--val", args.val), ("--model-dir", args.model_dir), ("--out", args.out)) if not v]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)} (or give --check FILE to validate an existing config, or "
                          "--migrate PIPELINE to migrate one)")
    from tfod_seg.config.generate import generate_config
    from tfod_seg.records.metadata import find_report, read_report

    mask_type = args.mask_type
    if mask_type is None:
        rep = read_report(find_report(args.train))
        mask_type = (rep or {}).get("mask_type") or "png"
    out = generate_config(
        args.template, label_map=args.label_map, train=args.train, val=args.val, model_dir=args.model_dir,
        out=args.out, batch_size=args.batch_size, steps=args.steps, lr=args.lr, warmup_steps=args.warmup_steps,
        image_size=args.image_size, checkpoint=args.checkpoint, checkpoint_type=args.checkpoint_type,
        augment=args.augment, mask_type=mask_type, overrides=args.overrides, strategy=args.strategy,
        mixed_precision=args.mixed_precision, target=args.target)
    print(f"wrote {out}")
    problems = check_config(out, label_map=args.label_map, strategy=args.strategy)
    return _print_problems(out, problems)


def _migrate(args) -> int:
    from tfod_seg.config.checks import check_config
    from tfod_seg.config.migrate import migrate_config
    from tfod_seg.errors import ConfigError

    if not args.out:
        raise ConfigError("--migrate needs --out EXPERIMENT.yaml")
    _refuse_ignored(args, GENERATION_FLAGS + ("report",),
                    f"--migrate takes the input paths and settings from {args.migrate}",
                    f" (then regenerate or --set with --template {args.out})")
    result = migrate_config(args.migrate, args.out, label_map=args.label_map, target=args.target,
                            strategy=args.strategy)
    print(f"wrote {result.out} (Model Garden {result.experiment}): {len(result.mapped)} fields mapped")
    for field, note in result.approximate:
        print(f"  approximated: {field}: {note}")
    for field in result.unmapped:
        print(f"  no Model Garden equivalent: {field}")
    problems = check_config(result.out, label_map=args.label_map, strategy=args.strategy)
    return _print_problems(result.out, problems)


# Flags only generation reads; --check and --migrate refuse them rather than ignore them.
GENERATION_FLAGS = ("template", "train", "val", "model_dir", "batch_size", "steps", "lr", "warmup_steps", "image_size",
                    "checkpoint", "checkpoint_type", "augment", "mask_type", "mixed_precision")


def _refuse_ignored(args, names, why: str, hint: str = "") -> None:
    from tfod_seg.errors import ConfigError

    ignored = [f"--{k.replace('_', '-')}" for k in names if getattr(args, k) is not None]
    if args.overrides:
        ignored.append("--set")
    if ignored:
        raise ConfigError(f"{why}; drop {', '.join(ignored)}{hint}")


def _print_problems(path, problems) -> int:
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(str(p), file=sys.stderr)
    if errors:
        print(f"{path}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)", file=sys.stderr)
        return 1
    print(f"{path}: OK" + (f" ({len(problems)} warning(s))" if problems else ""))
    return 0
