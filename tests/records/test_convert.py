"""convert_dataset: determinism, split, shards, report, strict, atomic output; the CLI command."""

import filecmp
import glob
import json
import os

import pytest

from tests.data.fixtures import labelme_dataset, square, write_jpeg
from tfod_seg.annotations.labelme import read_labelme, write_labelme
from tfod_seg.cli import main
from tfod_seg.errors import StrictModeError
from tfod_seg.labelmap import LabelMap
from tfod_seg.records import convert as convert_mod
from tfod_seg.records.convert import ConvertReport, Tally, convert_dataset, format_summary, is_val
from tfod_seg.records.reader import expand_patterns, iter_records


@pytest.fixture(scope="module")
def lm_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    labelme_dataset(root, n=12)
    return root


def _files(d):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "*.tfrecord")))


def test_byte_identical_output_twice_and_across_worker_counts(lm_root, tmp_path):
    kw = dict(num_shards=3, val_fraction=0.25, seed=3)
    r1 = convert_dataset(read_labelme(lm_root), tmp_path / "a", workers=1, **kw)
    convert_dataset(read_labelme(lm_root), tmp_path / "b", workers=1, **kw)
    convert_dataset(read_labelme(lm_root), tmp_path / "c", workers=2, **kw)
    names = _files(tmp_path / "a")
    assert names == ["train-00000-of-00003.tfrecord", "train-00001-of-00003.tfrecord",
                     "train-00002-of-00003.tfrecord", "val-00000-of-00001.tfrecord"]
    for other in ("b", "c"):
        assert _files(tmp_path / other) == names
        match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / other, names + ["label_map.pbtxt"],
                                                   shallow=False)
        assert not mismatch and not errors
    assert r1["splits"]["train"]["images"] + r1["splits"]["val"]["images"] == 12
    val_names = {r.filename for r in iter_records(str(tmp_path / "a" / "val-*.tfrecord"))}
    assert val_names == {f"img_{i:03d}.jpg" for i in range(12) if is_val(f"img_{i:03d}.jpg", 3, 0.25)}
    assert 0 < len(val_names) < 12
    assert [s["images"] for s in r1["splits"]["train"]["shards"]] == \
        [len(list(iter_records(str(tmp_path / "a" / n)))) for n in names[:3]]
    on_disk = json.loads((tmp_path / "a" / "report.json").read_text())
    for key in ("mask_type", "num_classes", "label_map", "splits", "instances_per_class", "skipped", "num_skipped"):
        assert on_disk[key] == r1[key]


def test_split_depends_on_seed():
    keys = [f"img_{i}.jpg" for i in range(200)]
    a = [is_val(k, 0, 0.2) for k in keys]
    assert a != [is_val(k, 1, 0.2) for k in keys]
    assert 20 < sum(a) < 60


def test_label_map_fixes_ids_and_unknown_labels_are_reported(lm_root, tmp_path):
    lm = LabelMap.from_names(["dog", "cat"])
    report = convert_dataset(read_labelme(lm_root), tmp_path / "o", label_map=lm, workers=1)
    assert report["instances_per_class"] == {"dog": 24, "cat": 12}
    assert report["skipped_by_reason"] == {"unknown_label": 12}
    assert "label 'ball' is not in the label map (known: dog, cat)" in report["skipped"][0]["reason"]
    rec = next(iter_records(str(tmp_path / "o")))
    assert list(rec.classes) == [2, 1, 1] and rec.class_texts == ["cat", "dog", "dog"]
    with pytest.raises(StrictModeError, match=r"img_000\.json: instance 2 label 'ball' is not in the label map"):
        convert_dataset(read_labelme(lm_root), tmp_path / "s", label_map=lm, workers=1, strict=True)
    assert _files(tmp_path / "s") == []  # nothing left under a final name
    assert not [p for p in os.listdir(tmp_path / "s") if p.endswith(".tmp")]


def test_rerun_with_fewer_shards_removes_stale_shards(lm_root, tmp_path):
    convert_dataset(read_labelme(lm_root), tmp_path / "o", num_shards=4, workers=1)
    report = convert_dataset(read_labelme(lm_root), tmp_path / "o", num_shards=2, workers=1)
    assert _files(tmp_path / "o") == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert sum(1 for n in report["notes"] if n["kind"] == "removed_stale_shard") == 4


