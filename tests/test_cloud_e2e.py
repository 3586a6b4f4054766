"""Cloud paths: gs:// without credentials fails in one line; the whole pipeline runs on ram://."""

from __future__ import annotations

import json
import os

import pytest

from tfod_seg import io
from tfod_seg.cli import main


@pytest.fixture
def no_gcloud(monkeypatch, tmp_path):
    """No credentials anywhere and not on GCE (as on this machine and CI)."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.delenv("GCE_METADATA_HOST", raising=False)
    monkeypatch.setattr(io, "on_gce", lambda: False)
    monkeypatch.delenv("NO_GCE_CHECK", raising=False)


def test_gs_without_credentials_one_line_exit_2_nothing_local(no_gcloud, tmp_path, monkeypatch, capsys):
    from tfod_seg.demo.shapes import generate_shapes_dataset

    generate_shapes_dataset(str(tmp_path / "lm"), num_images=2, image_size=32, seed=0)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code = main(["convert", "--format", "labelme", str(tmp_path / "lm"), "--out", "gs://some-bucket/x", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: gs://some-bucket/x: cannot ")
    assert "Traceback" not in "\n".join(err)
    # no network here: DNS fails; with network, anonymous access is refused: both name the credentials
    assert "no Google Cloud credentials found (run `gcloud auth application-default login`" in err[-1]
    assert os.environ["NO_GCE_CHECK"] == "true"  # no minute-long metadata-server probe
    assert os.listdir(work) == [] and not (tmp_path / "gs:").exists()


def test_gs_read_without_credentials_one_line(no_gcloud, capsys):
    # reads stay anonymous-capable (public buckets), so TensorFlow is asked; its failure is one line
    code = main(["inspect", "gs://some-bucket/rec/train-*.tfrecord"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("error: gs://some-bucket/rec/train-*.tfrecord: cannot ")
    assert "no Google Cloud credentials found" in err[0] or "access denied" in err[0]


@pytest.mark.parametrize("call", [
    lambda: io.makedirs("gs://b/x"), lambda: io.atomic_write_text("gs://b/x/a.txt", "a"),
    lambda: io.copy(__file__, "gs://b/x/c.py"), lambda: io.remove("gs://b/x/a.txt"), lambda: io.rmtree("gs://b/x"),
])
def test_gs_writes_without_credentials_fail_before_tensorflow(no_gcloud, call):
    with pytest.raises(io.PathError, match=r"^gs://b/x.*: cannot write the .* to Cloud Storage: no Google Cloud "
                                           r"credentials found \(run `gcloud auth application-default login`"):
        call()


def test_explicit_no_gce_check_kept_and_gce_untouched(monkeypatch):
    monkeypatch.setenv("NO_GCE_CHECK", "false")
    io.prepare_gcs()
    assert os.environ["NO_GCE_CHECK"] == "false"
    monkeypatch.delenv("NO_GCE_CHECK")
    monkeypatch.setattr(io, "on_gce", lambda: True)
    io.prepare_gcs()
    assert "NO_GCE_CHECK" not in os.environ  # on GCE/Vertex/TPU VMs the metadata server has the credentials


@pytest.mark.parametrize("error, creds, expected", [
    ("PermissionDeniedError", None, "no Google Cloud credentials found (run `gcloud auth"),
    ("UnauthenticatedError", None, "no Google Cloud credentials found"),
    ("PermissionDeniedError", "key.json", "access denied with the credentials of"),
    ("NotFoundError", "key.json", "the bucket does not exist"),
    ("FailedPreconditionError", "key.json", "cannot reach Cloud Storage (Could not resolve host: x)"),
])
def test_explain_gs_errors(no_gcloud, tmp_path, monkeypatch, error, creds, expected):
    import tensorflow as tf

    if creds:
        key = tmp_path / creds
        key.write_text("{}")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    text = {"NotFoundError": "The specified bucket does not exist.",
            "FailedPreconditionError": "libcurl code 6, error details: Could not resolve host: x"}.get(error, "HTTP 401")
    e = getattr(tf.errors, error)(None, None, text)
    msg = io.explain_url_error(e, "gs://b/x")
    assert expected in msg and "\n" not in msg
    assert io.explain_url_error(e, "ram://b/x") == text  # other schemes: TensorFlow's own first line


def test_missing_key_file_named(no_gcloud, monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nowhere/key.json")
    msg = io.explain_url_error(tf.errors.PermissionDeniedError(None, None, "denied"), "gs://b/x")
    assert msg.startswith("GOOGLE_APPLICATION_CREDENTIALS names /nowhere/key.json, which does not exist")


# -- the whole pipeline on ram:// ----------------------------------------------------------------
R = "ram://tfod-seg-e2e"
# the tiny model of tests/garden_fixtures.py, as `tfod-seg config --set` overrides, trained 2 steps
_TINY_SETS = {k: v for k, v in __import__("tests.garden_fixtures", fromlist=["TINY_OVERRIDES"]).TINY_OVERRIDES.items()
              if not k.startswith(("trainer.", "task.train_data.global_batch_size", "task.model.input_size"))}
_TINY_SETS.update({"trainer.steps_per_loop": 1, "trainer.summary_interval": 1, "trainer.checkpoint_interval": 2,
                   "trainer.validation_interval": 2, "task.model.detection_generator.pre_nms_score_threshold": 0.0})


def _upload_tree(local: str, url: str) -> None:
    for d, _, files in io.walk(local):
        rel = os.path.relpath(d, local)
        target = url if rel == "." else io.join(url, *rel.split(os.sep))
        io.makedirs(target)
        for f in files:
            io.copy(os.path.join(d, f), io.join(target, f))


def _ok(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, f"{argv[0]} failed ({code}): {out.err[-2000:]}"
    return out


def test_pipeline_end_to_end_on_ram(tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    from tfod_seg.demo.shapes import generate_shapes_dataset

    generate_shapes_dataset(str(tmp_path / "lm"), num_images=12, image_size=64, seed=3)
    _upload_tree(str(tmp_path / "lm"), f"{R}/labelme")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    _ok(["convert", "--format", "labelme", f"{R}/labelme", "--out", f"{R}/records", "--val-fraction", "0.25",
         "--workers", "1", "--quiet"], capsys)
    assert tf.io.gfile.glob(f"{R}/records/train-*.tfrecord") and tf.io.gfile.glob(f"{R}/records/val-*.tfrecord")
    splits = io.read_json(f"{R}/records/report.json")["splits"]
    assert splits["train"]["images"] + splits["val"]["images"] == 12 and splits["val"]["images"] > 0
    _ok(["inspect", f"{R}/records/train-?????-of-?????.tfrecord", "--json", f"{R}/inspect.json", "--quiet"], capsys)
    assert io.isfile(f"{R}/inspect.json")
    sets = [a for k, v in _TINY_SETS.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    _ok(["config", "--template", "garden_cpu_demo", "--label-map", f"{R}/records/label_map.pbtxt",
         "--train", f"{R}/records/train-*.tfrecord", "--val", f"{R}/records/val-*.tfrecord",
         "--model-dir", f"{R}/model", "--batch-size", "2", "--steps", "2", "--image-size", "64",
         "--out", f"{R}/garden.yaml", *sets], capsys)
    _ok(["config", "--check", f"{R}/garden.yaml"], capsys)
    _ok(["train", "--pipeline_config_path", f"{R}/garden.yaml", "--model_dir", f"{R}/model",
         "--num_train_steps", "2", "--strategy", "cpu"], capsys)
    assert tf.train.latest_checkpoint(f"{R}/model").endswith("ckpt-2") and io.isfile(f"{R}/model/params.yaml")
    _ok(["evaluate", "--pipeline_config_path", f"{R}/garden.yaml", "--checkpoint_dir", f"{R}/model", "--once",
         "--metrics_json", f"{R}/eval.json"], capsys)
    assert 0.0 <= io.read_json(f"{R}/eval.json")["mask_AP"] <= 1.0
    _ok(["export", "--pipeline_config_path", f"{R}/garden.yaml", "--trained_checkpoint_dir", f"{R}/model",
         "--output_directory", f"{R}/export"], capsys)
    assert io.isfile(f"{R}/export/saved_model/saved_model.pb") and io.isfile(f"{R}/export/label_map.pbtxt")
    _ok(["infer", "--model", f"{R}/export", "--images", f"{R}/labelme", "--out", f"{R}/infer", "--min-score", "0",
         "--workers", "1", "--no-progress"], capsys)
    assert io.isfile(f"{R}/infer/summary.json")
    _ok(["score", "--model", f"{R}/export", "--records", f"{R}/records/val-*.tfrecord", "--out", f"{R}/score",
         "--no-progress"], capsys)
    metrics = io.read_json(f"{R}/score/metrics.json")
    assert 0.0 <= metrics["segm"]["AP"] <= 1.0 and 0.0 <= metrics["bbox"]["AP"] <= 1.0
    assert os.listdir(cwd) == []  # nothing written under the working directory
    _typo_outputs_write_nothing(capsys, cwd)


def _typo_outputs_write_nothing(capsys, cwd) -> None:
    """Every output flag given `gs:/b/x` (one slash): exit 2 naming the scheme, no local `gs:` folder."""
    bad = "gs:/some-bucket/x"
    runs = [
        ["convert", "--format", "labelme", f"{R}/labelme", "--out", bad, "--quiet"],
        ["inspect", f"{R}/records/train-*.tfrecord", "--json", f"{bad}/inspect.json", "--quiet"],
        ["config", "--template", "garden_cpu_demo", "--label-map", f"{R}/records/label_map.pbtxt",
         "--train", f"{R}/records/train-*.tfrecord", "--val", f"{R}/records/val-*.tfrecord", "--model-dir",
         f"{R}/model", "--out", f"{bad}/c.yaml"],
        ["train", "--pipeline_config_path", f"{R}/garden.yaml", "--model_dir", bad, "--strategy", "cpu"],
        ["evaluate", "--pipeline_config_path", f"{R}/garden.yaml", "--checkpoint_dir", f"{R}/model", "--once",
         "--metrics_json", f"{bad}/m.json"],
        ["export", "--pipeline_config_path", f"{R}/garden.yaml", "--trained_checkpoint_dir", f"{R}/model",
         "--output_directory", bad],
        ["infer", "--model", f"{R}/export", "--images", f"{R}/labelme", "--out", bad, "--no-progress"],
        ["score", "--model", f"{R}/export", "--records", f"{R}/records/val-*.tfrecord", "--out", bad, "--no-progress"],
        ["launch", "--pipeline_config_path", f"{R}/garden.yaml", "--model_dir", "gs://b/run", "--out", bad],
    ]
    for argv in runs:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "malformed scheme 'gs'" in err, f"{argv[0]}: {code} {err[-500:]}"
        assert os.listdir(cwd) == [], argv[0]
