"""Time-budget arithmetic, evaluation cadence and early stopping (no TensorFlow)."""

import pytest

from tfod_seg.engines.budget import BestTracker, EvalEvery, fit_total_steps, parse_duration, schedule_scale
from tfod_seg.errors import UserError


@pytest.mark.parametrize("text, seconds", [
    ("90", 90.0), ("90s", 90.0), ("8m", 480.0), ("2h", 7200.0), ("1h30m", 5400.0), ("1.5h", 5400.0),
    ("2 min", 120.0), (45, 45.0), ("1d", 86400.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "8x", "m8", "-5", "0", "5m garbage"])
def test_bad_durations_name_the_flag(text):
    with pytest.raises(UserError, match=r"--time_budget"):
        parse_duration(text)


def test_total_fits_the_remaining_time_at_the_measured_rate():
    assert fit_total_steps(step=20, remaining_seconds=17.0, steps_per_sec=2.0) == 54
    # both limits: --num_train_steps ends first
    assert fit_total_steps(step=20, remaining_seconds=17.0, steps_per_sec=2.0, max_total=40) == 40
    # no time left: never below the step reached
    assert fit_total_steps(step=20, remaining_seconds=-5.0, steps_per_sec=2.0) == 20


def test_evaluations_on_the_way_are_paid_from_the_budget():
    # 100 s at 1 step/s from step 0, an evaluation every 25 steps costing 5 s (plus one at the end):
    # T = 100 - 5 * (T // 25 + 1)  ->  T = 80 (3 on the way + 1 final = 4 evaluations, 20 s)
    assert fit_total_steps(step=0, remaining_seconds=100.0, steps_per_sec=1.0, seconds_per_eval=5.0,
                           eval_every_steps=25) == 80
    # time-based evaluations: one per 30 s of training, 2 s each
    total = fit_total_steps(step=0, remaining_seconds=100.0, steps_per_sec=1.0, seconds_per_eval=2.0,
                            eval_every_seconds=30.0)
    assert total + 2.0 * (total // 30 + 1) <= 100.0 < (total + 1) + 2.0 * ((total + 1) // 30 + 1) + 2.0


def test_schedule_scale_maps_the_total_onto_the_schedule_length():
    assert schedule_scale(400, 200) == 2.0 and schedule_scale(400, 800) == 0.5
    with pytest.raises(ValueError):
        schedule_scale(0, 10)


def test_eval_every_steps_or_duration():
    by_steps = EvalEvery.parse("200")
    assert by_steps == EvalEvery(steps=200)
    assert not by_steps.due(199, 0, 1e9) and by_steps.due(200, 0, 0.0) and not by_steps.due(399, 200, 0.0)
    by_time = EvalEvery.parse("2m")
    assert by_time == EvalEvery(seconds=120.0)
    assert by_time.due(5, 0, 120.0) and not by_time.due(500, 0, 119.0)
    assert EvalEvery.parse(None) is None
    with pytest.raises(UserError, match="--eval_every"):
        EvalEvery.parse("often")


def test_best_and_patience_with_min_delta():
    t = BestTracker(metric="mask_AP", patience=2, min_delta=0.01)
    assert t.update(0.50, 100) is True  # first value is the best
    assert t.update(0.505, 200) is True and t.bad_evals == 1  # better (kept) but not by min_delta
    assert t.update(0.49, 300) is False and t.bad_evals == 2 and t.should_stop
    assert (t.best, t.best_step) == (0.505, 200)
    t2 = BestTracker(metric="validation_loss", mode="min", patience=1)
    assert t2.update(2.0, 1) and t2.update(1.5, 2) and not t2.should_stop
    assert not t2.update(float("nan"), 3) and t2.should_stop
    with pytest.raises(UserError, match="--patience 0"):
        BestTracker(patience=0)
