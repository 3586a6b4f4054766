"""Reading records back: corrupt files and payloads give a UserError naming file and record."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfod_seg.errors import UserError
from tfod_seg.records.example import bytes_feature, int64_feature, serialize_example
from tfod_seg.records.reader import iter_raw_records, iter_records


def _write(path, records):
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)


def _example(n):
    return serialize_example({"image/height": int64_feature([n]), "image/width": int64_feature([n]),
                              "image/filename": bytes_feature([b"x%d.jpg" % n])})


def test_reads_back_in_order(tmp_path):
    _write(tmp_path / "a.tfrecord", [_example(3), _example(4)])
    got = list(iter_records(str(tmp_path / "a.tfrecord")))
    assert [(r.filename, r.height, r.index) for r in got] == [("x3.jpg", 3, 0), ("x4.jpg", 4, 1)]


@pytest.mark.parametrize("damage,match", [
    (lambda b: b[:-30], r"c\.tfrecord: record 2 cannot be read: not a TFRecord file, truncated or corrupt"),
    (lambda b: b[:-20] + bytes([b[-20] ^ 1]) + b[-19:], r"c\.tfrecord: record 2 cannot be read"),
    (lambda b: b"this is not a tfrecord file at all", r"c\.tfrecord: record 0 cannot be read"),
])
def test_corrupt_file_names_file_and_record(tmp_path, damage, match):
    _write(tmp_path / "c.tfrecord", [_example(1), _example(2), _example(3) + b"\0" * 40])
    (tmp_path / "c.tfrecord").write_bytes(damage((tmp_path / "c.tfrecord").read_bytes()))
    with pytest.raises(UserError, match=match):
        list(iter_raw_records(str(tmp_path / "c.tfrecord")))


def test_record_that_is_not_an_example(tmp_path):
    _write(tmp_path / "d.tfrecord", [_example(1), b"\xff\xff\xff garbage"])
    with pytest.raises(UserError, match=r"d\.tfrecord: record 1 is not a tf\.train\.Example"):
        list(iter_records(str(tmp_path / "d.tfrecord")))


# -- fuzz: any tf.train.Example parses to a record or a UserError, and checks never crash -----

_KEYS = ["image/height", "image/width", "image/encoded", "image/format", "image/object/bbox/xmin",
         "image/object/bbox/ymin", "image/object/bbox/xmax", "image/object/bbox/ymax", "image/object/class/label",
         "image/object/class/text", "image/object/is_crowd", "image/object/area", "image/object/mask",
         "image/filename", "image/source_id"]
_VALUES = st.one_of(st.tuples(st.just("int64"), st.lists(st.integers(-10, 10 ** 7), max_size=4)),
                    st.tuples(st.just("float"), st.lists(st.floats(allow_nan=True, width=32), max_size=6)),
                    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=20), max_size=3)))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(features=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=10))
def test_any_example_parses_or_is_a_user_error(features, tmp_path_factory):
    from tfod_seg.records.inspect import check_example, render_overlay
    from tfod_seg.records.reader import parse_example

    try:
        ex = parse_example(serialize_example(features), "x.tfrecord", 0)
    except UserError as e:
        assert str(e).startswith("x.tfrecord")
        return
    assert isinstance(check_example(ex), list)
    if ex.encoded and not check_example(ex):
        render_overlay(ex, str(tmp_path_factory.mktemp("overlay")))
