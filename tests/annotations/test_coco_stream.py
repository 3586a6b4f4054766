"""The COCO reader streams the file with ijson into an on-disk index: the same samples and skips
as the whole-document parse, json.loads semantics (member order, duplicate keys, BOM), same errors."""

import codecs
import json

import pytest

from tests.annotations.test_coco import coco_dataset
from tfod_seg.annotations import coco
from tfod_seg.annotations.coco import read_coco
from tfod_seg.errors import AnnotationError


def _read(tmp_path, doc=None, raw=None):
    path = tmp_path / "instances.json"
    if raw is not None:
        path.write_bytes(raw)
    elif doc is not None:
        path.write_text(json.dumps(doc, indent=1))
    stream = read_coco(path, tmp_path)
    samples = list(stream)
    return [(s.source_id, s.filename, s.instances) for s in samples], stream.skipped, stream.label_names


def _messy(doc):
    """Skips of every kind the index decides (orphans, bad ids, non-objects), long numbers, NaN,
    a key after the arrays, annotations before images."""
    anns = doc["annotations"] + [
        {"id": 4, "image_id": 99, "category_id": 7, "bbox": [1, 1, 2, 2]},
        7, {"id": 5, "image_id": [11]}, {"id": 6, "image_id": "11", "category_id": 7, "bbox": [1, 1, 2, 2]},
        {"id": 8, "image_id": 12, "category_id": 7, "bbox": [1.000000000000000000001, 2e0, 30.5, "4"]},
        {"id": 9, "image_id": 12, "category_id": 7, "bbox": [1.25, 2.5, 3.123456789012345, 4]}]
    return {"annotations": anns, "info": {"year": 2026, "deep": [[1, [2, {"x": None}]]]},
            "images": doc["images"], "categories": doc["categories"], "licenses": []}


def test_the_stream_reads_what_the_whole_document_parse_reads(tmp_path, monkeypatch):
    doc, _ = coco_dataset(tmp_path)
    doc["categories"][0]["name"] = "chien 犬 🐕"  # UTF-8 sequences of 2-4 bytes, cut by 1-byte chunks
    (tmp_path / "instances.json").write_bytes(codecs.BOM_UTF8 + json.dumps(_messy(doc), indent=1,
                                                                          ensure_ascii=False).encode())
    with monkeypatch.context() as m:
        m.setattr(coco, "_stream_into", lambda index, f: (_ for _ in ()).throw(coco._NotStreamable("test")))
        whole = _read(tmp_path)  # json.loads of the whole file (the fallback)
    assert whole[2] == ["zero", "chien 犬 🐕"]
    assert [s[0] for s in whole[0]] == ["11", "12", "13"]
    assert [len(s[2]) for s in whole[0]] == [2, 2, 0]  # id 9 kept; id 8 (a string in its bbox) skipped
    assert [r["kind"] for r in whole[1]][:4] == ["missing_image_id", "bad_annotation", "bad_annotation",
                                                 "missing_image_id"]
    assert "annotations[5]: image_id must be an integer, got [11]" in whole[1][2]["reason"]
    assert "annotation id 6 points to image id '11'" in whole[1][3]["reason"]  # "11" is not 11
    monkeypatch.setattr(coco, "read_json_file", None)  # a valid file never falls back to the whole parse
    assert _read(tmp_path) == whole


def test_a_repeated_key_keeps_its_last_value_as_json_loads_does(tmp_path):
    doc, _ = coco_dataset(tmp_path)
    first = json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "a.jpg"}],
                        "annotations": [{"id": 50, "image_id": 1}]})[:-1]
    raw = first + ", " + json.dumps(doc)[1:]  # the same keys again, with the real values
    assert _read(tmp_path, raw=raw.encode()) == _read(tmp_path, doc=doc)


@pytest.mark.parametrize("raw", [
    b'{"images": [}', b'{"images": [{"id": 1} {"id": 2}]}', b'{"images": []} x', b'{"images" [],}',
    b'{"images": [1, 2,]}', b'{\n  "images": [\n    {"id": 1,\n     "file_name": }\n  ]\n}',
    codecs.BOM_UTF8 + b'{"categories": [{"id": 1, "name": "a"]}', b'{"images": "\xff"}', b"", b"[]", b"7",
    b'{"annotations": [' + b"1, " * 5000 + b"{]}",
])
def test_errors_are_those_of_the_whole_file_parse(tmp_path, raw):
    path = tmp_path / "instances.json"
    path.write_bytes(raw)
    try:
        expected = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        expected = f"not UTF-8 text ({e.reason} at byte {e.start})"
    except json.JSONDecodeError as e:
        expected = f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
    else:
        expected = "expected a JSON object with 'images', 'annotations', 'categories'"
    with pytest.raises(AnnotationError) as err:
        read_coco(path, tmp_path)
    assert str(err.value) == f"{path}: {expected}"


@pytest.mark.parametrize("depth", [900, 5000])
def test_an_element_nested_too_deeply_is_one_error(tmp_path, depth):
    seg = "[" * depth + "]" * depth
    raw = '{"images": [], "categories": [{"id": 1, "name": "a"}], "annotations": [{"id": 1, "x": %s}]}' % seg
    with pytest.raises(AnnotationError, match="instances.json: JSON nested too deeply"):
        _read(tmp_path, raw=raw.encode())


def test_dataset_errors_come_in_the_same_order_wherever_the_keys_are(tmp_path):
    doc, _ = coco_dataset(tmp_path)
    doc["images"].append({"file_name": "no-id.jpg"})
    doc["categories"].append({"id": 7, "name": "cat"})
    reordered = {"images": doc["images"], "annotations": doc["annotations"], "categories": doc["categories"]}
    with pytest.raises(AnnotationError, match="categories\\[2\\]: duplicate category id 7"):
        _read(tmp_path, doc=reordered)
    doc["categories"].pop()
    with pytest.raises(AnnotationError, match="images\\[3\\]: needs an 'id'"):
        _read(tmp_path, doc=doc)


def test_the_index_is_closed_when_the_stream_ends_or_fails(tmp_path, monkeypatch):
    opened = []
    real = coco._Index

    def tracked():
        index = real()
        opened.append(index)
        return index

    monkeypatch.setattr(coco, "_Index", tracked)
    doc, _ = coco_dataset(tmp_path)
    _read(tmp_path, doc=doc)
    doc["images"].append(dict(doc["images"][0]))
    with pytest.raises(AnnotationError, match="duplicate image id 11"):
        _read(tmp_path, doc=doc)
    assert len(opened) == 2
    for index in opened:
        with pytest.raises(Exception, match="closed"):
            index.db.execute("SELECT 1")


def test_a_top_level_key_that_reads_as_an_element_path_is_not_taken_for_one(tmp_path):
    doc, _ = coco_dataset(tmp_path)
    expected = _read(tmp_path, doc=doc)
    doc["images.item"] = {"id": 99, "file_name": "a.jpg", "height": 48, "width": 64}
    doc["annotations.item"] = [{"id": 98, "image_id": 11, "category_id": 7, "bbox": [1, 1, 5, 5]}]
    assert _read(tmp_path, doc=doc) == expected
