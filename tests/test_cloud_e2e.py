"""Cloud paths: gs:// without credentials fails in one line; the whole pipeline runs on ram://."""

from __future__ import annotations

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
