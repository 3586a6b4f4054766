"""train --time_budget / --eval_every / --patience and export --checkpoint best, on the tiny model.

The budget runs use a clock that advances 0.5 s per training step (and stands still otherwise),
so the measured rate is exactly 2 steps/s and the fitted total is the same on any machine; the
training itself is real. Wall-clock timing of budgets is measured by the demo, not asserted here.
"""

import json
import os

import pytest

from tests.garden_fixtures import TINY_STEPS, copy_model_dir
from tfod_seg.cli import main
from tfod_seg.engines.garden.train import train


class StepClock:
    """0.5 s per global step: the rate after warm-up is 2 steps/s whatever the machine."""

    def __init__(self, step):
        self.step = step
        self.events = []

    def __call__(self):
        return 1000.0 + 0.5 * self.step

    def on_progress(self, event):
        self.events.append(event)
        self.step = event.step


def test_time_budget_fits_total_and_schedule_and_resume_keeps_it(tiny_trained_model, tmp_path):
    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "m"))
    clock = StepClock(TINY_STEPS)
    # Budget 30 s from step 40 (clock 1020): loop 40->50 traces (not timed), 50->60 measures 2 steps/s;
    # at step 60 (clock 1030) 30 - 10 - 3 s reserve = 17 s left = 34 steps -> total 94.
    r = train(tiny_trained_model.config, model_dir, strategy="cpu", time_budget="30s", clock=clock,
              on_progress=clock.on_progress)
    assert (r.final_step, r.total_steps, r.measured_steps_per_sec) == (94, 94, 2.0)
    assert r.stop_reason == "time budget: schedule fitted to 94 steps"
    assert os.path.basename(r.checkpoint) == "ckpt-94"
    # the loop keeps the config's checkpoint cadence (every 20 steps) besides the last checkpoint
    import tensorflow as tf

    kept = [int(p.rsplit("-", 1)[1]) for p in tf.train.get_checkpoint_state(model_dir).all_model_checkpoint_paths]
    assert kept[-1] == 94 and any(40 < s < 94 for s in kept), kept
    with open(os.path.join(model_dir, "schedule.json")) as f:
        saved = json.load(f)
    assert saved["total_steps"] == 94 and saved["time_budget_seconds"] == 30.0
    # a complete schedule: the cosine decays to its end value (0) exactly at the fitted total
    lrs = [e.extra["learning_rate"] for e in clock.events if "learning_rate" in e.extra]
    assert clock.events[-1].step == 94 and lrs[-1] <= 1e-6 < lrs[0]
    assert all(e.total_steps == 94 for e in clock.events[3:])  # progress follows the fitted total
    # Resume without flags keeps the fitted schedule: its total is already reached.
    again = train(tiny_trained_model.config, model_dir, strategy="cpu")
    assert again.already_done and again.total_steps == 94


def test_eval_every_keeps_best_patience_stops_and_export_best(tiny_trained_model, tmp_path, capsys):
    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "m"))
    # min_delta 1.0 cannot be reached: the second evaluation ends training (patience 1).
    rc = main(["train", "--pipeline_config_path", tiny_trained_model.config, "--model_dir", model_dir,
               "--strategy", "cpu", "--num_train_steps", "200", "--eval_every", "10", "--patience", "1",
               "--min_delta", "1.0"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "stopped: early stopping: mask_AP did not improve by >= 1 in 1 evaluation(s)" in err
    assert "trained steps 40 -> 60 of 200" in err
    with open(os.path.join(model_dir, "best", "best.json")) as f:
        best = json.load(f)
    with open(os.path.join(model_dir, "best", "info.json")) as f:  # Model Garden's own record
        info = json.load(f)
    assert best["metric"] == "mask_AP" and best["step"] in (50, 60) and best["step"] == info["best_ckpt_global_step"]
    assert best["value"] == pytest.approx(info["mask_AP"]) and os.path.exists(best["checkpoint"] + ".index")
    assert f"best checkpoint: {best['checkpoint']}" in err

    out = str(tmp_path / "exported")
    rc = main(["export", "--pipeline_config_path", tiny_trained_model.config, "--trained_checkpoint_dir", model_dir,
               "--output_directory", out, "--checkpoint", "best"])
    assert rc == 0 and os.path.isdir(os.path.join(out, "saved_model"))
    rc = main(["export", "--pipeline_config_path", tiny_trained_model.config, "--trained_checkpoint_dir",
               tiny_trained_model.model_dir, "--output_directory", out, "--checkpoint", "best"])
    assert rc == 2 and "train with --eval_every" in capsys.readouterr().err


def test_patience_needs_eval_every(tiny_trained_model, tmp_path, capsys):
    rc = main(["train", "--pipeline_config_path", tiny_trained_model.config, "--model_dir", str(tmp_path / "m"),
               "--patience", "2"])
    assert rc == 2 and "--patience and --min_delta need --eval_every" in capsys.readouterr().err
