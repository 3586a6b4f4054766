"""Preflight rules as tables (plain data, no TensorFlow device listing), plus reading real configs."""

from __future__ import annotations

import json
import os
import re

import pytest

from tfod_seg.engines import preflight as pf
from tfod_seg.engines.preflight import Devices, Job, PathUse, PreflightError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPU, ONE_GPU, FOUR_GPUS = Devices(), Devices(gpus=1), Devices(gpus=4)
OLD_GPU = Devices(gpus=1, gpu_compute_capability=(7, 0))
TWO_WORKERS = json.dumps({"cluster": {"worker": ["h0:2222", "h1:2222"]}, "task": {"type": "worker", "index": 1}})
GS = (PathUse("gs://b/cfg.yaml", "--pipeline_config_path"), PathUse("gs://b/run", "--model_dir"),
      PathUse("gs://b/rec/train-*", "task.train_data.input_path"))


# -- TF_CONFIG --------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, error", [
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}', None),
    ('{"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "chief", "index": 0}}', None),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}', "not valid JSON"),
    ('["worker"]', "no 'cluster' object"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "no 'cluster' object"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', "cluster.worker is 'a:1'"),
    ('{"cluster": {"worker": ["a:1"]}}', "task is None: it needs both 'type' and 'index'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}', "it needs both 'type' and 'index'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "task.type 'chief' is not in the cluster (which has worker)"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "task.index 2 is not an index into cluster.worker (2 entries: 0..1)"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}', "task.index '0'"),
])
def test_parse_tf_config(raw, error):
    if error is None:
        cfg = pf.parse_tf_config(raw)
        assert cfg.num_workers == 2 and cfg.task_type in cfg.cluster
        return
    with pytest.raises(PreflightError) as e:
        pf.parse_tf_config(raw)
    msg = str(e.value)
    assert msg.startswith("TF_CONFIG: ") and error in msg and "\n" not in msg and "expected JSON like" in msg


def test_unset_tf_config_is_none():
    assert pf.parse_tf_config(None) is None and pf.parse_tf_config("  ") is None


# -- whole jobs: one passing and one failing case per rule -------------------------------------
@pytest.mark.parametrize("job, devices, strategy, replicas", [
    (Job(strategy="tpu", paths=GS, batch=64, batch_field="b"), CPU, "tpu", 8),
    (Job(strategy="tpu", paths=GS, batch=12, batch_field="b", tpu_cores=4), CPU, "tpu", 4),
    (Job(strategy="tpu", paths=GS, batch=8, precision="bfloat16", precision_field="p"), CPU, "tpu", 8),
    (Job(strategy="mirrored", batch=8, batch_field="b"), FOUR_GPUS, "mirrored", 4),
    (Job(strategy="multi_worker", batch=4, batch_field="b", tf_config=TWO_WORKERS), CPU, "multi_worker", 2),
    (Job(strategy="multi_worker", batch=8, batch_field="b", tf_config=TWO_WORKERS), FOUR_GPUS, "multi_worker", 8),
    (Job(strategy="gpu", batch=3, batch_field="b", precision="float16", precision_field="p"), ONE_GPU, "gpu", 1),
    (Job(strategy="auto", batch=3, batch_field="b"), CPU, "cpu", 1),
    (Job(strategy="auto", batch=3, batch_field="b"), ONE_GPU, "gpu", 1),
    (Job(strategy="auto", batch=8, batch_field="b"), FOUR_GPUS, "mirrored", 4),
    (Job(strategy="auto", batch=4, batch_field="b", tf_config=TWO_WORKERS), CPU, "multi_worker", 2),
    # tfod: model_main_tf2 ignores TF_CONFIG unless --num_workers > 1
    (Job(engine="tfod", strategy="auto", batch=3, batch_field="b", tf_config=TWO_WORKERS), CPU, "cpu", 1),
    (Job(mode="export", strategy="auto", batch=3, batch_field="b"), FOUR_GPUS, "mirrored", 4),
    (Job(strategy="tpu", paths=GS, precision="auto", precision_field="p"), CPU, "tpu", 8),
])
def test_job_passes(job, devices, strategy, replicas):
    report = pf.check_job(job, devices)
    assert (report.strategy, report.replicas) == (strategy, replicas)
    assert json.loads(json.dumps(report.to_json()))["strategy"] == strategy


def test_auto_says_which_device_it_picked():
    assert pf.check_job(Job(strategy="auto"), ONE_GPU).notes[0] == "strategy auto picked gpu (1 GPU visible)"
    assert pf.check_job(Job(strategy="auto"), CPU).notes[0] == "strategy auto picked cpu (no GPU visible)"
    assert pf.check_job(Job(strategy="auto"), FOUR_GPUS).notes[0] == "strategy auto picked mirrored (4 GPUs visible)"
    assert pf.check_job(Job(strategy="cpu"), CPU).notes == ["train on CPU, 1 replica(s)"]


