import glob
import json
import os

import numpy as np
import pytest

from tfod_seg.demo.shapes import CLASSES, generate_shapes_dataset
from tfod_seg.labelmap import parse_label_map

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    return generate_shapes_dataset(out, num_images=60, image_size=96, seed=3)


def _load(out_dir):
    docs = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*.json"))):
        with open(path) as f:
            docs[os.path.basename(path)] = json.load(f)
    return docs


def test_writes_one_labelme_json_and_image_per_sample(dataset):
    docs = _load(dataset["out_dir"])
    assert len(docs) == 60
    for name, doc in docs.items():
        assert doc["imageHeight"] == doc["imageWidth"] == 96
        assert doc["imagePath"] == name.replace(".json", ".jpg")
        assert os.path.exists(os.path.join(dataset["out_dir"], doc["imagePath"]))
        assert doc["imageData"] is None
        assert doc["shapes"], name
        for shape in doc["shapes"]:
            assert shape["label"] in CLASSES
            assert shape["shape_type"] == "polygon"
            pts = np.asarray(shape["points"])
            assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) >= 3
            assert pts.min() >= 0 and pts.max() <= 96


def test_all_classes_and_occlusions_present(dataset):
    assert set(dataset["instances_per_class"]) == set(CLASSES)
    assert all(n > 10 for n in dataset["instances_per_class"].values()), dataset
    assert dataset["num_occluded"] > 0
    docs = _load(dataset["out_dir"])
    counted = sum(
        len({(s["label"], s["group_id"]) if s["group_id"] is not None else id(s) for s in d["shapes"]})
        for d in docs.values()
    )
    assert counted == dataset["num_instances"]


def test_occluded_pieces_share_a_group_id(tmp_path):
    summary = generate_shapes_dataset(tmp_path, num_images=200, image_size=96, seed=0, max_objects=6)
    assert summary["num_multipart"] > 0
    groups = {}
    for doc in _load(tmp_path).values():
        for s in doc["shapes"]:
            if s["group_id"] is not None:
                groups.setdefault((doc["imagePath"], s["group_id"]), set()).add(s["label"])
    assert groups, "no multi-part instance written"
    assert all(len(labels) == 1 for labels in groups.values())  # one instance, one class


def test_deterministic_from_seed(tmp_path, dataset):
    again = generate_shapes_dataset(tmp_path / "again", num_images=60, image_size=96, seed=3)
    other = generate_shapes_dataset(tmp_path / "other", num_images=60, image_size=96, seed=4)
    first = _load(dataset["out_dir"])
    assert _load(again["out_dir"]) == first
    assert _load(other["out_dir"]) != first
    with open(os.path.join(dataset["out_dir"], "shapes_00007.jpg"), "rb") as a, \
            open(os.path.join(again["out_dir"], "shapes_00007.jpg"), "rb") as b:
        assert a.read() == b.read()


def test_backgrounds_vary(dataset):
    import cv2

    means = [cv2.imread(p).reshape(-1, 3).mean(axis=0)
             for p in sorted(glob.glob(os.path.join(dataset["out_dir"], "*.jpg")))[:20]]
    assert np.std(np.asarray(means), axis=0).max() > 20


def test_annotation_matches_drawn_pixels(dataset):
    """The polygon covers the drawn object: pixels inside differ from the background mean."""
    import cv2
    from pycocotools import mask as mask_utils

    doc = _load(dataset["out_dir"])["shapes_00000.json"]
    img = cv2.imread(os.path.join(dataset["out_dir"], doc["imagePath"])).astype(np.float32)
    union = np.zeros((96, 96), np.uint8)
    for s in doc["shapes"]:
        rle = mask_utils.frPyObjects([np.asarray(s["points"]).ravel().tolist()], 96, 96)
        union |= mask_utils.decode(mask_utils.merge(rle))
    assert union.sum() > 50
    # Inside objects vs outside: the generator keeps object colours away from the background.
    diff = np.abs(img[union == 1].mean(axis=0) - img[union == 0].mean(axis=0)).sum()
    assert diff > 30


def test_shipped_label_map_matches_the_generator(dataset):
    shipped = parse_label_map(open(os.path.join(REPO, "label_maps", "shapes_label_map.pbtxt")).read())
    written = parse_label_map(open(dataset["label_map"]).read())
    assert shipped.names == written.names == list(CLASSES)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_images": 0, "image_size": 96}, "num_images"),
    ({"num_images": 1, "image_size": 8}, "image_size"),
])
def test_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_shapes_dataset(tmp_path, seed=0, **kwargs)
