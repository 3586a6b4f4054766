"""The demo orchestration (`tfod_seg.demo.run.run_demo`) and `tfod-seg demo`.

A real reduced demo takes minutes on 2 cores (training a 128 px model, tracing the export),
so here the three model-building stages reuse the session's tiny trained model and its
export (tests/garden_fixtures.py); every other stage (dataset, conversion, config generation,
inference with the real export on the held-out images, scoring, report) runs for real.
The full demo is `make demo`; its AP and time are measured numbers, not test assertions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest

from tfod_seg.engines.base import ExportResult
from tfod_seg.errors import UserError


@pytest.fixture
def reuse_tiny_model(monkeypatch, tiny_trained_model, tiny_export):
    """Replace train / export with copies of the session's tiny model and export; record what
    the demo passed to them."""
    import tfod_seg.engines.garden.export as export_mod
    import tfod_seg.engines.garden.train as train_mod

    calls = {}

    def fake_train(config, model_dir, *, num_train_steps=None, time_budget=None, eval_every=None,
                   budget_reserve=None, on_progress=None, **kw):
        calls["train"] = (config, model_dir, num_train_steps)
        calls["budget"] = (time_budget, eval_every, budget_reserve(2.0))
        shutil.copytree(tiny_trained_model.model_dir, model_dir)
        best = {"metric": "mask_AP", "value": 0.2, "step": tiny_trained_model.steps, "checkpoint": "x",
                "metrics": {"box_AP": 0.25, "mask_AP": 0.2}}
        return dataclasses.replace(tiny_trained_model.result, model_dir=model_dir, best=best,
                                   stop_reason="time budget: schedule fitted to 40 steps")

    def fake_export(config, trained_checkpoint_dir, output_directory, *, input_type="image_tensor"):
        calls["export"] = (config, trained_checkpoint_dir, output_directory)
        shutil.copytree(tiny_export.output_directory, output_directory)
        return ExportResult(engine="garden", output_directory=output_directory,
                            saved_model=os.path.join(output_directory, "saved_model"), input_type=input_type)

    monkeypatch.setattr(train_mod, "train", fake_train)
    monkeypatch.setattr(export_mod, "export", fake_export)
    return calls


@pytest.mark.slow
def test_run_demo_writes_every_output(tmp_path, reuse_tiny_model, tiny_trained_model):
    from tfod_seg.demo.run import STAGES, run_demo

    class Progress:
        def __init__(self):
            self.n, self.names = 0, []

        def update(self, n):
            self.n += n

        def set_postfix_str(self, s):
            self.names.append(s)

    out = tmp_path / "demo"
    progress = Progress()
    metrics = run_demo(out, num_images=12, image_size=tiny_trained_model.image_size, num_steps=7,
                       val_fraction=0.34, seed=3, progress=progress)

    assert progress.n == len(STAGES) and progress.names == list(STAGES)
    # The model stages got the generated config and the demo's folders.
    config = str(out / "pipeline.yaml")
    assert reuse_tiny_model["train"] == (config, str(out / "model"), 7)
    budget, eval_every, reserve = reuse_tiny_model["budget"]
    assert 0 < budget <= 480 and eval_every is None  # the demo's 8 minutes; the score stage evaluates
    assert reserve > 0  # seconds kept for the stages after training
    assert reuse_tiny_model["export"] == (config, str(out / "model"), str(out / "exported"))
    with open(config, encoding="utf-8") as f:
        text = f.read()
    assert "train_steps: 7" in text and str(out / "records" / "train-") in text

    assert len(list((out / "dataset").glob("*.json"))) == 12
    assert list((out / "records").glob("train-*.tfrecord")) and list((out / "records").glob("val-*.tfrecord"))
    n_val = metrics["num_val_images"]
    assert n_val >= 1 and metrics["num_train_images"] + n_val == 12
    assert len(list((out / "predictions" / "overlays").glob("*.png"))) == n_val
    assert (out / "predictions" / "coco" / "results.json").is_file()
    assert list((out / "score").glob("pr_segm_*.png")) and (out / "score" / "metrics.json").is_file()

    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for key in ("box_AP", "box_AP50", "mask_AP", "mask_AP50"):
        assert 0.0 <= on_disk[key] <= 1.0, key
    assert set(on_disk["stage_seconds"]) == set(STAGES)
    stages = on_disk["stage_seconds"]  # each rounded to 0.01 s, as is the total
    assert on_disk["wall_seconds"] >= sum(stages.values()) - 0.005 * (len(stages) + 1)
    assert "checkpoint_eval" not in on_disk
    assert on_disk["train_stop_reason"].startswith("time budget") and on_disk["time_budget_seconds"] == 480
    # The headline numbers are the export's score on the held-out split.
    scored = json.loads((out / "score" / "metrics.json").read_text())
    assert on_disk["mask_AP"] == pytest.approx(scored["segm"]["AP"])
    assert on_disk["box_AP"] == pytest.approx(scored["bbox"]["AP"])

    report = (out / "report.md").read_text()
    assert f"{on_disk['mask_AP']:.3f}" in report and "score/pr_segm_iou50.png" in report
    assert "predictions/overlays/" in report
    for stage in STAGES[:-1]:
        assert f"| {stage} |" in report
    assert (out / ".tfod-seg-demo").is_file()  # marks the folder as a demo output (re-runnable)


def test_out_dir_rerun_clears_demo_files_only(tmp_path):
    from tfod_seg.demo.run import _prepare_out_dir

    out = tmp_path / "demo"
    _prepare_out_dir(str(out))
    (out / "model").mkdir()
    (out / "model" / "ckpt-1.index").write_text("old")
    (out / "metrics.json").write_text("{}")
    (out / "mine.txt").write_text("keep")
    _prepare_out_dir(str(out))
    assert sorted(p.name for p in out.iterdir()) == [".tfod-seg-demo", "mine.txt"]


def test_out_dir_with_only_the_demo_log_counts_as_new(tmp_path):
    from tfod_seg.demo.run import _prepare_out_dir

    out = tmp_path / "demo"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "demo.log").write_text("this run's log, opened before the demo starts\n")
    _prepare_out_dir(str(out))
    assert (out / ".tfod-seg-demo").is_file() and (out / "logs" / "demo.log").is_file()


def test_run_demo_refuses_a_foreign_folder(tmp_path):
    from tfod_seg.demo.run import run_demo

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"exists and is not empty"):
        run_demo(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(UserError, match=r"--num-images 1"):
        run_demo(tmp_path / "new", num_images=1)


def test_cli_demo_prints_mask_ap_and_wall_time(monkeypatch, tmp_path, capsys):
    import tfod_seg.demo.run as demo
    from tfod_seg.cli import main

    seen = {}

    def fake_run_demo(out_dir, *, progress=None, on_train_progress=None, **kw):
        seen.update(kw, out_dir=out_dir)
        for name in demo.STAGES:
            progress.set_postfix_str(name)
            progress.update(1)
        return {"box_AP": 0.71, "mask_AP": 0.66, "mask_AP50": 0.93, "wall_seconds": 301.5, "num_val_images": 40,
                "paths": {"report": str(tmp_path / "report.md")}}

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    assert main(["demo", "--out", str(tmp_path / "d"), "--num-images", "50", "--num-steps", "20"]) == 0
    captured = capsys.readouterr()
    assert seen == {"out_dir": str(tmp_path / "d"), "seed": 0, "num_images": 50, "num_steps": 20}
    assert "time budget 8:00" in captured.err
    assert "mask AP 0.660" in captured.out and "box AP 0.710" in captured.out
    assert "wall time 5 min 2 s" in captured.out
    assert f"[{len(demo.STAGES)}/{len(demo.STAGES)}] report done" in captured.err


def test_post_train_reserve_is_the_measured_startup_times_the_factor():
    from tfod_seg.demo import run as demo_run

    now = [100.0]
    reserve = demo_run._PostTrainReserve(start=70.0, clock=lambda: now[0])
    assert reserve(None) == 0.0  # no rate yet: training's first loop is still running
    assert reserve(5.0) == pytest.approx(demo_run.POST_TRAIN_FACTOR * 30.0)  # 30 s from the start
    now[0] = 400.0  # later calls keep the start-up measured at the first
    assert reserve(2.0) == pytest.approx(demo_run.POST_TRAIN_FACTOR * 30.0)