@pytest.mark.parametrize("job, devices, expected", [
    (Job(strategy="tpu", paths=(PathUse("cfg.yaml", "--pipeline_config_path"), PathUse("gs://b/run", "--model_dir"),
                                PathUse("/data/train-*", "task.train_data.input_path"))), CPU,
     "2 path(s) are not gs://: --pipeline_config_path cfg.yaml; task.train_data.input_path /data/train-*"),
    (Job(engine="tfod", strategy="tpu", paths=GS + (PathUse("ram://x/label_map.pbtxt", "train_input_reader.label_map_path"),)),
     CPU, "1 path(s) are not gs://: train_input_reader.label_map_path ram://x/label_map.pbtxt"),
    (Job(strategy="tpu", paths=GS, batch=6, batch_field="task.train_data.global_batch_size"), CPU,
     "task.train_data.global_batch_size 6 is not divisible by the 8 TPU cores (--num_tpu_cores) of --strategy tpu: "
     "each replica gets an equal share; use 8"),
    (Job(strategy="tpu", paths=GS, batch=20, batch_field="b", tpu_cores=8), CPU, "use 16 or 24"),
    (Job(strategy="tpu", paths=GS, precision="float16", precision_field="runtime.mixed_precision_dtype"), CPU,
     "runtime.mixed_precision_dtype float16 on a TPU: TPUs compute in bfloat16; set it to bfloat16"),
    (Job(strategy="tpu", paths=GS, tpu_cores=0), CPU, "--num_tpu_cores 0 must be positive"),
    (Job(strategy="mirrored", batch=6, batch_field="b"), FOUR_GPUS,
     "b 6 is not divisible by the 4 replicas of --strategy mirrored"),
    (Job(strategy="multi_worker", batch=6, batch_field="b", tf_config=TWO_WORKERS), FOUR_GPUS,
     "b 6 is not divisible by the 8 replicas of --strategy multi_worker"),
    (Job(strategy="multi_worker", batch=4, batch_field="b"), CPU,
     "--strategy multi_worker needs the TF_CONFIG environment variable"),
    (Job(strategy="multi_worker", tf_config="{not json"), CPU, "TF_CONFIG: not valid JSON"),
    (Job(strategy="auto", tf_config='{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}'), CPU,
     "TF_CONFIG: task.type 'ps' is not in the cluster"),
    (Job(strategy="multi_worker", num_workers=3, tf_config=TWO_WORKERS), CPU,
     "--num_workers 3 but TF_CONFIG lists 2 workers"),
    (Job(engine="tfod", strategy="auto", num_workers=2), CPU, "--strategy multi_worker needs the TF_CONFIG"),
    (Job(strategy="gpu"), CPU, "--strategy gpu but TensorFlow sees no GPU"),
    (Job(strategy="mirrored", batch=4, batch_field="b"), CPU, "--strategy mirrored but TensorFlow sees no GPU"),
    (Job(strategy="mirrored"), ONE_GPU, "--strategy mirrored but TensorFlow sees only 1 GPU; use --strategy gpu"),
    (Job(strategy="gpu", precision="float64", precision_field="p"), ONE_GPU, "p 'float64' is not a precision"),
    (Job(strategy="warp"), CPU, "--strategy 'warp' is not known"),
    (Job(strategy="cpu", paths=(PathUse("gs:/b/run", "--model_dir"),)), CPU,
     "gs:/b/run: --model_dir looks like a URL with a malformed scheme 'gs': expected gs://BUCKET/PATH"),
    (Job(strategy="cpu", paths=(PathUse("s3://b/run", "--model_dir"),)), CPU,
     "s3://b/run: --model_dir uses the URL scheme 's3', which the installed TensorFlow cannot open"),
])
def test_job_fails(job, devices, expected):
    with pytest.raises(PreflightError) as e:
        pf.check_job(job, devices)
    msg = str(e.value)
    assert expected in msg
    assert msg.startswith("preflight (") or msg.startswith("--strategy")


def test_all_problems_in_one_message():
    job = Job(strategy="tpu", paths=(PathUse("runs/a", "--model_dir"),), batch=6, batch_field="b",
              precision="float16", precision_field="p")
    with pytest.raises(PreflightError) as e:
        pf.check_job(job, CPU)
    lines = str(e.value).splitlines()
    assert lines[0] == "preflight (garden train, strategy tpu): 3 problem(s)"
    assert [ln.strip().split(" ")[0] for ln in lines[1:]] == ["a", "b", "p"]


