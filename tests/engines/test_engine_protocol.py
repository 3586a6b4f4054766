"""The Engine protocol, the registry and the one place engine-only options are rejected."""

import json

import pytest

from tfod_seg.cli import main
from tfod_seg.engines import engine_for, engine_names, get_engine, register_engine
from tfod_seg.engines.base import (Engine, EvalResult, EvaluateOptions, ExportOptions, TrainOptions, TrainSummary,
                                   check_supported, unsupported_flags)
from tfod_seg.engines.progress import TrainEvent
from tfod_seg.engines.tfod import runner
from tfod_seg.errors import UserError


def test_registry_resolves_names_and_files(tmp_path):
    assert set(engine_names()) >= {"garden", "tfod"}
    for name in ("garden", "tfod"):
        engine = get_engine(name)
        assert isinstance(engine, Engine) and engine.name == name
        assert get_engine(name) is engine  # created once
    cfg = tmp_path / "p.config"
    cfg.write_text("model {}\n")
    assert engine_for(cfg).name == "tfod"
    with pytest.raises(UserError, match="'nope' is not an engine; expected one of garden, tfod"):
        get_engine("nope")


def test_a_new_engine_is_one_registration(tmp_path):
    class Echo:
        name, label, hint = "echo", "an echo config", "nothing to do"

        def train(self, options, on_progress=None):
            check_supported(self, options)
            return TrainSummary(engine="echo", model_dir=options.model_dir, total_steps=options.num_train_steps)

        def evaluate(self, options, on_progress=None):
            return EvalResult(metrics={})

        def export(self, options):
            raise NotImplementedError

    register_engine("echo", Echo)
    try:
        cfg = tmp_path / "x.yaml"
        cfg.write_text("")
        summary = engine_for(cfg, "echo").train(TrainOptions(str(cfg), "m", num_train_steps=3))
        assert summary.to_json()["total_steps"] == 3
        with pytest.raises(UserError, match="--use_tpu: TFOD2-only flag"):
            engine_for(cfg, "echo").train(TrainOptions(str(cfg), "m", use_tpu=True))
    finally:
        from tfod_seg import engines

        engines._REGISTRY.pop("echo")


@pytest.mark.parametrize("engine, options, flags", [
    ("garden", TrainOptions("c", "m", use_tpu=True, sample_1_of_n_eval_examples=2, tfod_python="/p"),
     ["--sample_1_of_n_eval_examples", "--use_tpu", "--tfod-python"]),
    ("garden", TrainOptions("c", "m", mixed_precision=True, init_checkpoint="x", strategy="cpu"), []),
    ("tfod", TrainOptions("c", "m", mixed_precision=True, init_checkpoint="x", strategy="cpu"),
     ["--strategy cpu", "--mixed_precision", "--checkpoint"]),
    ("tfod", TrainOptions("c", "m", strategy="tpu", use_tpu=True, num_workers=2), []),
    ("garden", EvaluateOptions("c", "d", model_dir="m", log_file="l"), ["--model_dir", "--log_file"]),
    ("tfod", EvaluateOptions("c", "d", model_dir="m", once=True), []),
    ("garden", ExportOptions("c", "d", "o", config_override="x"), ["--config_override"]),
])
def test_engine_only_options_are_named(engine, options, flags):
    assert unsupported_flags(engine, options) == flags


def test_cli_rejects_garden_flags_on_a_tfod_config(tmp_path, capsys):
    cfg = tmp_path / "pipeline.config"
    cfg.write_text("model { faster_rcnn { num_classes: 1 } }\n")
    rc = main(["train", "--pipeline_config_path", str(cfg), "--model_dir", str(tmp_path / "m"),
               "--mixed_precision", "--checkpoint", "ck"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "--mixed_precision, --checkpoint: Model Garden-only flag(s), but the engine is tfod" in err


def test_tfod_engine_passes_tfod2_flags_and_summarises_the_log(tmp_path, monkeypatch):
    seen = {}

    def fake_run_job(mode, flags, *, tfod_python=None, on_progress=None, log_path=None):
        seen.update(mode=mode, flags=flags, log_path=log_path)
        events = [TrainEvent(10, 30, loss=2.0, steps_per_sec=1.0), TrainEvent(30, 30, loss=1.0, steps_per_sec=2.0)]
        for e in events:
            on_progress(e)
        return runner.RunOutcome(mode, log_path, 12.5, events=events)

    monkeypatch.setattr(runner, "run_job", fake_run_job)
    got = []
    summary = get_engine("tfod").train(
        TrainOptions("p.config", str(tmp_path / "m"), num_train_steps=30, strategy="tpu", tpu_name="t1"),
        on_progress=got.append)
    assert seen["mode"] == "train" and seen["log_path"] == str(tmp_path / "m" / "train.log")
    assert seen["flags"]["use_tpu"] is True and seen["flags"]["tpu_name"] == "t1"
    assert seen["flags"]["num_workers"] is None and seen["flags"]["num_train_steps"] == 30
    assert [e.step for e in got] == [10, 30]
    assert (summary.engine, summary.final_step, summary.total_steps, summary.trained_steps) == ("tfod", 30, 30, 20)
    assert summary.final_loss == 1.0 and summary.train_seconds == 12.5
    json.dumps(summary.to_json())


def test_eval_result_json_is_the_flat_metrics_file():
    first = EvalResult(metrics={"mask_AP": 0.5}, step=10, checkpoint="ck-10", eval_seconds=1.0)
    last = EvalResult(metrics={"mask_AP": 0.6, "box_AP": 0.4}, step=20, checkpoint="ck-20", eval_seconds=2.0,
                      history=[first])
    assert last.to_json() == {"mask_AP": 0.6, "box_AP": 0.4, "step": 20, "checkpoint": "ck-20", "eval_seconds": 2.0,
                              "history": [{"mask_AP": 0.5, "step": 10, "checkpoint": "ck-10", "eval_seconds": 1.0}]}
    assert EvalResult(metrics={"AP": 1.0}).to_json() == {"AP": 1.0}
