import io

import pytest

from tfod_seg.engines import resolve_engine
from tfod_seg.engines.progress import TrainEvent
from tfod_seg.errors import ConfigError, UserError


@pytest.mark.parametrize("name, text, engine", [
    ("a.yaml", "", "garden"),
    ("a.yml", "", "garden"),
    ("pipeline.config", "", "tfod"),
    ("p.pbtxt", "", "tfod"),
    ("exp.cfg", "# tfod-seg experiment: maskrcnn_resnetfpn_coco\ntask:\n  model: {}\n", "garden"),
    ("exp.cfg", "trainer:\n  train_steps: 3\n", "garden"),
    ("noext", "model {\n  faster_rcnn {\n  }\n}\n", "tfod"),
])
def test_engine_follows_the_config(tmp_path, name, text, engine):
    path = tmp_path / name
    path.write_text(text)
    assert resolve_engine(path) == engine


def test_explicit_engine_wins_and_is_checked(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("")
    assert resolve_engine(path, "tfod") == "tfod"
    with pytest.raises(UserError, match="garden, tfod"):
        resolve_engine(path, "detectron")


def test_unrecognisable_config_is_a_config_error(tmp_path):
    path = tmp_path / "notes.cfg"
    path.write_text("hello\n")
    with pytest.raises(ConfigError, match="--engine"):
        resolve_engine(path)


def test_train_display_renders_step_loss_rate_eta():
    from tfod_seg.cli._train_display import TrainDisplay, describe, format_eta

    assert format_eta(95) == "1:35" and format_eta(3725) == "1:02:05" and format_eta(None) == "?"
    ev = TrainEvent(step=200, total_steps=400, loss=1.2345, steps_per_sec=2.1, eta_seconds=95.2,
                    extra={"learning_rate": 0.01})
    assert describe(ev) == "step 200/400 loss 1.234 2.10 steps/s ETA 1:35 lr 0.01"
    out = io.StringIO()
    display = TrainDisplay(log_lines=True, stream=out)
    display(TrainEvent(step=0, total_steps=400))
    display(ev)
    lines = out.getvalue().splitlines()
    assert lines == ["train: step 0/400 ETA ?", "train: " + describe(ev)]
    assert not TrainEvent(1, 2, loss=float("nan")).loss_is_finite