def test_a_crash_leaves_no_partial_files(lm_root, tmp_path, monkeypatch):
    def boom(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(convert_mod, "_encode_task", boom)
    with pytest.raises(RuntimeError):
        convert_dataset(read_labelme(lm_root), tmp_path / "o", workers=1)
    assert os.listdir(tmp_path / "o") == []


def test_expand_patterns(tmp_path):
    with pytest.raises(Exception, match=r"nothing-\*\.tfrecord: no file matches"):
        expand_patterns(str(tmp_path / "nothing-*.tfrecord"))
    (tmp_path / "b.tfrecord").write_bytes(b"")
    (tmp_path / "a.tfrecord").write_bytes(b"")
    assert expand_patterns([str(tmp_path / "*.tfrecord"), str(tmp_path / "a.tfrecord")]) == \
        [str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")]
    assert expand_patterns(str(tmp_path)) == [str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")]


def test_cli_convert_prints_summary(lm_root, tmp_path, capsys):
    rc = main(["convert", "--format", "labelme", str(lm_root), "--out", str(tmp_path / "o"), "--workers", "1",
               "--quiet", "--val-fraction", "0.3"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "12 images, 48 instances, 3 classes (png masks)" in out
    assert "train-00000-of-00001.tfrecord" in out and "skipped: nothing" in out
    assert os.path.exists(tmp_path / "o" / "report.json")


def test_cli_strict_exits_2_without_traceback(tmp_path, capsys):
    write_jpeg(tmp_path / "lm" / "a.jpg", 40, 30)
    write_labelme(tmp_path / "lm" / "a.json", image_path="a.jpg", height=30, width=40,
                  shapes=[{"label": "x", "points": [[1, 1], [4, 4]], "shape_type": "line"},
                          {"label": "x", "points": square(1, 1, 5)}])
    assert main(["convert", "--format", "labelme", str(tmp_path / "lm"), "--out", str(tmp_path / "o"),
                 "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["convert", "--format", "labelme", str(tmp_path / "lm"), "--out", str(tmp_path / "o2"),
                 "--workers", "1", "--quiet", "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: a.json: shape 0 'x': shape_type 'line' has no area") and "Traceback" not in err


def test_report_is_a_dataclass_whose_json_is_the_file(lm_root, tmp_path):
    report = convert_dataset(read_labelme(lm_root), tmp_path / "o", workers=1, val_fraction=0.3, seed=1)
    assert isinstance(report, ConvertReport)
    on_disk = (tmp_path / "o" / "report.json").read_text()
    assert on_disk == json.dumps(report.to_json(), indent=2) + "\n"
    assert list(report.to_json()) == ["mask_type", "num_classes", "label_map", "images", "instances", "splits",
                                      "instances_per_class", "num_skipped", "skipped_by_reason", "skipped", "notes",
                                      "reencoded_images", "seed", "val_fraction"]
    assert report.images == report["images"] == 12 and report.num_classes == 3
    assert report.splits["train"].images + report.splits["val"].images == 12
    assert format_summary(report) == format_summary(report.to_json())


def test_out_may_be_a_url(lm_root, tmp_path):
    tf = pytest.importorskip("tensorflow")
    out = f"ram://convert_test/{tmp_path.name}/out"  # ram:// lives as long as the process: a path of its own
    report = convert_dataset(read_labelme(lm_root), out, workers=1, num_shards=2, val_fraction=0.3, seed=3)
    local = convert_dataset(read_labelme(lm_root), tmp_path / "o", workers=1, num_shards=2, val_fraction=0.3, seed=3)
    names = sorted(tf.io.gfile.listdir(out))
    assert names == sorted(_files(tmp_path / "o") + ["label_map.pbtxt", "report.json"])  # no temporary file left
    for n in _files(tmp_path / "o") + ["label_map.pbtxt"]:
        with tf.io.gfile.GFile(f"{out}/{n}", "rb") as f:
            assert f.read() == (tmp_path / "o" / n).read_bytes(), n
    assert report.splits["train"].shards[0].path == f"{out}/train-00000-of-00002.tfrecord"
    assert [s.images for s in report.splits["train"].shards] == [s.images for s in local.splits["train"].shards]
    # a re-run with fewer shards removes the stale ones on the URL too
    convert_dataset(read_labelme(lm_root), out, workers=1, num_shards=1, val_fraction=0.3, seed=3)
    assert sorted(n for n in tf.io.gfile.listdir(out) if n.startswith("train")) == ["train-00000-of-00001.tfrecord"]


def test_tally_keeps_skips_in_input_order_whatever_their_arrival():
    """A worker pool reads ahead: the planner may report image 5's skip before a worker reports
    image 2's. The report lists them by input order (ties in arrival order)."""
    tally = Tally(["train"])
    for order, name in ((5, "late"), (2, "early"), (2, "early-second"), (0, "first")):
        tally.skip({"kind": "k", "file": name, "reason": "r"}, order)
    assert [r["file"] for r in tally.skipped] == ["first", "early", "early-second", "late"]
    with pytest.raises(StrictModeError, match="x.json: bad"):
        Tally(["train"], strict=True).skip({"kind": "k", "file": "x.json", "reason": "bad"}, 0)
