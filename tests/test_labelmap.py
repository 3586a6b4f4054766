"""label_map.pbtxt: parsing errors with file:line, the labelmap command, the shipped maps."""

import os

import pytest

from tests.data.fixtures import labelme_dataset
from tfod_seg.cli import main
from tfod_seg.errors import LabelMapError
from tfod_seg.labelmap import LabelMap, parse_label_map, read_class_list, read_label_map

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_round_trip_with_quotes_and_display_names(tmp_path):
    lm = LabelMap.from_names(["car", "it's"], {"car": "Car"})
    lm.write(tmp_path / "l.pbtxt")
    assert read_label_map(tmp_path / "l.pbtxt") == lm


@pytest.mark.parametrize("text,match", [
    ("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }\n", r"x\.pbtxt:2: duplicate id 1"),
    ("item { id: 1 name: 'a' }\nitem { id: 3 name: 'b' }\n", r"contiguous 1\.\.2; missing \[2\]"),
    ("item { id: 0 name: 'a' }\n", r"x\.pbtxt:1: item 'a' has id 0; ids start at 1"),
    ("item { id: 1 name: 'a' }\n\nitem { id: 2 name: 'a' }\n", r"x\.pbtxt:3: duplicate name 'a'"),
    ("item { id: one name: 'a' }\n", r"x\.pbtxt:1: id must be an integer"),
])
def test_errors_name_file_and_line(text, match):
    with pytest.raises(LabelMapError, match=match):
        parse_label_map(text, path="x.pbtxt")


def test_shipped_maps_load():
    coco = read_label_map(os.path.join(ROOT, "label_maps", "coco_label_map.pbtxt"))
    assert len(coco) == 80 and coco.name_of(1) == "person" and coco.name_of(80) == "toothbrush"


def test_class_list_file(tmp_path):
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncat\n\ndog\n")
    assert read_class_list(tmp_path / "labels.txt") == ["cat", "dog"]
    (tmp_path / "dup.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(LabelMapError, match=r"dup\.txt:3: duplicate class 'cat' \(first on line 1\)"):
        read_class_list(tmp_path / "dup.txt")


def test_labelmap_command(tmp_path, capsys):
    out = tmp_path / "a.pbtxt"
    assert main(["labelmap", "--classes", "b,a", "--out", str(out)]) == 0
    assert read_label_map(out).names == ["b", "a"]
    labelme_dataset(tmp_path / "lm", n=2)
    assert main(["labelmap", "--format", "labelme", str(tmp_path / "lm"), "--out", str(out), "--display-names"]) == 0
    lm = read_label_map(out)
    assert lm.names == ["ball", "cat", "dog"] and lm.items[0].display_name == "Ball"
    assert main(["labelmap", "--check", str(out)]) == 0
    assert "3 classes" in capsys.readouterr().out
    assert main(["labelmap", "--classes", "a,a", "--out", str(out)]) == 2
    assert "duplicate class names ['a']" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "quote's", 'dq"x', "back\\slash", "ctl\x01", "ünï ☃", "cr\r"])
def test_any_label_name_round_trips_through_the_written_file(tmp_path, name):
    lm = LabelMap.from_names([name, "plain"])
    path = tmp_path / "label_map.pbtxt"
    lm.write(path)
    assert read_label_map(path) == lm
    assert "\n  name: '" in path.read_text()  # single-quoted, as TFOD2's own label maps