@pytest.mark.parametrize("precision, strategy, devices, warning", [
    ("bfloat16", "gpu", OLD_GPU, "only 8.0+"),
    ("bfloat16", "gpu", Devices(gpus=1, gpu_compute_capability=(8, 0)), None),
    ("float16", "cpu", CPU, "float16 is emulated on the CPU"),
    ("float32", "cpu", CPU, None),
    ("float16", "mirrored", FOUR_GPUS, None),
])
def test_precision_warnings(precision, strategy, devices, warning):
    job = Job(strategy=strategy, precision=precision, precision_field="p")
    warnings = pf.check_job(job, devices).warnings
    assert (warning in warnings[0]) if warning else warnings == []


# -- reading configs -------------------------------------------------------------------------
def _tfod_config(tmp_path, **subs) -> str:
    text = open(os.path.join(REPO, "pipelines", "tfod_mask_rcnn_resnet50_fpn_640.config"), encoding="utf-8").read()
    text = text.replace("PATH_TO_BE_CONFIGURED/resnet50.ckpt-1", subs.get("ckpt", "gs://b/ckpt/resnet50.ckpt-1"))
    text = text.replace("PATH_TO_BE_CONFIGURED/label_map.txt", subs.get("label_map", "gs://b/label_map.pbtxt"))
    text = text.replace("PATH_TO_BE_CONFIGURED/train2017", subs.get("train", "gs://b/rec/train"))
    text = text.replace("PATH_TO_BE_CONFIGURED/val2017", subs.get("val", "gs://b/rec/val"))
    path = tmp_path / "pipeline.config"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tfod_use_tpu_lists_local_fields(tmp_path):
    cfg = _tfod_config(tmp_path, label_map="/data/label_map.pbtxt", train="/data/train")
    flags = {"--model_dir": "gs://b/run", "--use_tpu": True}
    with pytest.raises(PreflightError) as e:
        pf.preflight("train", "tfod", cfg, flags, environ={}, devices=CPU)
    msg = str(e.value)
    assert f"--pipeline_config_path {cfg}" in msg
    assert "train_input_reader.tf_record_input_reader.input_path /data/train-?????-of-00256.tfrecord" in msg
    assert "train_input_reader.label_map_path /data/label_map.pbtxt" in msg
    assert "3 path(s) are not gs://" in msg and "val" not in msg.split("not gs://")[1]  # train reads no eval reader


def test_tfod_use_tpu_batch_and_eval_reader(tmp_path):
    cfg = _tfod_config(tmp_path, val="/data/val")
    job = pf.build_job("evaluate", "tfod", cfg, {"--checkpoint_dir": "gs://b/run", "--use_tpu": True})
    assert ("/data/val-?????-of-00032.tfrecord", "eval_input_reader.tf_record_input_reader.input_path") in \
        [(u.path, u.source) for u in job.paths]
    assert (job.strategy, job.batch, job.batch_field) == ("tpu", 1, "eval_config.batch_size")
    train = pf.build_job("train", "tfod", cfg, {"--model_dir": "gs://b/run", "--use_tpu": True})
    assert (train.batch, train.batch_field, train.precision) == (8, "train_config.batch_size", None)
    assert "train_config.fine_tune_checkpoint" in [u.source for u in train.paths]


def _garden_config(tmp_path, train="gs://b/rec/train-*", val="gs://b/rec/val-*", batch=8, dtype="float32") -> str:
    text = open(os.path.join(REPO, "pipelines", "garden_cpu_demo.yaml"), encoding="utf-8").read()
    text = text.replace("TRAIN_RECORDS", train).replace("VAL_RECORDS", val)
    text = re.sub(r"global_batch_size: \d+", f"global_batch_size: {batch}", text)  # train and val
    text = text.replace("mixed_precision_dtype: float32", f"mixed_precision_dtype: {dtype}")
    path = tmp_path / "garden.yaml"
    path.write_text("# label map: /data/label_map.pbtxt (3 classes: a, b, c)\n" + text, encoding="utf-8")
    return str(path)


def test_garden_tpu_job_from_config(tmp_path):
    cfg = _garden_config(tmp_path, train="/data/train-*", batch=12, dtype="float16")
    flags = {"--model_dir": "gs://b/run", "--strategy": "tpu", "--checkpoint": "runs/old", "--num_tpu_cores": 8}
    with pytest.raises(PreflightError) as e:
        pf.preflight("train", "garden", cfg, flags, environ={})
    msg = str(e.value)
    assert "problem(s)" in msg.splitlines()[0] and len(msg.splitlines()) == 4
    assert f"--pipeline_config_path {cfg}; --checkpoint runs/old; task.train_data.input_path /data/train-*" in msg
    assert "task.train_data.global_batch_size 12 is not divisible by the 8 TPU cores" in msg
    assert "runtime.mixed_precision_dtype float16 on a TPU" in msg
    # --mixed_precision lets the engine pick bfloat16 on TPU: no precision complaint then
    job = pf.build_job("train", "garden", cfg, {**flags, "--mixed_precision": True})
    assert job.precision == "auto"
    export = pf.build_job("export", "garden", cfg, {"--trained_checkpoint_dir": "gs://b/run",
                                                     "--output_directory": "gs://b/export"})
    assert ("/data/label_map.pbtxt", "config header '# label map:'") in [(u.path, u.source) for u in export.paths]


