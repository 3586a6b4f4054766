"""Known TFOD2 traps, caught before `model_main_tf2` / `exporter_main_v2` start.

Each check raises a `UserError` (`ConfigError` for the pipeline.config, `EngineError` for the
state of a model directory) whose message names the file, the field and what to do, or returns
notes worth printing:

* export with no trained checkpoint, or with only ``ckpt-1``: TFOD2's train loop saves ``ckpt-1``
  at step 0, before the first step has built the model's variables, and exporting it fails with
  "Found N Python objects that were not bound to checkpointed values";
* ``mask_type`` missing on an input reader of a mask model (TFOD2 then decodes masks as
  NUMERICAL_MASKS, tfod-seg records hold PNG masks), ``load_instance_masks`` missing, and
  ``number_of_stages`` not 3 (the mask head then never runs, silently);
* ``fine_tune_checkpoint_type`` wrong for the checkpoint's content (a detection checkpoint read
  as ``classification`` or the reverse), or a placeholder / missing checkpoint;
* ``--num_train_steps`` (or ``train_config.num_steps``) not above the step the model directory
  already reached (TFOD2 then does nothing), or 0 (TFOD2's TF2 loop trains 0 steps);
* evaluation with no checkpoint to evaluate (TFOD2 would wait up to ``eval_timeout``, an hour
  by default), and a note on continuous evaluation without ``--once``.

Reading a checkpoint's step or variable names needs TensorFlow (imported only then); the
readers are parameters so tests and callers can pass their own.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Callable, List, Optional, Sequence

from tfod_seg import io
from tfod_seg.config.generate import input_reader_paths
from tfod_seg.errors import ConfigError, EngineError
from tfod_seg.pbtxt import PbtxtDocument
from tfod_seg.records.metadata import find_report, read_report

logger = logging.getLogger(__name__)

FASTER_RCNN = "model.faster_rcnn"
MASK_PREDICTOR = f"{FASTER_RCNN}.second_stage_box_predictor.mask_rcnn_box_predictor"
FINE_TUNE_TYPES = ("classification", "detection", "full")
_MASK_TYPE_OF_REPORT = {"png": "PNG_MASKS", "numerical": "NUMERICAL_MASKS"}
_CKPT_LINE_RE = re.compile(r'^\s*model_checkpoint_path:\s*"(.*)"\s*$', re.M)


# -- checkpoints ----------------------------------------------------------------------------
def latest_checkpoint(directory: str | os.PathLike) -> Optional[str]:
    """The prefix of the newest checkpoint in ``directory`` (``.../ckpt-3``), or ``None``.

    Reads the ``checkpoint`` state file like ``tf.train.latest_checkpoint`` (no TensorFlow),
    falling back to the highest-numbered ``ckpt-N.index``; a prefix counts only when its
    ``.index`` file exists.
    """
    directory = os.fspath(directory)
    state = io.join(directory, "checkpoint")
    if io.isfile(state):
        m = _CKPT_LINE_RE.search(io.read_bytes(state, EngineError, "checkpoint state file").decode("utf-8", "replace"))
        if m:
            prefix = io.resolve(m.group(1), directory)
            if io.isfile(prefix + ".index"):
                return prefix
    numbered = []
    for name in (io.listdir(directory) if io.isdir(directory) else []):
        if not (name.endswith(".index") and "-" in name):
            continue
        stem = io.join(directory, name[: -len(".index")])
        tail = stem.rsplit("-", 1)[1]
        if tail.isdigit():
            numbered.append((int(tail), stem))
    return max(numbered)[1] if numbered else None


def checkpoint_step(prefix: str) -> Optional[int]:
    """The global step saved in a TFOD2 training checkpoint (``step`` object), or ``None``."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    key = "step/.ATTRIBUTES/VARIABLE_VALUE"
    if not reader.has_tensor(key):
        return None
    return int(reader.get_tensor(key))


