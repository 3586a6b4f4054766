"""COCO → TFRecords round trip: multi-part polygons, compressed/uncompressed RLE, crowd, id remap."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from tests.data.fixtures import write_jpeg
from tfod_seg.annotations.coco import read_coco
from tfod_seg.errors import AnnotationError
from tfod_seg.records.convert import convert_dataset
from tfod_seg.records.reader import iter_records

H, W = 48, 64


def coco_dataset(root, with_negative=True):
    """Two annotated images (+ one negative), category ids 0 and 7 (gap), all mask kinds."""
    for name in ("a.jpg", "b.jpg", "neg.jpg"):
        write_jpeg(root / name, W, H, seed=len(name))
    donut = np.zeros((H, W), np.uint8, order="F")
    donut[10:40, 20:60] = 1
    donut[20:30, 30:50] = 0
    rle = mask_util.encode(np.asfortranarray(donut))
    crowd = np.zeros((H, W), np.uint8)
    crowd[:, :5] = 1  # first 5 columns: column-major runs
    images = [{"id": 11, "file_name": "a.jpg", "height": H, "width": W},
              {"id": 12, "file_name": "b.jpg", "height": H, "width": W}]
    if with_negative:
        images.append({"id": 13, "file_name": "neg.jpg", "height": H, "width": W})
    doc = {
        "images": images,
        "categories": [{"id": 7, "name": "dog"}, {"id": 0, "name": "zero"}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 7, "iscrowd": 0, "area": 150.0, "bbox": [2, 2, 30, 20],
             "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12], [20, 10, 32, 10, 32, 22]]},  # two parts
            {"id": 2, "image_id": 11, "category_id": 0, "iscrowd": 0, "area": float(donut.sum()),
             "bbox": [20, 10, 40, 30], "segmentation": {"counts": rle["counts"].decode(), "size": [H, W]}},
            {"id": 3, "image_id": 12, "category_id": 7, "iscrowd": 1, "area": float(crowd.sum()),
             "bbox": [0, 0, 5, H], "segmentation": {"counts": [0, 5 * H, (W - 5) * H], "size": [H, W]}},
        ],
    }
    (root / "instances.json").write_text(json.dumps(doc))
    return doc, {1: None, 2: donut, 3: crowd}


def test_round_trip_and_contiguous_ids(tmp_path):
    doc, masks = coco_dataset(tmp_path)
    stream = read_coco(tmp_path / "instances.json", tmp_path)
    assert stream.label_names == ["zero", "dog"]  # COCO ids 0, 7 → 1, 2
    report = convert_dataset(stream, tmp_path / "out", workers=1)
    assert report["images"] == 3 and report["instances"] == 3 and report["num_skipped"] == 0
    assert any(n["kind"] == "category_id_0" for n in report["notes"])
    assert open(tmp_path / "out" / "label_map.pbtxt").read() == \
        "item {\n  id: 1\n  name: 'zero'\n}\nitem {\n  id: 2\n  name: 'dog'\n}\n"
    a, b, neg = iter_records(str(tmp_path / "out"))
    assert (a.source_id, b.source_id, neg.source_id) == ("11", "12", "13")
    assert list(a.classes) == [2, 1] and a.class_texts == ["dog", "zero"]
    parts = doc["annotations"][0]["segmentation"]
    expected0 = mask_util.decode(mask_util.merge(mask_util.frPyObjects(parts, H, W)))
    np.testing.assert_array_equal(a.masks[0], expected0)
    np.testing.assert_array_equal(a.masks[1], masks[2])
    np.testing.assert_array_equal(b.masks[0], masks[3])
    assert list(b.is_crowd) == [True] and list(a.is_crowd) == [False, False]
    np.testing.assert_allclose(a.boxes[0], [2 / H, 2 / W, 22 / H, 32 / W], rtol=1e-6)
    assert a.area[0] == 150.0
    assert neg.masks.shape == (0, H, W) and len(neg.boxes) == 0


def test_drop_empty_counts_the_negative(tmp_path):
    coco_dataset(tmp_path)
    report = convert_dataset(read_coco(tmp_path / "instances.json", tmp_path, drop_empty=True), tmp_path / "o",
                             workers=1)
    assert report["images"] == 2 and report["skipped_by_reason"] == {"no_instances": 1}
    assert "image id 13 ('neg.jpg') has no annotations" in report["skipped"][0]["reason"]


def test_same_instances_as_model_garden_converter(tmp_path):
    """Model Garden's own create_coco_tf_record functions give the same masks for the same annotations."""
    from official.vision.data import create_coco_tf_record as mg

    doc, _ = coco_dataset(tmp_path, with_negative=False)
    convert_dataset(read_coco(tmp_path / "instances.json", tmp_path), tmp_path / "o", workers=1)
    recs = list(iter_records(str(tmp_path / "o")))
    anns = doc["annotations"]
    for rec, img in zip(recs, doc["images"]):
        mine = [a for a in anns if a["image_id"] == img["id"]]
        for m, ann in zip(rec.masks, mine):
            if isinstance(ann["segmentation"], dict) and isinstance(ann["segmentation"]["counts"], str):
                continue  # Model Garden's converter cannot read compressed RLE (frPyObjects wants lists)
            png = mg.coco_segmentation_to_mask_png(ann["segmentation"], H, W, ann["iscrowd"])
            np.testing.assert_array_equal(m, np.asarray(Image.open(io.BytesIO(png))))


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["images"].append(dict(d["images"][0], file_name="x.jpg")), r"duplicate image id 11 \('a.jpg' and 'x.jpg'\)"),
    (lambda d: d["categories"].append({"id": 7, "name": "cat"}), r"duplicate category id 7"),
    (lambda d: d["categories"].append({"id": 8, "name": "dog"}), r"duplicate category name 'dog' \(ids 7 and 8\)"),
    (lambda d: d.pop("categories"), r"missing or invalid 'categories'"),
])
def test_dataset_level_errors_name_the_file(tmp_path, mutate, match):
    doc, _ = coco_dataset(tmp_path)
    mutate(doc)
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"instances\.json: .*" + match):
        read_coco(tmp_path / "instances.json", tmp_path)
