"""Shared fixture: a records folder as `tfod-seg convert` leaves it (label map, shards, report.json)."""

import json

import pytest


def make_records(root, names=("circle", "square", "triangle"), n_train=40, n_val=10, mask_type="png"):
    root.mkdir(parents=True, exist_ok=True)
    lm = root / "label_map.pbtxt"
    lm.write_text("".join(f"item {{\n  id: {i + 1}\n  name: '{n}'\n}}\n" for i, n in enumerate(names)))
    train = [root / f"train-0000{k}-of-00002.tfrecord" for k in range(2)]
    val = [root / "val-00000-of-00001.tfrecord"]
    for p in train + val:
        p.write_bytes(b"")
    report = {
        "mask_type": mask_type, "num_classes": len(names), "label_map": str(lm),
        "splits": {"train": {"images": n_train, "instances": 3 * n_train, "files": [str(p) for p in train]},
                   "val": {"images": n_val, "instances": 3 * n_val, "files": [str(p) for p in val]}},
    }
    (root / "report.json").write_text(json.dumps(report))
    return {"label_map": str(lm), "train": str(root / "train-*.tfrecord"), "val": str(root / "val-*.tfrecord"),
            "report": str(root / "report.json"), "root": root}


@pytest.fixture
def records(tmp_path):
    return make_records(tmp_path / "records")


@pytest.fixture
def checkpoint(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "ckpt-0.index").write_bytes(b"")
    (d / "ckpt-0.data-00000-of-00001").write_bytes(b"")
    return str(d / "ckpt-0")
