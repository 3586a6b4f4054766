"""`run` end to end against a fake TFOD2 interpreter (a script printing a canned log), the
command it builds, and how the interpreter is found. No TFOD2 needed."""

import os
import stat
import sys
import textwrap

import pytest

from tfod_seg.engines.tfod import interpreter, run
from tfod_seg.engines.tfod.launcher import READY_MARKER
from tfod_seg.engines.tfod.runner import LAUNCHER, build_command
from tfod_seg.errors import EngineError, UserError

CONFIG = """model { faster_rcnn { num_classes: 1 } }
train_config { batch_size: 1 num_steps: 30 }
eval_input_reader { label_map_path: "LABELS" }
"""

TRAIN_OUTPUT = f"""{READY_MARKER} object_detection.model_main_tf2 (aliases: case, cond, while_loop)
INFO:tensorflow:Step 10 per-step time 1.000s
INFO:tensorflow:{{'Loss/total_loss': 2.5,
 'learning_rate': 0.01}}
INFO:tensorflow:Step 20 per-step time 1.000s
INFO:tensorflow:{{'Loss/total_loss': 1.5,
 'learning_rate': 0.01}}
"""

FAIL_OUTPUT = f"""{READY_MARKER} object_detection.model_main_tf2
Traceback (most recent call last):
  File "model_lib_v2.py", line 1, in train_loop
ValueError: Groundtruth instance masks not provided. Please configure input reader.
"""


def fake_python(tmp_path, output, code=0, probe_ok=True):
    """An executable standing in for the TFOD2 interpreter: answers the object_detection probe,
    records its argv, prints ``output`` and exits with ``code``."""
    (tmp_path / "out.txt").write_text(output)
    script = tmp_path / "fake-python"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        if [ "$1" = "-c" ]; then exit {0 if probe_ok else 3}; fi
        echo "$@" > "{tmp_path}/argv.txt"
        cat "{tmp_path}/out.txt"
        exit {code}
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


@pytest.fixture
def setup(tmp_path):
    labels = tmp_path / "label_map.pbtxt"
    labels.write_text("item { id: 1 name: 'a' }\n")
    config = tmp_path / "pipeline.config"
    config.write_text(CONFIG.replace("LABELS", str(labels)))
    return tmp_path, str(config)


def test_train_streams_progress_and_saves_log(setup):
    tmp_path, config = setup
    python = fake_python(tmp_path, TRAIN_OUTPUT)
    events = []
    rc = run("train", {"pipeline_config_path": config, "model_dir": str(tmp_path / "run"),
                       "checkpoint_every_n": 10, "use_tpu": False, "tpu_name": None},
             tfod_python=python, on_progress=events.append)
    assert rc == 0
    assert [(e.step, e.total_steps, e.loss) for e in events] == [(10, 30, 2.5), (20, 30, 1.5)]
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[:2] == [LAUNCHER, "train"]
    assert "--log_every=1" in argv[: argv.index("--")]  # 30 steps → an event per step
    assert argv[argv.index("--") + 1:] == [f"--pipeline_config_path={config}", f"--model_dir={tmp_path / 'run'}",
                                           "--checkpoint_every_n=10", "--nouse_tpu"]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "Step 20 per-step time" in log and log.startswith("$ ")


def test_failure_raises_engine_error_with_cause_and_log_path(setup):
    tmp_path, config = setup
    python = fake_python(tmp_path, FAIL_OUTPUT, code=1)
    log_path = tmp_path / "logs" / "t.log"
    with pytest.raises(EngineError) as e:
        run("train", {"pipeline_config_path": config, "model_dir": str(tmp_path / "run")},
            tfod_python=python, log_path=str(log_path))
    msg = str(e.value)
    assert msg.startswith("TFOD2 train failed: ValueError: Groundtruth instance masks not provided.")
    assert "hint: set load_instance_masks: true" in msg
    assert msg.endswith(f"full log: {log_path}")
    assert "Traceback" in log_path.read_text()