def test_garden_mirrored_batch_from_config(tmp_path):
    cfg = _garden_config(tmp_path, batch=6)
    with pytest.raises(PreflightError, match="task.train_data.global_batch_size 6 is not divisible by the 4 replicas"):
        pf.preflight("train", "garden", cfg, {"--model_dir": "runs/a", "--strategy": "mirrored"}, devices=FOUR_GPUS)
    report = pf.preflight("evaluate", "garden", _garden_config(tmp_path, batch=4), {"--checkpoint_dir": "runs/a"},
                          environ={"TF_CONFIG": TWO_WORKERS}, devices=CPU)
    assert report.strategy == "multi_worker" and report.replicas == 2


def test_cpu_job_lists_no_devices(tmp_path, monkeypatch):
    def boom():
        raise AssertionError("devices listed for a cpu job")

    monkeypatch.setattr(pf, "visible_devices", boom)
    report = pf.preflight("train", "garden", _garden_config(tmp_path), {"--model_dir": "r", "--strategy": "cpu"},
                          environ={})
    assert report.strategy == "cpu"


def test_flags_from_options_uses_flag_metadata():
    import dataclasses

    @dataclasses.dataclass
    class Opts:
        config_path: str
        model_dir: str
        init_checkpoint: str = dataclasses.field(default=None, metadata={"flag": "--checkpoint"})
        strategy: str = "auto"

    flags = pf.flags_from_options(Opts("c.yaml", "gs://b/run", "runs/old", "tpu"), num_tpu_cores=32)
    assert flags == {"--model_dir": "gs://b/run", "--checkpoint": "runs/old", "--strategy": "tpu",
                     "--num_tpu_cores": 32}


# -- through the CLI (fails before any training starts) -----------------------------------------
def test_cli_train_tpu_lists_local_paths(tmp_path, monkeypatch, capsys):
    from tfod_seg.cli import main

    monkeypatch.chdir(tmp_path)
    cfg = _garden_config(tmp_path, train="/data/train-*")
    code = main(["train", "--pipeline_config_path", cfg, "--model_dir", "runs/a", "--strategy", "tpu",
                 "--tpu_name", "my-tpu", "--num_tpu_cores", "32"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: preflight (garden train, strategy tpu): 2 problem(s)")
    assert f"3 path(s) are not gs://: --pipeline_config_path {cfg}; --model_dir runs/a; " \
           "task.train_data.input_path /data/train-*" in err
    assert "task.train_data.global_batch_size 8 is not divisible by the 32 TPU cores (--num_tpu_cores)" in err
    assert not (tmp_path / "runs" / "a" / "params.yaml").exists()  # stopped before training


def test_cli_gpu_without_gpu_and_tfod_use_tpu(tmp_path, capsys):
    from tfod_seg.cli import main

    code = main(["train", "--pipeline_config_path", _garden_config(tmp_path), "--model_dir", str(tmp_path / "m"),
                 "--strategy", "gpu"])
    err = capsys.readouterr().err
    if pf.visible_devices().gpus == 0:
        assert code == 2 and "--strategy gpu but TensorFlow sees no GPU" in err
    cfg = _tfod_config(tmp_path, val="/data/val")
    code = main(["evaluate", "--pipeline_config_path", cfg, "--checkpoint_dir", "gs://b/run", "--use_tpu"])
    err = capsys.readouterr().err
    assert code == 2 and "eval_input_reader.tf_record_input_reader.input_path /data/val-?????-of-00032.tfrecord" in err
    assert "eval_config.batch_size 1 is not divisible by the 8 TPU cores" in err


def test_host_outputs_may_stay_local_on_tpu_but_schemes_are_checked(tmp_path):
    cfg = _garden_config(tmp_path)
    gs_cfg = PathUse("gs://b/cfg.yaml", "--pipeline_config_path")
    job = pf.build_job("evaluate", "garden", cfg, {"--checkpoint_dir": "gs://b/run", "--metrics_json": "m.json",
                                                    "--strategy": "tpu"})
    job = Job(**{**job.__dict__, "paths": (gs_cfg,) + job.paths[1:]})
    assert pf.check_job(job, CPU).strategy == "tpu"  # local --metrics_json is fine on a TPU
    bad = pf.build_job("evaluate", "garden", cfg, {"--checkpoint_dir": "runs/a", "--metrics_json": "gs:/b/m.json"})
    with pytest.raises(PreflightError, match="gs:/b/m.json: --metrics_json looks like a URL with a malformed scheme"):
        pf.check_job(bad, CPU)