def checkpoint_variable_names(prefix: str) -> List[str]:
    """Names of the variables in a checkpoint (``model/_feature_extractor.../kernel/...``)."""
    import tensorflow as tf

    return [name for name, _ in tf.train.list_variables(prefix)]


StepReader = Callable[[str], Optional[int]]
NameReader = Callable[[str], List[str]]


def _read(reader: Optional[Callable], default: Callable, prefix: str):
    """Call a checkpoint reader; `None` without TensorFlow, `EngineError` for an unreadable file."""
    try:
        return (reader or default)(prefix)
    except ImportError:
        logger.info("TensorFlow not importable here: checkpoint %s not inspected", prefix)
        return None
    except Exception as e:  # tf.errors.OpError and friends: a corrupt or foreign checkpoint
        raise EngineError(f"{prefix}: cannot read the checkpoint ({type(e).__name__}: {str(e)[:200]})") from None


def check_export_checkpoint(trained_checkpoint_dir: str, *, read_step: Optional[StepReader] = None) -> str:
    """Return the checkpoint export will use, or raise if there is none worth exporting."""
    d = os.fspath(trained_checkpoint_dir)
    if not io.isdir(d):
        raise EngineError(f"--trained_checkpoint_dir {d}: no such directory (expected the training "
                          "--model_dir holding 'checkpoint' and ckpt-N files)")
    prefix = latest_checkpoint(d)
    if prefix is None:
        raise EngineError(f"--trained_checkpoint_dir {d}: no trained checkpoint (no 'checkpoint' file or "
                          "ckpt-N.index); train first: tfod-seg train --model_dir " + d)
    step = _read(read_step, checkpoint_step, prefix)
    if step == 0:
        raise EngineError(
            f"--trained_checkpoint_dir {d}: the latest checkpoint {io.basename(prefix)} is from step 0: "
            "TFOD2 saves it before the first training step, when the model's variables do not exist yet, "
            "and exporting it fails with 'Found N Python objects that were not bound to checkpointed "
            "values'. Train until a checkpoint after step 0 is written (at least --checkpoint_every_n "
            "steps, and --num_train_steps >= --checkpoint_every_n)")
    return prefix


def check_eval_checkpoint(checkpoint_dir: str, *, once: bool, eval_timeout: Optional[int]) -> List[str]:
    """Raise when evaluation would only wait; return notes about waiting otherwise."""
    d = os.fspath(checkpoint_dir)
    has_ckpt = io.isdir(d) and latest_checkpoint(d) is not None
    wait = 3600 if eval_timeout is None else int(eval_timeout)
    if once and not has_ckpt:
        raise EngineError(f"--checkpoint_dir {d}: no checkpoint to evaluate (no 'checkpoint' file or "
                          "ckpt-N.index); train first, or evaluate without --once to wait for one")
    notes = []
    if not once:
        if not has_ckpt:
            notes.append(f"--checkpoint_dir {d} holds no checkpoint yet: TFOD2 waits up to --eval_timeout "
                         f"({wait} s) for the first one")
        notes.append(f"continuous evaluation: TFOD2 evaluates each new checkpoint, polling every 300 s, and "
                     f"exits after --eval_timeout ({wait} s) without a new one or when the checkpoint of "
                     f"train_config.num_steps is evaluated; pass --once to evaluate the latest checkpoint "
                     f"and exit")
    return notes


def check_train_steps(doc, config_path: str, model_dir: str, num_train_steps: Optional[int], *,
                      read_step: Optional[StepReader] = None) -> int:
    """Return the step training runs to; raise when TFOD2 would train nothing."""
    if num_train_steps is not None:
        total, where = int(num_train_steps), "--num_train_steps"
    else:
        total = int(doc.get("train_config.num_steps", 0) or 0)
        where = f"{config_path}: train_config.num_steps"
    if total <= 0:
        raise ConfigError(f"{where} is {total}: TFOD2's TF2 training loop then trains 0 steps "
                          "(0 no longer means 'forever'); give --num_train_steps or set train_config.num_steps")
    prefix = latest_checkpoint(model_dir) if io.isdir(model_dir) else None
    if prefix is not None:
        step = _read(read_step, checkpoint_step, prefix)
        if step is not None and step >= total:
            raise EngineError(
                f"--model_dir {model_dir} is already at step {step} ({io.basename(prefix)}) and {where} is "
                f"{total} (a total, not 'more steps'): TFOD2 would train nothing. Give a larger "
                f"--num_train_steps to continue, or a new --model_dir to start over")
    return total


