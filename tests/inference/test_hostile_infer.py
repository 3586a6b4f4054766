"""Hostile inputs for `tfod-seg infer` and `tfod-seg score`: each ends in a counted skip or one
`error:` line naming the file (exit 2), never a traceback or a file under its final name."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.inference.fake_export import shapes_image
from tfod_seg.cli import main


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG header declaring width x height pixels (900 M: over twice Pillow's 89 M limit)
    with a few bytes of data: Pillow refuses it at open, before decoding anything."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture()
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(shapes_image(shapes=(("rect", 1, (8, 6, 30, 24)),))[0]).save(d / "good.png")
    return d


def _infer(model, images, out, *extra):
    return main(["infer", "--model", str(model), "--images", str(images), "--out", str(out), "--no-progress", *extra])


def test_decompression_bomb_is_a_counted_skip(tmp_path, images, fake_boxrel, capsys):
    (images / "bomb.png").write_bytes(bomb_png())
    assert _infer(fake_boxrel, images, tmp_path / "out") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images"] == 1 and summary["num_skipped"] == 1
    (skip,) = summary["skipped"]
    assert skip["file"].endswith("bomb.png") and skip["kind"] == "unreadable_image"
    assert "bomb.png" in skip["reason"] and "900000000 pixels" in skip["reason"]
    assert "skipped 1 image(s)" in capsys.readouterr().out
    rc = _infer(fake_boxrel, images, tmp_path / "strict", "--strict")
    err = capsys.readouterr().err
    assert rc == 2 and "bomb.png" in err and "900000000 pixels" in err and "Traceback" not in err
    # --max-pixels raises the limit: the header is then read, the pixels fail to decode (a skip still)
    assert _infer(fake_boxrel, images, tmp_path / "raised", "--max-pixels", str(10 ** 9)) == 0
    raised = json.loads((tmp_path / "raised" / "summary.json").read_text())
    assert raised["num_skipped"] == 1 and "900000000 pixels" not in raised["skipped"][0]["reason"]


def _file(tmp_path):
    (tmp_path / "a_file").write_text("x")
    return tmp_path / "a_file"


def _blocked_subfolder(tmp_path):
    out = tmp_path / "blocked"
    out.mkdir()
    (out / "overlays").write_text("a file where a folder goes")
    return out


def _folder_as_output_file(tmp_path):
    out = tmp_path / "folder_file"
    (out / "summary.json").mkdir(parents=True)
    return out


# (case, --out factory, message fragment)
INFER_OUTPUTS = [
    ("out is a file", _file, "a_file: --out folder is a file"),
    ("a file where overlays/ goes", _blocked_subfolder, "overlays: output folder is a file"),
    ("summary.json is a folder", _folder_as_output_file, "summary.json: output file is a folder, expected a file path"),
    ("unwritable place", lambda tmp_path: "/proc/tfod-seg-no/out", "/proc/tfod-seg-no/out: cannot create the --out folder"),
]


@pytest.mark.parametrize("case,out,message", INFER_OUTPUTS, ids=[c[0] for c in INFER_OUTPUTS])
def test_infer_output_paths(tmp_path, images, fake_boxrel, capsys, case, out, message):
    rc = _infer(fake_boxrel, images, out(tmp_path))
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_infer_bad_model_and_label_map(tmp_path, images, fake_boxrel, capsys):
    (tmp_path / "model.bin").write_bytes(b"\0" * 10)
    assert _infer(tmp_path / "model.bin", images, tmp_path / "o") == 2
    assert "model.bin: model directory not found" in capsys.readouterr().err
    lm = tmp_path / "lm.pbtxt"
    lm.write_bytes(b"item { id: 1 name: 'caf\xe9' }")
    assert _infer(fake_boxrel, images, tmp_path / "o2", "--label-map", str(lm)) == 2
    err = capsys.readouterr().err
    assert "lm.pbtxt" in err and "UTF-8" in err and "Traceback" not in err


SCORE_OUTPUTS = [
    ("out is a file", _file, "a_file: --out folder is a file"),
    ("metrics.json is a folder", lambda p: (p / "m" / "metrics.json").mkdir(parents=True) or p / "m",
     "metrics.json: output file is a folder"),
    ("unwritable place", lambda tmp_path: "/proc/tfod-seg-no/out", "cannot create the --out folder"),
]


@pytest.mark.parametrize("case,out,message", SCORE_OUTPUTS, ids=[c[0] for c in SCORE_OUTPUTS])
def test_score_output_paths(tmp_path, capsys, case, out, message):
    from tests.evaluation.synthetic import gt_doc, predictions

    gt = gt_doc()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(predictions(gt)))
    rc = main(["score", "--gt", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "res.json"),
               "--out", str(out(tmp_path))])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err


def test_score_input_is_a_folder_or_missing(tmp_path, capsys):
    (tmp_path / "gt_dir").mkdir()
    rc = main(["score", "--gt", str(tmp_path / "gt_dir"), "--predictions", str(tmp_path / "nope.json"),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "gt_dir: is a directory, expected a COCO ground-truth JSON file" in err, err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_decoded_images_keep_their_content(tmp_path, images, fake_boxrel):
    """The skip of a bad file does not disturb the other images' outputs (same as alone)."""
    (images / "bomb.png").write_bytes(bomb_png())
    _infer(fake_boxrel, images, tmp_path / "with", "--format", "coco")
    (images / "bomb.png").unlink()
    _infer(fake_boxrel, images, tmp_path / "without", "--format", "coco")
    a = json.loads((tmp_path / "with" / "coco" / "results.json").read_text())
    b = json.loads((tmp_path / "without" / "coco" / "results.json").read_text())
    assert a == b and len(a) == 1 and np.isclose(a[0]["score"], 0.9)
