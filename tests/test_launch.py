"""`tfod-seg launch`: CustomJobs parse into the official aiplatform_v1 type; checks before writing."""

from __future__ import annotations

import json
import os
import re

import pytest

from tfod_seg import io
from tfod_seg.cli import main
from tfod_seg.launch import LaunchError, LaunchRequest, custom_job, parse_custom_job, plan_launch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(tmp_path, train="gs://b/rec/train-*", val="gs://b/rec/val-*", batch=8, name="garden.yaml") -> str:
    text = open(os.path.join(REPO, "pipelines", "garden_cpu_demo.yaml"), encoding="utf-8").read()
    text = text.replace("TRAIN_RECORDS", train).replace("VAL_RECORDS", val)
    text = re.sub(r"global_batch_size: \d+", f"global_batch_size: {batch}", text)  # train and val
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _pools(job):
    return [(p.machine_spec.machine_type, p.machine_spec.accelerator_type.name, p.machine_spec.accelerator_count,
             p.replica_count) for p in job.job_spec.worker_pool_specs]


@pytest.mark.parametrize("kwargs, pools, strategy_args", [
    ({"gpus": 1}, [("n1-standard-8", "NVIDIA_TESLA_T4", 1, 1)], ["--strategy", "gpu"]),
    ({"gpus": 4}, [("n1-standard-32", "NVIDIA_TESLA_T4", 4, 1)], ["--strategy", "mirrored"]),
    ({"gpus": 2, "workers": 2}, [("n1-standard-16", "NVIDIA_TESLA_T4", 2, 1), ("n1-standard-16", "NVIDIA_TESLA_T4", 2, 1)],
     ["--strategy", "multi_worker", "--num_workers", "2"]),
    ({"tpu": "v3-8"}, [("cloud-tpu", "TPU_V3", 8, 1)], ["--strategy", "tpu", "--tpu_name", "local"]),
    ({"gpus": 2, "workers": 3, "gpu_type": "NVIDIA_TESLA_A100"},
     [("a2-highgpu-2g", "NVIDIA_TESLA_A100", 2, 1), ("a2-highgpu-2g", "NVIDIA_TESLA_A100", 2, 2)],
     ["--strategy", "multi_worker", "--num_workers", "3"]),
])
def test_custom_job_parses_into_aiplatform_v1(tmp_path, kwargs, pools, strategy_args):
    cfg = _config(tmp_path, batch=24)
    plan = plan_launch(LaunchRequest(cfg, "gs://b/runs/a", num_train_steps=500, project="p", **kwargs))
    data = json.loads(json.dumps(custom_job(plan)))  # as written to custom_job.json
    job = parse_custom_job(data)  # the official type; unknown fields raise
    assert _pools(job) == pools
    for spec in job.job_spec.worker_pool_specs:
        c = spec.container_spec
        assert c.image_uri == plan.image and c.image_uri.startswith("us-central1-docker.pkg.dev/p/tfod-seg/")
        assert list(c.command) == ["tfod-seg"]
        args = list(c.args)
        assert args[:5] == ["train", "--pipeline_config_path", "gs://b/runs/a/launch/garden.yaml", "--model_dir",
                            "gs://b/runs/a"]
        assert args[5:5 + len(strategy_args)] == strategy_args and args[-2:] == ["--num_train_steps", "500"]
    assert job.display_name == "tfod-seg-a"
    assert job.job_spec.base_output_directory.output_uri_prefix == "gs://b/runs/a/vertex"


def test_unknown_field_is_rejected():
    with pytest.raises(Exception, match="has no field named \"replicas\""):
        parse_custom_job({"jobSpec": {"workerPoolSpecs": [{"replicas": 1}]}})


@pytest.mark.parametrize("kwargs, config_kw, expected", [
    ({"gpus": 4}, {"train": "/data/train-*"},
     "the job runs on Google Cloud machines, which see only Cloud Storage, but 1 path(s) are not gs://: "
     "task.train_data.input_path /data/train-*"),
    ({"gpus": 4}, {"batch": 6}, "task.train_data.global_batch_size 6 is not divisible by the 4 replicas"),
    ({"gpus": 2, "workers": 2}, {"batch": 6}, "6 is not divisible by the 4 replicas of --strategy multi_worker"),
    ({"tpu": "v3-8"}, {"batch": 12}, "12 is not divisible by the 8 TPU cores"),
    ({"gpus": 3}, {}, "--gpus 3: a NVIDIA_TESLA_T4 machine has 1, 2, 4 GPUs"),
    ({"gpus": 1, "gpu_type": "NVIDIA_K9000"}, {}, "--gpu_type 'NVIDIA_K9000': expected one of"),
    ({"tpu": "v9-8"}, {}, "--tpu 'v9-8': expected one of v2-8, v3-8"),
    ({"tpu": "v3-8", "gpus": 1}, {}, "--tpu runs on one TPU slice"),
])
def test_launch_checks_before_writing(tmp_path, kwargs, config_kw, expected):
    cfg = _config(tmp_path, **config_kw)
    with pytest.raises(LaunchError) as e:
        plan_launch(LaunchRequest(cfg, "gs://b/run", **kwargs))
    assert expected in str(e.value)


def test_model_dir_must_be_gs(tmp_path):
    with pytest.raises(LaunchError, match="--model_dir runs/a: a cloud job writes its checkpoints to Cloud Storage"):
        plan_launch(LaunchRequest(_config(tmp_path), "runs/a", gpus=1))


