import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.inference.fake_export import shapes_image
from tfod_seg.cli import main
from tfod_seg.errors import StrictModeError, UserError
from tfod_seg.inference.predict import Predictor
from tfod_seg.inference.run import list_images, run_inference


def _scene(i):
    return shapes_image(shapes=(("rect", 1, (8 + i, 6, 30, 24)), ("circle", 2, (44, 30, 10 + i)),
                                ("rect", 3, (1, 30, 12, 44))))


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    for i in range(4):
        Image.fromarray(_scene(i)[0]).save(d / f"img{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def _iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def test_all_formats(tmp_path, image_dir, fake_boxrel):
    out = tmp_path / "out"
    summary = run_inference(fake_boxrel, str(image_dir), out, min_score=0.5)
    assert summary.images == 4 and summary.num_skipped == 0
    # class 3 (score 0.6) kept, all named from the label map beside the export
    assert summary.detections_per_class == {"blue": 4, "green": 4, "red": 4}
    assert json.loads((out / "summary.json").read_text())["detections"] == 12

    from pycocotools.coco import COCO

    gt = COCO(str(out / "coco" / "images.json"))
    res = gt.loadRes(str(out / "coco" / "results.json"))
    assert len(res.anns) == 12
    assert {c["name"] for c in gt.loadCats(gt.getCatIds())} == {"red", "green", "blue"}

    predictor = Predictor(fake_boxrel)
    from tfod_seg.annotations.labelme import read_labelme
    from tfod_seg.data.masks import rasterize

    samples = {s.source_id: s for s in read_labelme(out / "labelme", allow_outside_root=True)}
    assert len(samples) == 4
    for i in range(4):
        image, truth = _scene(i)
        det = predictor.predict(image, min_score=0.5)
        sample = next(s for s in samples.values() if s.filename.endswith(f"img{i}.png"))
        assert (sample.height, sample.width) == (48, 64)
        by_label = {inst.label: rasterize(inst.mask, 48, 64) for inst in sample.instances}
        for k, name in enumerate(det.class_names(None)):
            label = {1: "red", 2: "green", 3: "blue"}[int(det.classes[k])]
            assert _iou(by_label[label], det.masks[k]) >= 0.95
        semantic = np.asarray(Image.open(out / "semantic" / f"img{i}.png"))
        assert semantic.shape == (48, 64)
        for cls, m in truth.items():
            assert _iou(semantic == cls, m) > 0.9
        overlay = np.asarray(Image.open(out / "overlays" / f"img{i}.png"))
        assert overlay.shape == (48, 64, 3) and not np.array_equal(overlay, image)


def test_batched_matches_unbatched_and_min_score(tmp_path, image_dir, fake_batched):
    one = run_inference(fake_batched, str(image_dir), tmp_path / "a", formats=["coco"], batch_size=1, min_score=0.7)
    four = run_inference(fake_batched, str(image_dir / "*.png"), tmp_path / "b", formats=["coco"], batch_size=4,
                         min_score=0.7)
    assert four.batch_size == 4 and one.batch_size == 1
    a = json.loads((tmp_path / "a" / "coco" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "coco" / "results.json").read_text())
    assert a == b and len(a) == 8  # class 3 (score 0.6) dropped by min_score


def test_unreadable_images_are_counted_or_fail_strict(tmp_path, image_dir, fake_boxrel):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(_scene(0)[0]).save(d / "good.png")
    (d / "junk.jpg").write_bytes(b"not an image")
    data = (image_dir / "img1.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    summary = run_inference(fake_boxrel, str(d), tmp_path / "out", formats=["overlay"])
    assert summary.images == 1 and summary.num_skipped == 2
    assert {os.path.basename(s["file"]) for s in summary.skipped} == {"junk.jpg", "truncated.png"}
    assert all(s["kind"] == "unreadable_image" for s in summary.skipped)
    assert os.listdir(tmp_path / "out" / "overlays") == ["good.png"]
    with pytest.raises(StrictModeError, match="junk.jpg"):
        run_inference(fake_boxrel, str(d), tmp_path / "out2", formats=["overlay"], strict=True)


def test_outputs_do_not_depend_on_writer_threads(tmp_path, image_dir, fake_boxrel):
    a = run_inference(fake_boxrel, str(image_dir), tmp_path / "a", min_score=0.5, workers=1)
    b = run_inference(fake_boxrel, str(image_dir), tmp_path / "b", min_score=0.5, workers=4)
    assert a.detections == b.detections == 12
    for sub in ("coco", "labelme", "overlays", "semantic"):
        names = sorted(os.listdir(tmp_path / "a" / sub))
        assert names == sorted(os.listdir(tmp_path / "b" / sub)) and names
        for name in names:
            assert (tmp_path / "a" / sub / name).read_bytes() == (tmp_path / "b" / sub / name).read_bytes(), name
    results = json.loads((tmp_path / "b" / "coco" / "results.json").read_text())
    assert [r["image_id"] for r in results] == sorted(r["image_id"] for r in results)  # input order


def test_cli_user_error_has_no_traceback(tmp_path, image_dir):
    """The one subprocess test: a user mistake prints one line, exits 2, and shows no traceback."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tfod_seg", "infer", "--model", str(tmp_path / "nope"),
                           "--images", str(image_dir), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "model directory not found" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bad_inputs(tmp_path, fake_boxrel):
    with pytest.raises(UserError, match="pattern '.*nothing-\\*.png' matched no files"):
        run_inference(fake_boxrel, str(tmp_path / "nothing-*.png"), tmp_path / "o")
    with pytest.raises(UserError, match="has no image files"):
        list_images(str(tmp_path))
    with pytest.raises(UserError, match="no such file or directory"):
        list_images(str(tmp_path / "missing.jpg"))
    Image.fromarray(_scene(0)[0]).save(tmp_path / "a.png")
    with pytest.raises(UserError, match="unknown \\['svg'\\]"):
        run_inference(fake_boxrel, str(tmp_path), tmp_path / "o", formats=["svg"])


def test_cli(tmp_path, image_dir, fake_boxrel, capsys):
    rc = main(["infer", "--model", fake_boxrel, "--images", str(image_dir), "--out", str(tmp_path / "o"),
               "--format", "coco,semantic", "--min-score", "0.8", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "4 images, 4 detections" in out and "red: 4" in out
    assert sorted(os.listdir(tmp_path / "o")) == ["coco", "semantic", "summary.json"]
    rc = main(["infer", "--model", str(tmp_path / "nope"), "--images", str(image_dir), "--out", str(tmp_path / "p")])
    assert rc == 2 and "model directory not found" in capsys.readouterr().err


def test_summary_dataclass_is_the_summary_file(tmp_path, image_dir, fake_boxrel):
    summary = run_inference(fake_boxrel, str(image_dir), tmp_path / "o", formats=["coco"], min_score=0.5)
    assert json.loads((tmp_path / "o" / "summary.json").read_text()) == summary.to_json()
    assert list(summary.to_json())[:3] == ["model", "out_dir", "images_found"]


def test_images_and_outputs_on_ram_filesystem(tmp_path, image_dir, fake_boxrel):
    """Images read from and every output written to TensorFlow's in-memory ram:// filesystem
    (the same code path as gs://), identical to a local run."""
    import tensorflow as tf

    src = "ram://infer_test/images"
    tf.io.gfile.makedirs(src)
    for name in sorted(os.listdir(image_dir)):
        tf.io.gfile.GFile(f"{src}/{name}", "wb").write((image_dir / name).read_bytes())
    out = "ram://infer_test/out"
    remote = run_inference(fake_boxrel, src, out, min_score=0.5)
    local = run_inference(fake_boxrel, str(image_dir), tmp_path / "local", min_score=0.5)
    assert remote.images == 4 and remote.detections == local.detections == 12
    assert tf.io.gfile.exists(f"{out}/summary.json")
    for sub, name in (("overlays", "img0.png"), ("semantic", "img2.png"), ("coco", "results.json")):
        with tf.io.gfile.GFile(f"{out}/{sub}/{name}", "rb") as f:
            assert f.read() == (tmp_path / "local" / sub / name).read_bytes(), (sub, name)
    with tf.io.gfile.GFile(f"{out}/labelme/img1.json") as f:
        assert json.load(f)["imagePath"] == "../../images/img1.png"  # relative within the bucket
    images = json.loads(tf.io.gfile.GFile(f"{out}/coco/images.json").read())
    assert [im["file_name"] for im in images["images"]] == [f"../../images/img{i}.png" for i in range(4)]
