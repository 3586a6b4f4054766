"""TFRecord framing without TensorFlow: CRC-32C is right and TensorFlow reads the files."""

import os

import pytest

from tfod_seg.records import tfrecord


def test_crc32c_known_value():
    assert tfrecord.crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("n", [0, 1, 4, 511, 512, 513, 4096, 4097, 70001])
def test_vectorised_crc_equals_reference(n):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

    data = os.urandom(n)
    assert tfrecord.masked_crc32c(data) == reference(data)
    assert tfrecord.crc32c(data) == tfrecord._crc_py(data) ^ 0xFFFFFFFF


def test_tensorflow_reads_and_verifies_our_files(tmp_path):
    import tensorflow as tf

    records = [os.urandom(n) for n in (0, 10, 600, 100_000)]
    with tfrecord.TFRecordFile(str(tmp_path / "a.tfrecord")) as f:
        for r in records:
            f.write(r)
    assert list(tf.data.TFRecordDataset(str(tmp_path / "a.tfrecord")).as_numpy_iterator()) == records
    data = bytearray((tmp_path / "a.tfrecord").read_bytes())
    data[-10] ^= 1  # corrupt the last record's payload: TensorFlow's checksum must catch it
    (tmp_path / "b.tfrecord").write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(tmp_path / "b.tfrecord")).as_numpy_iterator())
