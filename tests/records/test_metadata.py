"""report.json and label_map.pbtxt found from record patterns (tfod_seg.records.metadata)."""

import json

import pytest

from tfod_seg.errors import ConfigError
from tfod_seg.records.metadata import find_label_map, find_report, read_report, record_folders, split_patterns


def _records(folder, report=None, label_map=True):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.tfrecord-00000-of-00001").write_bytes(b"")
    if report is not None:
        (folder / "report.json").write_text(json.dumps(report))
    if label_map:
        (folder / "label_map.pbtxt").write_text("item {\n  id: 1\n  name: 'a'\n}\n")
    return folder


def test_split_patterns_commas_lists_and_base(tmp_path):
    assert split_patterns(None) == []
    assert split_patterns("a/x-*, b/y ,", base=str(tmp_path)) == [str(tmp_path / "a/x-*"), str(tmp_path / "b/y")]
    assert split_patterns(["gs://b/x-*", str(tmp_path / "c")]) == ["gs://b/x-*", str(tmp_path / "c")]


@pytest.mark.parametrize("pattern", ["out/train.tfrecord-*", "out", "out/", "out/train.tfrecord-00000-of-00001",
                                     "missing/x-*,out/train.tfrecord-*"])
def test_find_report_from_glob_folder_file_or_list(tmp_path, pattern):
    _records(tmp_path / "out", report={"mask_type": "png"})
    found = find_report(pattern, base=str(tmp_path))
    assert found == str(tmp_path / "out" / "report.json")
    assert read_report(found) == {"mask_type": "png"}


def test_find_report_none_when_absent(tmp_path):
    _records(tmp_path / "out")
    assert find_report(str(tmp_path / "out" / "*")) is None
    assert read_report(None) is None


def test_first_pattern_with_a_report_wins(tmp_path):
    _records(tmp_path / "a")
    _records(tmp_path / "b", report={"n": 2})
    _records(tmp_path / "c", report={"n": 3})
    assert record_folders([str(tmp_path / "a/*"), str(tmp_path / "b/*"), str(tmp_path / "a")]) == [
        str(tmp_path / "a"), str(tmp_path / "b")]
    assert find_report(f"{tmp_path}/a/*,{tmp_path}/b/*,{tmp_path}/c/*") == str(tmp_path / "b" / "report.json")


@pytest.mark.parametrize("content,expected", [
    ("{", "report.json:1:2: not valid JSON"),
    ("[1, 2]", "report.json: conversion report must be a JSON object, got list"),
    (b"\xff\xfe{}", "report.json: not a UTF-8 text file"),
])
def test_read_report_bad_file_names_it(tmp_path, content, expected):
    p = tmp_path / "report.json"
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    with pytest.raises(ConfigError) as e:
        read_report(str(p))
    assert str(e.value).startswith(str(tmp_path)) and expected in str(e.value)


def test_label_map_from_report_key_relative_to_its_folder(tmp_path):
    other = tmp_path / "maps" / "lm.pbtxt"
    other.parent.mkdir()
    other.write_text("item {\n  id: 1\n  name: 'a'\n}\n")
    _records(tmp_path / "out", report={"label_map": "../maps/lm.pbtxt"})
    assert find_label_map("out/*", base=str(tmp_path)) == str(tmp_path / "out" / "../maps/lm.pbtxt")


def test_label_map_falls_back_to_pbtxt_beside_records(tmp_path):
    _records(tmp_path / "out", report={"label_map": "gone.pbtxt"})
    assert find_label_map(str(tmp_path / "out" / "train.tfrecord-*")) == str(tmp_path / "out" / "label_map.pbtxt")
    _records(tmp_path / "bare", label_map=False)
    assert find_label_map(str(tmp_path / "bare")) is None


def test_url_patterns_use_the_io_layer():
    tf = pytest.importorskip("tensorflow")
    root = "ram://metadata-test/out"
    tf.io.gfile.makedirs(root)
    for name, text in [("train.tfrecord-00000-of-00001", ""), ("report.json", '{"label_map": "label_map.pbtxt"}'),
                       ("label_map.pbtxt", "item {\n  id: 1\n  name: 'a'\n}\n")]:
        with tf.io.gfile.GFile(f"{root}/{name}", "w") as f:
            f.write(text)
    assert find_report(f"{root}/train.tfrecord-*") == f"{root}/report.json"
    assert read_report(f"{root}/report.json") == {"label_map": "label_map.pbtxt"}
    assert find_label_map(root) == f"{root}/label_map.pbtxt"
