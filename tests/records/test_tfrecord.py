"""TensorFlow-free Example class and TFRecord writer: the same bytes as TensorFlow's."""

import os
import subprocess
import sys

import pytest

from tests.data.fixtures import labelme_dataset
from tfod_seg.annotations.labelme import read_labelme
from tfod_seg.records import tfrecord
from tfod_seg.records.example import build_example, bytes_feature, float_feature, int64_feature, make_example

FEATURES = {"b": bytes_feature([b"x", b"\x00\xff", b""]), "i": int64_feature([1, -5, 2 ** 40, 0]),
            "f": float_feature([0.5, 1e-9, -3.25, float("inf")]), "empty_i": int64_feature([]),
            "empty_b": bytes_feature([]), "empty_f": float_feature([])}


def test_example_bytes_equal_tensorflows(tmp_path):
    pytest.importorskip("tensorflow")
    labelme_dataset(tmp_path, n=2)
    samples = list(read_labelme(tmp_path))
    cases = [FEATURES] + [build_example(s, [1] * len(s.instances), ["a"] * len(s.instances), mask_type=m).features
                          for s in samples for m in ("png", "numerical")]
    for feats in cases:
        ours = make_example(feats, tfrecord.Example()).SerializeToString(deterministic=True)
        assert ours == make_example(feats).SerializeToString(deterministic=True)


def test_record_file_equals_tf_record_writer(tmp_path):
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("google_crc32c")
    records = [b"", b"abc", os.urandom(70000)]
    w = tfrecord.open_record_file(str(tmp_path / "ours"))
    assert isinstance(w, tfrecord.RecordFile)
    for r in records:
        w.write(r)
    w.close()
    with tf.io.TFRecordWriter(str(tmp_path / "tf")) as t:
        for r in records:
            t.write(r)
    assert (tmp_path / "ours").read_bytes() == (tmp_path / "tf").read_bytes()
    assert list(tf.data.TFRecordDataset(str(tmp_path / "ours")).as_numpy_iterator()) == records


def test_local_conversion_does_not_import_tensorflow(tmp_path):
    pytest.importorskip("google_crc32c")
    labelme_dataset(tmp_path / "lm", n=3)
    code = ("import sys; from tfod_seg.annotations.labelme import read_labelme; "
            "from tfod_seg.records.convert import convert_dataset; "
            f"r = convert_dataset(read_labelme({str(tmp_path / 'lm')!r}), {str(tmp_path / 'o')!r}, workers=1); "
            "assert r.images == 3; assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))


def test_read_records_round_trip_and_corruption(tmp_path):
    pytest.importorskip("google_crc32c")
    records = [b"", b"abc", os.urandom(5000)]
    w = tfrecord.open_record_file(str(tmp_path / "r"))
    for r in records:
        w.write(r)
    w.close()
    with open(tmp_path / "r", "rb") as f:
        assert list(tfrecord.read_records(f)) == records
    data = bytearray((tmp_path / "r").read_bytes())
    data[-10] ^= 0xFF  # a flipped byte in the last record's data
    (tmp_path / "bad").write_bytes(bytes(data))
    with open(tmp_path / "bad", "rb") as f, pytest.raises(ValueError, match="record 2: corrupt data"):
        list(tfrecord.read_records(f, "bad"))
    (tmp_path / "cut").write_bytes(bytes(data[:-20]))
    with open(tmp_path / "cut", "rb") as f, pytest.raises(ValueError, match="record 2: truncated data"):
        list(tfrecord.read_records(f, "cut"))