def test_config_read_through_io_and_uploaded(tmp_path):
    import tensorflow as tf

    remote = "ram://launch-test/cfg/garden.yaml"
    tf.io.gfile.makedirs("ram://launch-test/cfg")
    io.copy(_config(tmp_path, batch=6), remote)
    with pytest.raises(LaunchError, match="6 is not divisible by the 4 replicas"):  # read from ram://
        plan_launch(LaunchRequest(remote, "gs://b/run", gpus=4))
    io.copy(_config(tmp_path), remote)
    plan = plan_launch(LaunchRequest(remote, "gs://b/run", gpus=4))
    assert (plan.upload_config, plan.job_config) == (True, "gs://b/run/launch/garden.yaml")


def test_cli_writes_the_files(tmp_path, capsys):
    cfg = _config(tmp_path)
    out = tmp_path / "launch"
    code = main(["launch", "--pipeline_config_path", cfg, "--model_dir", "gs://b/run", "--tpu", "v3-8",
                 "--mixed_precision", "--out", str(out)])
    assert code == 0
    names = sorted(os.listdir(out))
    assert names == ["Dockerfile", "Dockerfile.dockerignore", "commands.sh", "custom_job.json", "job_spec.yaml",
                     "launch.json", "tpu_vm.sh"]
    parse_custom_job(json.loads((out / "custom_job.json").read_text()))
    docker = (out / "Dockerfile").read_text()
    assert 'RUN pip install -c constraints.txt ".[cloud]"' in docker and "tensorflow-tpu==2.20.0" in docker
    assert docker.rstrip().endswith('ENTRYPOINT ["tfod-seg"]')
    commands = (out / "commands.sh").read_text()
    assert f"docker build -f {out / 'Dockerfile'} -t us-central1-docker.pkg.dev/PROJECT/tfod-seg/tfod-seg:0.1.0-tpu {REPO}" \
        in commands
    assert f"gcloud storage cp {cfg} gs://b/run/launch/garden.yaml" in commands
    assert f"--config={out / 'job_spec.yaml'}" in commands
    tpu_vm = (out / "tpu_vm.sh").read_text()
    assert "gcloud compute tpus tpu-vm create tfod-seg-tpu --zone=europe-west4-a --accelerator-type=v3-8" in tpu_vm
    assert "--strategy tpu --tpu_name local --mixed_precision" in tpu_vm
    import yaml

    spec = yaml.safe_load((out / "job_spec.yaml").read_text())
    parse_custom_job({"jobSpec": spec})
    assert "strategy tpu" in capsys.readouterr().err


def test_gpu_dockerfile_adds_cuda_wheels(tmp_path):
    from tfod_seg.launch import dockerfile

    assert 'tensorflow[and-cuda]==2.20.0' in dockerfile(plan_launch(LaunchRequest(_config(tmp_path), "gs://b/r", gpus=1)))
    assert 'and-cuda' not in dockerfile(plan_launch(LaunchRequest(_config(tmp_path), "gs://b/r")))


def test_submit_without_credentials_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setattr(io, "on_gce", lambda: False)
    code = main(["launch", "--pipeline_config_path", _config(tmp_path), "--model_dir", "gs://b/run", "--gpus", "1",
                 "--project", "p", "--out", str(tmp_path / "out"), "--submit"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == ("error: --submit: no Google Cloud credentials found (run `gcloud auth "
                                            "application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
                                            "service-account key file)")
    assert (tmp_path / "out" / "custom_job.json").exists()  # the files are written before submitting


def test_submit_needs_project(tmp_path, capsys):
    code = main(["launch", "--pipeline_config_path", _config(tmp_path), "--model_dir", "gs://b/run",
                 "--out", str(tmp_path / "out"), "--submit"])
    assert code == 2 and "--submit needs --project" in capsys.readouterr().err


def test_tfod_config_job(tmp_path):
    from tfod_seg.launch import dockerfile

    text = open(os.path.join(REPO, "pipelines", "tfod_mask_rcnn_resnet50_fpn_640.config"), encoding="utf-8").read()
    cfg = tmp_path / "pipeline.config"
    cfg.write_text(text.replace("PATH_TO_BE_CONFIGURED", "gs://b/data"), encoding="utf-8")
    plan = plan_launch(LaunchRequest(str(cfg), "gs://b/run", gpus=2, workers=2))
    assert plan.engine == "tfod"
    assert plan.train_args == ["train", "--pipeline_config_path", "gs://b/run/launch/pipeline.config", "--model_dir",
                               "gs://b/run", "--num_workers", "2"]  # TFOD2 picks its strategy from --num_workers
    parse_custom_job(custom_job(plan))
    assert "bash tools/setup_tfod_env.sh" in dockerfile(plan) and "TFOD_SEG_TFOD_PYTHON=" in dockerfile(plan)
    with pytest.raises(LaunchError, match="--tpu with a TFOD2 pipeline.config"):
        plan_launch(LaunchRequest(str(cfg), "gs://b/run", tpu="v3-8"))
    with pytest.raises(LaunchError, match="train_config.batch_size 8 is not divisible by the 3 replicas"):
        plan_launch(LaunchRequest(str(cfg), "gs://b/run", gpus=1, workers=3))
