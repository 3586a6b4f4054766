"""What `generate_config` is asked for, checked once: flags parsed (``--augment``, ``--set``),
paths made absolute (URLs kept), the label map read, the target hardware chosen; and the header
every generated file starts with (the command that made it, what was set and why)."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import shlex
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from tfod_seg import io
from tfod_seg.config.schedule import Plan
from tfod_seg.config.templates import display_template
from tfod_seg.errors import ConfigError
from tfod_seg.labelmap import LabelMap, read_label_map

AUGMENTATIONS = ("flip", "vflip", "scale", "none")
DEFAULT_SCALE = (0.8, 1.25)


@dataclasses.dataclass
class GenerateInputs:
    """Everything a generator needs, validated (see `generate_config`)."""

    template: str
    label_map: LabelMap
    label_map_path: str
    train: List[str]
    val: List[str]
    model_dir: Optional[str]
    out: str
    checkpoint: Optional[str]
    checkpoint_type: Optional[str]
    augment: Optional[Dict[str, Any]]
    mask_type: str
    image_size: Optional[int]
    overrides: List[Tuple[str, str, bool]]
    strategy: Optional[str]
    mixed_precision: Optional[str]
    target: str                      # cpu | gpu | tpu
    target_how: str                  # "--target", "from --strategy X" or "default"
    report: Optional[dict] = None    # the records' report.json, when found


def parse_augment(augment: Union[None, str, Sequence[str]]) -> Optional[Dict[str, Any]]:
    """``"flip,scale=0.5:2"`` → ``{'flip': True, 'vflip': False, 'scale': (0.5, 2.0)}``; None → None."""
    if augment is None:
        return None
    items = augment.split(",") if isinstance(augment, str) else list(augment)
    out: Dict[str, Any] = {"flip": False, "vflip": False, "scale": None}
    for raw in (i.strip() for i in items):
        name, _, arg = raw.partition("=")
        if not raw or name == "none":
            continue
        if name not in AUGMENTATIONS:
            near = difflib.get_close_matches(name, AUGMENTATIONS, n=2)
            raise ConfigError(f"--augment: unknown augmentation {name!r}; expected one of {', '.join(AUGMENTATIONS)}"
                              + (f" (did you mean {' or '.join(near)}?)" if near else ""))
        if name == "scale":
            out["scale"] = _parse_scale(arg) if arg else DEFAULT_SCALE
        elif arg:
            raise ConfigError(f"--augment: {name} takes no value, got {raw!r}")
        else:
            out[name] = True
    return out


def _parse_scale(arg: str) -> Tuple[float, float]:
    m = re.fullmatch(r"\s*([0-9.]+)\s*[:\-]\s*([0-9.]+)\s*", arg)
    if not m or not 0 < float(m.group(1)) <= float(m.group(2)):
        raise ConfigError(f"--augment: bad scale range {arg!r}; expected MIN:MAX with 0 < MIN <= MAX, e.g. scale=0.5:2.0")
    return float(m.group(1)), float(m.group(2))


def parse_override(item: str) -> Tuple[str, str, bool]:
    """``'key=value'`` → (key, raw value, create) where ``'+key=value'`` sets create."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set trainer.train_steps=1000")
    key, _, value = item.partition("=")
    key = key.strip()
    create = key.startswith("+")
    key = key.lstrip("+")
    if not key:
        raise ConfigError(f"--set {item!r}: empty key")
    return key, value, create


def abs_path(p: Optional[str]) -> Optional[str]:
    return None if p is None or not os.fspath(p) else io.abspath(p)


def load_label_map(label_map) -> Tuple[LabelMap, str]:
    """(`LabelMap`, its path) from a path or a `LabelMap`."""
    if isinstance(label_map, LabelMap):
        return label_map, label_map.path
    path = os.fspath(label_map)
    return read_label_map(path, allow_gaps=True), path


def command_line(template, **kw) -> str:
    """The `tfod-seg config` command that reproduces a generation (for the header)."""
    parts = ["tfod-seg", "config", "--template", os.fspath(template)]
    order = [("label_map", "--label-map"), ("train", "--train"), ("val", "--val"), ("model_dir", "--model-dir"),
             ("batch_size", "--batch-size"), ("steps", "--steps"), ("lr", "--lr"), ("warmup_steps", "--warmup-steps"),
             ("image_size", "--image-size"), ("checkpoint", "--checkpoint"), ("checkpoint_type", "--checkpoint-type"),
             ("augment", "--augment"), ("strategy", "--strategy"), ("target", "--target"),
             ("mixed_precision", "--mixed-precision")]
    for key, flag in order:
        v = kw.get(key)
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            v = ",".join(os.fspath(x) for x in v)
        parts += [flag, os.fspath(v) if isinstance(v, os.PathLike) else str(v)]
    if kw.get("mask_type") not in (None, "png"):
        parts += ["--mask-type", kw["mask_type"]]
    for o in kw.get("overrides") or ():
        parts += ["--set", o]
    parts += ["--out", os.fspath(kw["out"])]
    return " ".join(shlex.quote(p) for p in parts)


def header(inputs: GenerateInputs, plan: Plan, command: str, engine: str, extra: Sequence[str] = ()) -> List[str]:
    """The comment block a generated file starts with."""
    lm = inputs.label_map
    names = ", ".join(lm.names[:8]) + (", ..." if len(lm) > 8 else "")
    lines = [
        f"Generated by tfod-seg config ({engine}) from {display_template(inputs.template)}; edit with",
        "`tfod-seg config ... --set KEY=VALUE` rather than by hand, then `tfod-seg config --check` it.",
        f"command: {command}",
        f"label map: {inputs.label_map_path} ({len(lm)} classes: {names})",
    ]
    lines += list(extra)
    lines += plan.notes
    lines.append(f"train: tfod-seg train --pipeline_config_path {inputs.out} --model_dir {inputs.model_dir}")
    return lines


__all__ = ["GenerateInputs", "parse_augment", "parse_override", "abs_path", "load_label_map",
           "command_line", "header", "AUGMENTATIONS", "DEFAULT_SCALE"]