# -- the pipeline.config --------------------------------------------------------------------
def _records_report(doc, reader: str, config_path: str) -> Optional[dict]:
    """The report.json `tfod-seg convert` wrote beside the reader's records, if any."""
    base = io.dirname(io.abspath(config_path))
    patterns = [str(p) for p in doc.get_all(f"{reader}.tf_record_input_reader.input_path")]
    return read_report(find_report(patterns, base))


def is_mask_model(doc) -> bool:
    return doc.get(f"{MASK_PREDICTOR}.predict_instance_masks", False) is True


def check_mask_settings(doc, config_path: str) -> None:
    """Raise when a mask model would silently train without masks or misread them."""
    if not is_mask_model(doc):
        return
    problems = []

    def at(field):
        line = doc.line_of(field)
        return f"{config_path}:{line}" if line else config_path

    stages = doc.get(f"{FASTER_RCNN}.number_of_stages", 2)
    if stages != 3:
        problems.append(f"{at(FASTER_RCNN + '.number_of_stages')}: {FASTER_RCNN}.number_of_stages is {stages} "
                        "(default 2): with predict_instance_masks the mask head only runs with 3; set "
                        "number_of_stages: 3")
    for reader in input_reader_paths(doc):
        if doc.get(f"{reader}.load_instance_masks", False) is not True:
            problems.append(f"{at(reader)}: {reader}.load_instance_masks is not true: the mask model gets no "
                            "ground-truth masks; set load_instance_masks: true")
        mask_type = doc.get(f"{reader}.mask_type", None)
        report = _records_report(doc, reader, config_path)
        expected = _MASK_TYPE_OF_REPORT.get(report.get("mask_type")) if report else None
        if mask_type is None:
            if expected == "NUMERICAL_MASKS":
                continue  # TFOD2's default matches the records
            source = "the records' report.json says PNG masks" if expected else "tfod-seg records hold PNG masks"
            problems.append(f"{at(reader)}: {reader}.mask_type is missing, so TFOD2 decodes masks as "
                            f"NUMERICAL_MASKS, but {source}; set mask_type: PNG_MASKS (or NUMERICAL_MASKS "
                            "explicitly for records with numerical masks)")
        elif expected and str(mask_type) != expected:
            problems.append(f"{at(reader + '.mask_type')}: {reader}.mask_type is {mask_type} but the records were "
                            f"written with {report.get('mask_type')!r} masks (report.json): expected {expected}")
    if problems:
        raise ConfigError("\n".join(problems))


def fine_tune_checkpoint_type(doc) -> str:
    """The type TFOD2 uses (`config_util.update_fine_tune_checkpoint_type`)."""
    t = doc.get("train_config.fine_tune_checkpoint_type", None)
    if t:
        return str(t)
    return "detection" if doc.get("train_config.from_detection_checkpoint", False) else "classification"


def guess_checkpoint_kind(names: Sequence[str]) -> Optional[str]:
    """``"detection"`` (a TFOD2 detection model: ``model/...``), ``"classification"`` (a backbone:
    ``feature_extractor/...``), or ``None`` when the names say neither."""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if "model" in tops:
        return "detection"
    if "feature_extractor" in tops:
        return "classification"
    return None


