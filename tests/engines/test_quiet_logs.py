"""Quiet terminal, complete log file (`tfod_seg.cli._quiet`): TensorFlow's noise goes to the log."""

import logging
import os
import subprocess
import sys
import types

from tests.garden_fixtures import REPO, copy_model_dir
from tfod_seg.cli._quiet import NOISE, _ConsoleFilter, log_path_for

NOISE_SAMPLES = [
    "2026-11-30 04:59:48.969110: E external/local_xla/xla/stream_executor/cuda/cuda_platform.cc:51] failed call to "
    "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "W0000 00:00:1796014192.471186   31352 op_level_cost_estimator.cc:699] Error in PredictCost() for the op: op: "
    '"CropAndResize" attr { key: "T" value { type: DT_FLOAT } }',
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
]
# What must never reach the terminal of a CPU-only run (issue: quiet by default).
NOISE_PATTERNS = ("cuInit", "PredictCost", "optimizer.iter", "beta_1", "Skipping full serialization",
                  "Value in checkpoint could not be found")


def test_noise_lines_are_recognised_and_user_lines_are_not():
    for line in NOISE_SAMPLES:
        assert NOISE.search(line), line
    for line in ("error: pipeline.yaml: task.model.num_classes is 3", "train: step 10/40 loss 1.2",
                 "WARNING tfod_seg.engines.garden.train: init_checkpoint ignored", "100%|#####| 40/40"):
        assert not NOISE.search(line), line


def test_console_shows_own_warnings_and_third_party_errors_only():
    keep = _ConsoleFilter().filter

    def record(name, level, msg="m"):
        return logging.LogRecord(name, level, __file__, 1, msg, None, None)

    assert keep(record("tfod_seg.engines.garden.train", logging.WARNING))
    assert keep(record("tensorflow", logging.ERROR))
    assert not keep(record("tensorflow", logging.WARNING, "Value in checkpoint could not be found: optimizer.iter"))
    assert not keep(record("absl", logging.WARNING))
    assert not keep(record("py.warnings", logging.WARNING))


def test_log_file_sits_beside_the_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = types.SimpleNamespace(command="train", model_dir=str(tmp_path / "m"))
    assert log_path_for(args) == str(tmp_path / "m" / "logs" / "train.log")
    args = types.SimpleNamespace(command="train", model_dir="gs://bucket/run")
    assert log_path_for(args) == str(tmp_path / "cache" / "tfod-seg" / "logs" / "train.log")
    args = types.SimpleNamespace(command="export", output_directory=str(tmp_path / "e"))
    assert log_path_for(args) == str(tmp_path / "cache" / "tfod-seg" / "logs" / "export.log")


def test_evaluate_subprocess_stderr_has_no_noise_and_the_log_file_has_it(tiny_trained_model, tmp_path):
    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "m"))
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    p = subprocess.run([sys.executable, "-m", "tfod_seg", "evaluate", "--pipeline_config_path",
                        tiny_trained_model.config, "--checkpoint_dir", model_dir, "--once"],
                       capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "mask" in p.stdout
    for pattern in NOISE_PATTERNS:
        assert pattern not in p.stderr, (pattern, p.stderr[-3000:])
    log = open(os.path.join(model_dir, "logs", "evaluate.log"), encoding="utf-8").read()
    assert "optimizer.iter" in log or "cuInit" in log  # the noise went to the log file
    # -v shows it all (a cheap run: TensorFlow starts, then there is no checkpoint to evaluate)
    verbose = subprocess.run([sys.executable, "-m", "tfod_seg", "-v", "evaluate", "--pipeline_config_path",
                              tiny_trained_model.config, "--checkpoint_dir", str(tmp_path / "empty"), "--once"],
                             capture_output=True, text=True, env=env, timeout=900)
    assert verbose.returncode == 2 and "no checkpoint to evaluate" in verbose.stderr
    assert "INFO tfod_seg" in verbose.stderr