def test_broken_interpreter_is_told_apart(setup):
    tmp_path, config = setup
    python = fake_python(tmp_path, "ImportError: cannot import name 'x'\n", code=1)
    with pytest.raises(EngineError, match="failed before TFOD2 started; rebuild it with `make tfod-env`"):
        run("train", {"pipeline_config_path": config, "model_dir": str(tmp_path / "run")}, tfod_python=python)


def test_export_copies_label_map_and_evaluate_writes_metrics(setup, monkeypatch):
    tmp_path, config = setup
    os.makedirs(tmp_path / "run")
    (tmp_path / "run" / "ckpt-2.index").write_bytes(b"")
    python = fake_python(tmp_path, f"{READY_MARKER}\nINFO:tensorflow:\t+ DetectionMasks_Precision/mAP: 0.420000\n")
    run("evaluate", {"pipeline_config_path": config, "checkpoint_dir": str(tmp_path / "run"), "once": True},
        tfod_python=python)
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[1:4] == ["evaluate", "--once", "--"] and f"--model_dir={tmp_path / 'run'}" in argv
    assert '"DetectionMasks_Precision/mAP": 0.42' in (tmp_path / "run" / "metrics.json").read_text()

    from tfod_seg.engines.tfod import traps

    out = tmp_path / "exported"
    os.makedirs(out)
    # the checkpoint above is an empty stand-in: report it as a trained one
    monkeypatch.setattr(traps, "checkpoint_step", lambda prefix: 5)
    run("export", {"pipeline_config_path": config, "trained_checkpoint_dir": str(tmp_path / "run"),
                   "output_directory": str(out), "input_type": "image_tensor"}, tfod_python=python)
    assert (out / "label_map.pbtxt").read_text() == "item { id: 1 name: 'a' }\n"
    assert "--input_type=image_tensor" in (tmp_path / "argv.txt").read_text()


@pytest.mark.parametrize(
    "mode, flags, expected",
    [
        ("train", {"model_dir": "m"}, "missing --pipeline_config_path"),
        ("train", {"pipeline_config_path": "p", "model_dir": "m", "output_directory": "x"}, "unknown flag(s) --output_directory"),
        ("export", {"pipeline_config_path": "p", "trained_checkpoint_dir": "c", "output_directory": "o", "once": True},
         "unknown flag(s) --once"),
        ("serve", {}, "mode 'serve' is not one of train, evaluate, export"),
    ],
)
def test_bad_flags(mode, flags, expected):
    with pytest.raises(UserError) as e:
        build_command(sys.executable, mode, flags)
    assert expected in str(e.value)


def test_training_flags_rejected_for_evaluate_and_checkpoint_dir_for_train(setup):
    tmp_path, config = setup
    with pytest.raises(UserError, match="--checkpoint_every_n is a training flag"):
        run("evaluate", {"pipeline_config_path": config, "checkpoint_dir": "c", "checkpoint_every_n": 5})
    with pytest.raises(UserError, match="makes model_main_tf2 evaluate instead of train"):
        run("train", {"pipeline_config_path": config, "model_dir": "m", "checkpoint_dir": "c"})


def test_interpreter_search_order(tmp_path, monkeypatch):
    good = fake_python(tmp_path, "")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = fake_python(bad_dir, "", probe_ok=False)
    monkeypatch.delenv(interpreter.ENV_VAR, raising=False)
    assert interpreter.find_tfod_python(good) == good
    monkeypatch.setenv(interpreter.ENV_VAR, good)
    assert interpreter.find_tfod_python() == good
    with pytest.raises(UserError, match="cannot import object_detection"):
        interpreter.find_tfod_python(bad)  # an explicit choice is never replaced by another
    with pytest.raises(UserError, match="is not an executable Python interpreter"):
        interpreter.find_tfod_python(str(tmp_path / "nope"))
    monkeypatch.delenv(interpreter.ENV_VAR)
    monkeypatch.setattr(interpreter, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    venv = tmp_path / ".venv-tfod" / "bin"
    venv.mkdir(parents=True)
    os.symlink(good, venv / "python")
    assert interpreter.find_tfod_python() == str(venv / "python")
    os.unlink(venv / "python")
    monkeypatch.setattr(interpreter.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="run `make tfod-env`"):
        interpreter.find_tfod_python()
