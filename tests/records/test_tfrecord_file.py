"""Shards are written without TensorFlow, byte for byte what TensorFlow writes.

`serialize_example` (TensorFlow Datasets' copy of the Example proto) against TensorFlow's own
``example_pb2``; `ShardedRecordWriter` (`TFRecordFile`, google_crc32c) against
``tf.io.TFRecordWriter``; and `tfod-seg convert` on a local dataset importing no TensorFlow.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.data.fixtures import labelme_dataset
from tfod_seg.records import writer as writer_mod
from tfod_seg.records.example import bytes_feature, float_feature, int64_feature, serialize_example
from tfod_seg.records.writer import ShardedRecordWriter

tf = pytest.importorskip("tensorflow")

FEATURES = {
    "image/encoded": bytes_feature([bytes(range(256)) * 3]),
    "image/height": int64_feature([480]),
    "image/object/bbox/xmin": float_feature([0.25, 1.0, 1e-7]),
    "image/object/class/label": int64_feature([1, 7, -3, 2 ** 40]),
    "image/object/class/text": bytes_feature([b"cat", b"", "żółw".encode()]),
    "image/object/area": float_feature([]),  # an empty list still sets its kind
    "image/object/mask": bytes_feature([]),
    "image/object/is_crowd": int64_feature([]),
}


def _tf_example_bytes(features) -> bytes:
    """The same features through TensorFlow's own ``example_pb2``, as `make_example` adds them."""
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    for key in sorted(features):
        kind, values = features[key]
        lst = getattr(ex.features.feature[key], kind + "_list")
        lst.SetInParent()
        lst.value.extend(values)
    return ex.SerializeToString(deterministic=True)


def test_examples_are_the_bytes_of_tensorflows_example_pb2():
    data = serialize_example(FEATURES)
    assert data == _tf_example_bytes(FEATURES)
    parsed = tf.train.Example.FromString(data).features.feature
    assert parsed["image/object/class/text"].bytes_list.value == [b"cat", b"", "żółw".encode()]
    assert parsed["image/object/class/label"].int64_list.value == [1, 7, -3, 2 ** 40]
    assert parsed["image/object/area"].WhichOneof("kind") == "float_list"
    assert serialize_example({}) == _tf_example_bytes({})


def _records():
    big = np.random.default_rng(0).bytes(3 << 20)  # > 2 MB: longer than any write buffer
    return [b"", serialize_example(FEATURES), b"\x00", big, b"x" * 65537, serialize_example({})]


def test_shards_are_the_bytes_tf_io_tfrecordwriter_writes(tmp_path):
    records = _records()
    with ShardedRecordWriter(str(tmp_path / "ours"), "train", 2) as w:
        for r in records:
            w.write(r)
    for shard, path in enumerate(w.paths):
        mine = records[shard::2]
        theirs = tmp_path / f"tf-{shard}.tfrecord"
        with tf.io.TFRecordWriter(str(theirs)) as tw:
            for r in mine:
                tw.write(r)
        assert open(path, "rb").read() == theirs.read_bytes(), path
        assert [x.numpy() for x in tf.data.TFRecordDataset(path)] == mine


def test_an_empty_shard_is_an_empty_tfrecord_file(tmp_path):
    with ShardedRecordWriter(str(tmp_path), "val", 1) as w:
        pass
    assert os.path.getsize(w.paths[0]) == 0
    assert list(tf.data.TFRecordDataset(w.paths[0])) == []


def test_a_failed_close_renames_nothing(tmp_path, monkeypatch):
    def fail(self):
        self._f.close()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_mod.TFRecordFile, "close", fail)
    with pytest.raises(OSError, match="No space left"):
        with ShardedRecordWriter(str(tmp_path), "train", 2) as w:
            w.write(b"abc")
    assert os.listdir(tmp_path) == []  # no shard under its final name, no temporary file


SCRIPT = textwrap.dedent("""
    import sys
    import tfod_seg.cli
    rc = tfod_seg.cli.main(["convert", "--format", "labelme", sys.argv[1], "--out", sys.argv[2], "--workers", "2",
                            "--val-fraction", "0.5", "--quiet"])
    print(rc, "tensorflow" in sys.modules, "apache_beam" in sys.modules)
""")


def test_convert_to_a_local_folder_imports_no_tensorflow(tmp_path):
    labelme_dataset(tmp_path / "in", n=4, width=48, height=40)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "in"), str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0 False False", proc.stdout
    shards = sorted(str(p) for p in out.glob("*.tfrecord"))
    assert [os.path.basename(p) for p in shards] == ["train-00000-of-00001.tfrecord", "val-00000-of-00001.tfrecord"]
    examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(shards)]
    assert sorted(e.features.feature["image/filename"].bytes_list.value[0] for e in examples) == \
        [f"img_{i:03d}.jpg".encode() for i in range(4)]
    for e in examples:
        assert len(e.features.feature["image/object/mask"].bytes_list.value) >= 1
