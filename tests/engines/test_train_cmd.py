"""`tfod-seg train` / `tfod-seg evaluate` on the garden engine (CLI layer over the library)."""

import json

from tests.garden_fixtures import TINY_STEPS, copy_model_dir
from tfod_seg.cli import main


def test_train_cli_says_total_already_reached_and_exits_0(tiny_trained_model, tmp_path, capsys):
    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "m"))
    rc = main(["train", "--pipeline_config_path", tiny_trained_model.config, "--model_dir", model_dir,
               "--num_train_steps", str(TINY_STEPS), "--strategy", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0
    assert f"already at step {TINY_STEPS}" in err and "a total" in err


def test_train_cli_rejects_tfod_only_flags_for_garden(tiny_trained_model, tmp_path, capsys):
    rc = main(["train", "--pipeline_config_path", tiny_trained_model.config, "--model_dir", str(tmp_path / "m"),
               "--use_tpu", "--sample_1_of_n_eval_examples", "2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--sample_1_of_n_eval_examples, --use_tpu: TFOD2-only" in err
    assert "Traceback" not in err


def test_train_cli_missing_config_is_a_user_error(tmp_path, capsys):
    rc = main(["train", "--pipeline_config_path", str(tmp_path / "nope.yaml"), "--model_dir", str(tmp_path / "m")])
    assert rc == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_evaluate_cli_once_prints_box_and_mask_metrics(tiny_trained_model, tmp_path, capsys):
    model_dir = copy_model_dir(tiny_trained_model, str(tmp_path / "m"))
    out_json = tmp_path / "metrics.json"
    rc = main(["evaluate", "--pipeline_config_path", tiny_trained_model.config, "--checkpoint_dir", model_dir,
               "--once", "--metrics_json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"(step {TINY_STEPS})" in out
    header, ap_line = out.splitlines()[1:3]
    assert header.split() == ["metric", "box", "mask"] and ap_line.split()[0] == "AP"
    metrics = json.loads(out_json.read_text())
    assert {"box_AP", "mask_AP", "mask_AP50"} <= set(metrics)
