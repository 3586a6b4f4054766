"""Fuzz the LabelMe and COCO readers with random JSON values (hypothesis): every input must end
in samples written, a counted skip, or a `UserError` naming the file; never a hang, a crash or
another exception. Each example is read and then encoded (masks rasterised) as convert does."""

import json
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.fixtures import write_jpeg
from tfod_seg.annotations.coco import read_coco
from tfod_seg.annotations.labelme import read_labelme
from tfod_seg.errors import UserError
from tfod_seg.records.example import build_example

W, H = 40, 30
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
                           max_leaves=10)
coords = st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10 ** 15), max_value=10 ** 15)
points = st.lists(st.lists(coords, min_size=2, max_size=2) | json_values, max_size=8)


def _maybe(valid, weight_random=1):
    return st.one_of(*([valid] * 3 + [json_values] * weight_random))


labelme_shape = st.fixed_dictionaries({
    "label": _maybe(st.sampled_from(["cat", "dog", "__ignore__", "", " a\nb"])),
    "points": _maybe(points),
    "shape_type": _maybe(st.sampled_from(["polygon", "rectangle", "circle", "mask", "line", "point", "bogus", None])),
    "group_id": _maybe(st.none() | st.integers(-3, 3)),
    "mask": _maybe(st.none() | st.sampled_from(["iVBORw0KGgo=", "not base64!"])),
})
labelme_doc = st.fixed_dictionaries({
    "shapes": _maybe(st.lists(labelme_shape | json_values, max_size=4)),
    "imagePath": _maybe(st.sampled_from(["img.jpg", "../img.jpg", "/etc/passwd", "missing.jpg", ""])),
    "imageData": _maybe(st.none()),
    "imageHeight": _maybe(st.just(H) | st.integers(-5, 10 ** 12)),
    "imageWidth": _maybe(st.just(W) | st.integers(-5, 10 ** 12)),
}) | json_values


def _encode_all(stream):
    """What convert does with a stream: encode every sample (masks rasterised); count outcomes."""
    written = skipped = 0
    for sample in stream:
        names = sorted({i.label for i in sample.instances})
        ids = [names.index(i.label) + 1 for i in sample.instances]
        result = build_example(sample, ids, [i.label for i in sample.instances])
        written += result.features is not None
        skipped += len(result.skipped)
    return written, skipped + len(stream.skipped)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("fuzz"))
    write_jpeg(os.path.join(d, "img.jpg"), W, H)
    return d


@pytest.mark.timeout(600)
@SETTINGS
@given(doc=labelme_doc)
def test_labelme_reader_never_crashes(workdir, doc):
    folder = tempfile.mkdtemp(dir=workdir)
    shutil.copy(os.path.join(workdir, "img.jpg"), folder)
    with open(os.path.join(folder, "a.json"), "w") as f:
        json.dump(doc, f)
    try:
        written, skipped = _encode_all(read_labelme(folder))
    except UserError as e:
        assert str(e)  # a message, printed as one `error:` line by the CLI
        return
    finally:
        shutil.rmtree(folder)
    assert written + skipped >= 1  # the file was either used or counted


coco_ann = st.fixed_dictionaries({
    "id": _maybe(st.integers(0, 5)),
    "image_id": _maybe(st.sampled_from([1, 2, "1"])),
    "category_id": _maybe(st.sampled_from([1, 2, 0])),
    "bbox": _maybe(st.lists(coords, min_size=4, max_size=4)),
    "segmentation": _maybe(st.lists(st.lists(coords, min_size=0, max_size=10), max_size=3)
                           | st.fixed_dictionaries({"counts": _maybe(st.text(max_size=12) | st.lists(st.integers(-3, 2000),
                                                                                                     max_size=6)),
                                                    "size": _maybe(st.just([H, W]))})),
    "iscrowd": _maybe(st.sampled_from([0, 1, "0", "1", 2, True])),
    "area": _maybe(coords),
})
coco_doc = st.fixed_dictionaries({
    "images": _maybe(st.lists(st.fixed_dictionaries({
        "id": _maybe(st.sampled_from([1, 2, "1"])),
        "file_name": _maybe(st.sampled_from(["img.jpg", "../img.jpg", "/etc/hostname", "nope.jpg"])),
        "height": _maybe(st.just(H) | st.integers(-1, 10 ** 9)),
        "width": _maybe(st.just(W) | st.integers(-1, 10 ** 9)),
    }), max_size=2)),
    "annotations": _maybe(st.lists(coco_ann | json_values, max_size=4)),
    "categories": _maybe(st.lists(st.fixed_dictionaries({"id": _maybe(st.sampled_from([1, 2, 0])),
                                                         "name": _maybe(st.sampled_from(["a", "b"]))}), max_size=3)),
}) | json_values


@pytest.mark.timeout(600)
@SETTINGS
@given(doc=coco_doc)
def test_coco_reader_never_crashes(workdir, doc):
    path = os.path.join(workdir, "ann.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    try:
        _encode_all(read_coco(path, workdir))
    except UserError as e:
        assert str(e).startswith(path) or str(e).startswith(workdir)  # names the file
