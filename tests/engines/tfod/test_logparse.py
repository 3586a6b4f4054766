"""TFOD2 log → TrainEvents, eval metrics, failure causes (no TFOD2 needed)."""

import itertools

import pytest

from tfod_seg.engines.tfod.logparse import TrainLogParser, failure_cause, parse_eval_metrics

# As model_main_tf2 prints it: TF's and absl's handlers both write each record.
TRAIN_LOG = """\
INFO:tensorflow:depth of additional conv before box predictor: 0
INFO:tensorflow:Step 10 per-step time 2.000s
I1121 22:16:55.376183 140054647061376 model_lib_v2.py:705] Step 10 per-step time 2.000s
INFO:tensorflow:{'Loss/BoxClassifierLoss/classification_loss': 0.8020917,
 'Loss/BoxClassifierLoss/mask_loss': 0.5,
 'Loss/total_loss': 1.7405035,
 'learning_rate': 0.001}
I1121 22:16:55.377337 140054647061376 model_lib_v2.py:708] {'Loss/BoxClassifierLoss/classification_loss': 0.8020917,
 'Loss/BoxClassifierLoss/mask_loss': 0.5,
 'Loss/total_loss': 1.7405035,
 'learning_rate': 0.001}
INFO:tensorflow:Step 20 per-step time 1.500s
I1121 22:17:10.376183 140054647061376 model_lib_v2.py:705] Step 20 per-step time 1.500s
INFO:tensorflow:{'Loss/total_loss': np.float32(0.9),
 'learning_rate': nan}
I1121 22:17:10.377337 140054647061376 model_lib_v2.py:708] {'Loss/total_loss': np.float32(0.9),
 'learning_rate': nan}
"""


def test_train_log_gives_one_event_per_step_with_losses_and_rate():
    ticks = itertools.count(start=100.0, step=5.0)  # each Step line is seen 5 s after the last
    got = []
    parser = TrainLogParser(40, got.append, clock=lambda: next(ticks))
    events = parser.feed_all(TRAIN_LOG.splitlines(keepends=True))
    assert [e.step for e in events] == [10, 20] and got == events
    first, second = events
    assert first.loss == pytest.approx(1.7405035)
    assert first.total_steps == 40
    assert first.extra["Loss/BoxClassifierLoss/mask_loss"] == pytest.approx(0.5)
    assert first.extra["learning_rate"] == pytest.approx(0.001)
    assert first.steps_per_sec == pytest.approx(0.5)  # TFOD2's per-step time for the first one
    assert first.eta_seconds == pytest.approx(60.0)
    assert second.loss == pytest.approx(0.9)  # numpy >= 2 repr
    assert second.steps_per_sec == pytest.approx(10 / 5.0)  # wall clock between logged steps
    assert second.eta_seconds == pytest.approx(10.0)


def test_step_line_without_dict_still_reported():
    events = TrainLogParser(5).feed_all(["INFO:tensorflow:Step 3 per-step time 1.0s\n"])
    assert [(e.step, e.loss) for e in events] == [(3, None)]


def test_eval_metrics_parsed_last_value_wins():
    lines = [
        "INFO:tensorflow:\t+ DetectionBoxes_Precision/mAP: 0.100000",
        "I1121 22:07:46.453884 140 model_lib_v2.py:1015] \t+ DetectionMasks_Precision/mAP (large): 0.250000",
        "INFO:tensorflow:\t+ Loss/total_loss: 1.500000",
        "INFO:tensorflow:\t+ DetectionBoxes_Precision/mAP: 0.300000",
        "INFO:tensorflow:Eval metrics at step 6",
    ]
    assert parse_eval_metrics(lines) == {
        "DetectionBoxes_Precision/mAP": pytest.approx(0.3),
        "DetectionMasks_Precision/mAP (large)": pytest.approx(0.25),
        "Loss/total_loss": pytest.approx(1.5),
    }


def test_failure_cause_is_last_exception_line_with_hint():
    lines = [
        "Traceback (most recent call last):",
        '  File "exporter_main_v2.py", line 164, in main',
        "    raise AssertionError(",
        "AssertionError: Found 279 Python objects that were not bound to checkpointed values, likely ...",
    ]
    cause = failure_cause(lines)
    assert cause.startswith("AssertionError: Found 279 Python objects")
    assert "ckpt-1" in cause and "hint:" in cause


def test_failure_cause_joins_short_tf_error_with_next_line_and_handles_absl_flags():
    lines = ["tensorflow.python.framework.errors_impl.NotFoundError:", "/x/train-*.tfrecord; No such file"]
    assert failure_cause(lines) == (
        "tensorflow.python.framework.errors_impl.NotFoundError: /x/train-*.tfrecord; No such file")
    assert failure_cause(["FATAL Flags parsing error: Unknown command line flag 'bogus'"]).startswith(
        "FATAL Flags parsing error")
    assert failure_cause(["all good", "    raise ValueError("]) is None
