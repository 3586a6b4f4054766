"""The Beam writer (DirectRunner) gives the local writer's examples, shard names and report."""

import json
import os

import numpy as np
import pytest

from tests.data.fixtures import labelme_dataset, write_jpeg
from tfod_seg.annotations.coco import read_coco
from tfod_seg.annotations.labelme import read_labelme
from tfod_seg.cli import main
from tfod_seg.errors import StrictModeError, UserError
from tfod_seg.records import get_writer
from tfod_seg.records.beam import BeamWriter, pipeline_args
from tfod_seg.records.convert import convert_dataset
from tfod_seg.records.reader import iter_raw_records

pytest.importorskip("apache_beam")

KW = dict(num_shards=3, val_fraction=0.25, seed=3)


def _examples(out, split):
    return sorted(raw for _, _, raw in iter_raw_records(os.path.join(out, f"{split}-*.tfrecord")))


def _comparable(report, out):
    """The report as JSON with the output folder and per-shard counts (Beam's own spread) taken out."""
    doc = json.loads(json.dumps(report.to_json()).replace(str(out), "OUT"))
    for split in doc["splits"].values():
        split["shards"] = [sh["file"] for sh in split["shards"]]
    return doc


def _same_as_local(samples_factory, tmp_path, **kw):
    local = convert_dataset(samples_factory(), tmp_path / "local", workers=1, **kw)
    beam = convert_dataset(samples_factory(), tmp_path / "beam", writer=BeamWriter("direct", workers=1), **kw)
    assert sorted(os.listdir(tmp_path / "beam")) == sorted(os.listdir(tmp_path / "local"))  # no staging left
    for split in local.splits:
        assert _examples(tmp_path / "beam", split) == _examples(tmp_path / "local", split)
        # per-shard counts are read back from the Beam shards themselves
        for sh in beam.splits[split].shards:
            assert sh.images == len(list(iter_raw_records(sh.path)))
    assert _comparable(beam, tmp_path / "beam") == _comparable(local, tmp_path / "local")
    assert (tmp_path / "beam" / "label_map.pbtxt").read_text() == (tmp_path / "local" / "label_map.pbtxt").read_text()
    return local, beam


@pytest.fixture(scope="module")
def lm_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    labelme_dataset(root, n=16)
    return root


def test_labelme_same_examples_shards_and_report(lm_root, tmp_path):
    local, beam = _same_as_local(lambda: read_labelme(lm_root), tmp_path, **KW)
    assert beam.splits["train"].images + beam.splits["val"].images == 16 and beam.splits["val"].images > 0
    assert [os.path.basename(sh.path) for sh in beam.splits["train"].shards] == \
        [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]


def _coco_with_problems(root):
    """Six images: one corrupt JPEG, one missing file, one annotation with an unknown category."""
    images, anns = [], []
    for i in range(6):
        name = f"im{i}.jpg"
        if i != 4:
            write_jpeg(root / name, 64, 48, seed=i)
        images.append({"id": 100 + i, "file_name": name, "height": 48, "width": 64})
        anns.append({"id": i + 1, "image_id": 100 + i, "category_id": 1 + i % 2, "iscrowd": 0,
                     "bbox": [4, 4, 20, 20], "segmentation": [[4, 4, 24, 4, 24, 24, 4, 24]]})
    anns.append({"id": 99, "image_id": 101, "category_id": 9, "bbox": [1, 1, 5, 5], "segmentation": [[1, 1, 6, 1, 6, 6]]})
    (root / "im2.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (root / "instances.json").write_text(json.dumps(doc))
    return root / "instances.json"


def test_coco_bad_image_is_a_counted_skip_in_input_order(tmp_path):
    ann = _coco_with_problems(tmp_path)
    local, beam = _same_as_local(lambda: read_coco(ann, tmp_path), tmp_path, val_fraction=0.3, seed=0)
    kinds = [r["kind"] for r in beam.skipped]
    assert sorted(kinds) == ["bad_image", "missing_image", "unknown_category"]
    assert beam.skipped == local.skipped  # same records, same order
    assert beam.images == 4


def test_model_garden_decoder_reads_beam_records(lm_root, tmp_path):
    tf = pytest.importorskip("tensorflow")
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    report = convert_dataset(read_labelme(lm_root), tmp_path / "o", writer=get_writer("beam", workers=1))
    path, _, raw = next(iter_raw_records(report.splits["train"].shards[0].path))
    out = TfExampleDecoder(include_mask=True).decode(tf.constant(raw))
    masks = out["groundtruth_instance_masks"].numpy()
    assert masks.shape[0] == out["groundtruth_classes"].shape[0] > 0
    assert masks.shape[1:] == tuple(out["image"].shape[:2]) and set(np.unique(masks)) <= {0.0, 1.0}


def test_strict_fails_the_pipeline_naming_the_file(tmp_path):
    ann = _coco_with_problems(tmp_path)
    (tmp_path / "im4.jpg").write_bytes((tmp_path / "im0.jpg").read_bytes())  # only the corrupt image is left
    doc = json.loads(ann.read_text())
    doc["annotations"] = [a for a in doc["annotations"] if a["category_id"] != 9]
    ann.write_text(json.dumps(doc))
    with pytest.raises(StrictModeError, match=r"image id 102 \('im2.jpg'\).*--strict"):
        convert_dataset(read_coco(ann, tmp_path), tmp_path / "o", strict=True, writer=BeamWriter(workers=1))
    assert not [n for n in os.listdir(tmp_path / "o") if n.endswith(".tfrecord")]
    assert os.listdir(tmp_path / "o") == []  # no staging folder, no Beam temporary folder


def test_cli_runner_direct_and_bad_options(lm_root, tmp_path, capsys):
    assert main(["convert", "--format", "labelme", str(lm_root), "--out", str(tmp_path / "o"), "--quiet",
                 "--runner", "direct", "--workers", "1", "--val-fraction", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "16 images, 64 instances, 3 classes (png masks)" in out and "train-00000-of-00001.tfrecord" in out
    assert main(["convert", "--format", "labelme", str(lm_root), "--out", str(tmp_path / "p"), "--quiet",
                 "--runner", "direct", "--beam-options=--no_such_option=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --beam-options: unknown Beam pipeline option(s) --no_such_option")
    assert main(["convert", "--format", "labelme", str(lm_root), "--out", str(tmp_path / "q"), "--quiet",
                 "--beam-options=--direct_num_workers=2"]) == 2
    assert capsys.readouterr().err.startswith("error: --beam-options needs --runner")


@pytest.mark.parametrize("runner, out, message", [
    ("direct", "ram://beam/out", "ram:// is TensorFlow's in-memory filesystem"),
    ("dataflow", "local/out", "--out must be a gs:// URL"),
    ("yarn", "local/out", "--runner must be one of direct, dataflow, flink, spark, got 'yarn'"),
])
def test_refused_outputs_and_runners(lm_root, runner, out, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        convert_dataset(read_labelme(lm_root), out, writer=BeamWriter(runner, workers=1))
    assert os.listdir(tmp_path) == []  # nothing created on a usage error


def test_pipeline_args_user_options_win():
    args = pipeline_args("direct", "--direct_num_workers=3 --direct_running_mode=multi_threading", workers=2)
    assert args[0] == "--runner=DirectRunner" and args[-2:] == ["--direct_num_workers=3",
                                                               "--direct_running_mode=multi_threading"]