def check_fine_tune(doc, config_path: str, model_dir: Optional[str], *,
                    list_names: Optional[NameReader] = None) -> None:
    """Raise when ``fine_tune_checkpoint(_type)`` cannot work with the checkpoint given."""
    ckpt = doc.get("train_config.fine_tune_checkpoint", None)
    if not ckpt:
        return
    ckpt = str(ckpt)
    line = doc.line_of("train_config.fine_tune_checkpoint")
    at = f"{config_path}:{line}" if line else config_path
    field = "train_config.fine_tune_checkpoint"
    if "PATH_TO_BE_CONFIGURED" in ckpt:
        raise ConfigError(f"{at}: {field} is the placeholder {ckpt!r}: give a checkpoint prefix "
                          "(e.g. pretrained/checkpoint/ckpt-0) or remove the field to train from scratch")
    ftype = fine_tune_checkpoint_type(doc)
    if ftype not in FINE_TUNE_TYPES:
        raise ConfigError(f"{at}: train_config.fine_tune_checkpoint_type is {ftype!r}; expected one of "
                          f"{', '.join(FINE_TUNE_TYPES)}")
    if "://" in ckpt:
        return
    if io.isdir(ckpt):
        prefix = latest_checkpoint(ckpt)
        hint = f" (e.g. {prefix})" if prefix else ""
        raise ConfigError(f"{at}: {field} {ckpt!r} is a directory; TFOD2 needs a checkpoint prefix{hint}")
    if not io.isfile(ckpt + ".index"):
        raise ConfigError(f"{at}: {field} {ckpt!r}: no such checkpoint (expected {ckpt}.index)")
    if model_dir and io.abspath(io.dirname(ckpt)) == io.abspath(model_dir):
        raise ConfigError(f"{at}: {field} {ckpt!r} is inside --model_dir {model_dir}; TFOD2 refuses that "
                          "(to continue training, just run train again on the same --model_dir)")
    kind = guess_checkpoint_kind(_read(list_names, checkpoint_variable_names, ckpt) or [])
    if kind == "detection" and ftype == "classification":
        how = ("is not set (TFOD2 then assumes 'classification')"
               if not doc.get("train_config.fine_tune_checkpoint_type", None) else "is 'classification'")
        raise ConfigError(f"{at}: {ckpt!r} is a detection checkpoint (variables under model/) but "
                          f"train_config.fine_tune_checkpoint_type {how}: TFOD2 would look for a "
                          "feature_extractor/ backbone in it and fail; set fine_tune_checkpoint_type: \"detection\"")
    if kind == "classification" and ftype in ("detection", "full"):
        raise ConfigError(f"{at}: {ckpt!r} is a classification (backbone) checkpoint (variables under "
                          f"feature_extractor/) but train_config.fine_tune_checkpoint_type is {ftype!r}; "
                          "set fine_tune_checkpoint_type: \"classification\"")


# -- all of them ----------------------------------------------------------------------------
def check_before(mode: str, flags: dict, *, read_step: Optional[StepReader] = None,
                 list_names: Optional[NameReader] = None) -> dict:
    """Run the traps for ``mode`` with TFOD2-named ``flags``; raise on the first one that bites.

    Returns ``{"notes": [...], "total_steps": int | None}`` (``total_steps`` for train).
    """
    config_path = os.fspath(flags["pipeline_config_path"])
    if not io.isfile(config_path):
        raise ConfigError(f"--pipeline_config_path {config_path}: no such file")
    doc = PbtxtDocument.load(config_path)
    out: dict = {"notes": [], "total_steps": None}
    if mode == "train":
        check_mask_settings(doc, config_path)
        check_fine_tune(doc, config_path, flags.get("model_dir"), list_names=list_names)
        out["total_steps"] = check_train_steps(doc, config_path, os.fspath(flags["model_dir"]),
                                               flags.get("num_train_steps"), read_step=read_step)
    elif mode == "evaluate":
        check_mask_settings(doc, config_path)
        out["notes"] = check_eval_checkpoint(os.fspath(flags["checkpoint_dir"]), once=bool(flags.get("once")),
                                             eval_timeout=flags.get("eval_timeout"))
    elif mode == "export":
        check_export_checkpoint(os.fspath(flags["trained_checkpoint_dir"]), read_step=read_step)
    return out
