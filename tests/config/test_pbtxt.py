"""Protobuf-text editor: byte-identical round trips, dotted-path edits, error positions."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfod_seg.pbtxt import Ident, PbtxtDocument, parse_path, schema_available, validate_with_schema
from tfod_seg.errors import ConfigError

SAMPLE = '''# Mask R-CNN with Inception Resnet v2 (no atrous)
# Sync-trained on COCO (with 8 GPUs) with batch size 16 (1024x1024 resolution)

model {
  faster_rcnn {
    number_of_stages: 3
    num_classes: 90   # COCO
    image_resizer {
      fixed_shape_resizer { height: 1024 width: 1024 }
    }
    second_stage_box_predictor {
      mask_rcnn_box_predictor {
        predict_instance_masks: true
        conv_hyperparams { op: CONV regularizer { l2_regularizer { weight: 0.0 } } }
      }
    }
  }
}

train_config: {
  batch_size: 16
  num_steps: 200000
  optimizer {
    momentum_optimizer: {
      learning_rate: {
        cosine_decay_learning_rate {
          learning_rate_base: 0.008
          total_steps: 200000
          warmup_learning_rate: 0.0
          warmup_steps: 5000
        }
      }
      momentum_optimizer_value: 0.9
    }
    use_moving_average: false
  }
  fine_tune_checkpoint_type: "detection"
  data_augmentation_options {
    random_horizontal_flip {
    }
  }
}

eval_config: {
  metrics_set: "coco_detection_metrics"
  metrics_set: "coco_mask_metrics"
  eval_instance_masks: true
  include_metrics_per_category: false;
}
'''


def test_unmodified_file_is_byte_identical(tmp_path):
    p = tmp_path / "pipeline.config"
    p.write_bytes(SAMPLE.replace("\n", "\r\n").encode())  # CRLF survives too
    doc = PbtxtDocument.load(p)
    out = tmp_path / "out.config"
    doc.dump(out)
    assert out.read_bytes() == p.read_bytes()


def test_get_by_dotted_path_and_index():
    doc = PbtxtDocument.parse(SAMPLE)
    assert doc.get("model.faster_rcnn.num_classes") == 90
    assert doc.get("model.faster_rcnn.image_resizer.fixed_shape_resizer.height") == 1024
    assert doc.get("eval_config.metrics_set[1]") == "coco_mask_metrics"
    assert doc.get("eval_config.metrics_set[-1]") == "coco_mask_metrics"
    assert doc.get_all("eval_config.metrics_set") == ["coco_detection_metrics", "coco_mask_metrics"]
    assert doc.get("model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor.conv_hyperparams.op") == "CONV"
    assert isinstance(doc.get("model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor.conv_hyperparams.op"), Ident)
    assert doc.get("train_config.optimizer.use_moving_average") is False
    assert doc.get("train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate."
                   "learning_rate_base") == 0.008
    assert doc.get("train_config.missing", None) is None
    with pytest.raises(ConfigError, match="occurs 2 times; give an index"):
        doc.get("eval_config.metrics_set")
    with pytest.raises(ConfigError, match="no field 'model.faster_rcnn.num_clases'; nearest existing: model.faster_rcnn.num_classes"):
        doc.get("model.faster_rcnn.num_clases")


def test_edits_change_only_their_lines():
    doc = PbtxtDocument.parse(SAMPLE)
    doc.set("model.faster_rcnn.num_classes", 3)
    doc.set("train_config.fine_tune_checkpoint_type", "full")
    doc.remove("eval_config.metrics_set[0]")
    out = doc.dump()
    expected = (SAMPLE.replace("num_classes: 90   # COCO", "num_classes: 3   # COCO")
                .replace('fine_tune_checkpoint_type: "detection"', 'fine_tune_checkpoint_type: "full"')
                .replace('  metrics_set: "coco_detection_metrics"\n', ""))
    assert out == expected


def test_add_remove_and_create_messages():
    doc = PbtxtDocument.parse(SAMPLE)
    doc.add("eval_config.metrics_set", "coco_panoptic_metrics")
    assert doc.get_all("eval_config.metrics_set")[-1] == "coco_panoptic_metrics"
    doc.add("train_config.data_augmentation_options", {"random_scale_crop_and_pad_to_square": {"scale_min": 0.5, "scale_max": 2.0}})
    assert doc.get("train_config.data_augmentation_options[1].random_scale_crop_and_pad_to_square.scale_max") == 2.0
    doc.set("train_input_reader.tf_record_input_reader.input_path", "/data/train-*.tfrecord")
    doc.set("train_input_reader.mask_type", Ident("PNG_MASKS"))
    text = doc.dump()
    assert 'train_input_reader {\n  tf_record_input_reader {\n    input_path: "/data/train-*.tfrecord"\n  }\n  mask_type: PNG_MASKS\n}' in text
    again = PbtxtDocument.parse(text)
    assert again.get("train_input_reader.mask_type") == "PNG_MASKS"
    assert again.remove("train_config.data_augmentation_options") == 2
    assert not again.has("train_config.data_augmentation_options")
    assert again.get("train_config.batch_size") == 16


def test_list_syntax_indices_and_set_all():
    doc = PbtxtDocument.parse('eval_config { metrics_set: ["a", "b"] }\n')
    assert doc.get("eval_config.metrics_set[1]") == "b"
    doc.add("eval_config.metrics_set", "c")
    assert doc.dump() == 'eval_config { metrics_set: ["a", "b", "c"] }\n'
    doc.remove("eval_config.metrics_set[0]")
    assert doc.dump() == 'eval_config { metrics_set: ["b", "c"] }\n'
    doc.set("eval_config.metrics_set[1]", "z")
    assert doc.get_all("eval_config.metrics_set") == ["b", "z"]
    doc2 = PbtxtDocument.parse('r { p: "a" p: "b" p: "c" }\n')
    doc2.set_all("r.p", ["x"])
    assert doc2.dump() == 'r { p: "x" }\n'
    doc2.set_all("r.p", ["x", "y"])
    assert doc2.get_all("r.p") == ["x", "y"]


def test_set_str_on_enum_keeps_it_unquoted():
    doc = PbtxtDocument.parse("r { mask_type: NUMERICAL_MASKS }\n")
    doc.set("r.mask_type", "PNG_MASKS")
    assert doc.dump() == "r { mask_type: PNG_MASKS }\n"


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("model {\n  num_classes: 3\n", "3:1", "unexpected end of file, expected '}' closing the block opened at line 1 column 7"),
        ("a: 1\nb 2\n", "2:3", "expected ':' after field name 'b', got '2'"),
        ("a {\n  b: }\n", "2:6", "expected a value for field 'b', got '}'"),
        ("a: [1, 2\n", "2:1", "expected ',' or ']' in the list of 'a', got end of file"),
        ("a: 'unterminated\n", "1:4", "cannot parse an unterminated string"),
        ("a: 1 }\n", "1:6", "expected a field name, got '}'"),
        ("x {\n  y: 1\n}\n}\n", "4:1", "expected a field name, got '}'"),
    ],
)
def test_parse_errors_name_file_line_and_column(text, where, what):
    with pytest.raises(ConfigError) as ei:
        PbtxtDocument.parse(text, "bad.config")
    assert str(ei.value) == f"bad.config:{where}: {what}"


def test_parse_path():
    assert parse_path("eval_config.metrics_set[1]") == [("eval_config", None), ("metrics_set", 1)]
    with pytest.raises(ConfigError, match="bad field path"):
        parse_path("a..b")


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.config: file not found"):
        PbtxtDocument.load(tmp_path / "nope.config")


@pytest.mark.skipif(not schema_available(), reason="TFOD2 (object_detection.protos) not importable; run in the TFOD2 env")
def test_validate_with_real_tfod2_schema(tmp_path):
    p = tmp_path / "pipeline.config"
    p.write_text(SAMPLE)
    msg = validate_with_schema(p)
    assert msg.model.faster_rcnn.num_classes == 90
    bad = tmp_path / "bad.config"
    bad.write_text(SAMPLE.replace("num_classes: 90", "num_clases: 90"))
    with pytest.raises(ConfigError, match=r"bad\.config:7:\d+: not a valid TFOD2 pipeline config"):
        validate_with_schema(bad)


def test_validate_without_tfod2_returns_none(tmp_path):
    if schema_available():
        pytest.skip("TFOD2 is importable here")
    assert validate_with_schema(tmp_path / "whatever.config", text="a: 1") is None


# -- property tests ---------------------------------------------------------------------------
NAMES = st.sampled_from(["a", "b", "num_classes", "input_path", "metrics_set", "x_1", "mask_type"])
_safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    _safe_text,
    st.sampled_from([Ident("PNG_MASKS"), Ident("CONV"), Ident("NUMERICAL_MASKS")]),
)


def _model(depth):
    """A message model: list of (name, scalar | nested list)."""
    if depth == 0:
        value = SCALARS
    else:
        value = st.one_of(SCALARS, st.deferred(lambda: _model(depth - 1)))
    return st.lists(st.tuples(NAMES, value), max_size=5)


MODEL = _model(3)
SPACE = st.sampled_from(["", " ", "  "])
NL = st.sampled_from(["\n", "\n\n", " \n", "\r\n"])
COMMENT = st.sampled_from(["", "# note", "#", "# a 'quote' { }"])


def _render_scalar(draw, v):
    if isinstance(v, Ident):
        return str(v)
    if isinstance(v, bool):
        return draw(st.sampled_from(["true", "True"])) if v else draw(st.sampled_from(["false", "False"]))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    from tfod_seg.pbtxt import quote as _quote

    q = _quote(v)
    if draw(st.booleans()):
        q = "'" + q[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
    if len(v) > 1 and draw(st.booleans()):  # split into adjacent literals
        cut = draw(st.integers(1, len(v) - 1))
        q = _quote(v[:cut]) + draw(st.sampled_from([" ", "\n  ", ""])) + _quote(v[cut:])
    return q


@st.composite
def documents(draw):
    model = draw(MODEL)

    def render(fields, indent):
        out = []
        i = 0
        while i < len(fields):
            name, v = fields[i]
            pre = draw(NL) + indent
            c = draw(COMMENT)
            if c:
                pre = draw(NL) + indent + c + pre
            if isinstance(v, list):
                opener = draw(st.sampled_from([" {", ": {", "{", " <"]))
                closer = "}" if "{" in opener else ">"
                body = render(v, indent + "  ")
                out.append(f"{pre}{name}{opener}{body}{draw(NL)}{indent}{closer}")
            else:
                # consecutive scalars of the same name may use [a, b] list syntax
                j = i
                while j + 1 < len(fields) and fields[j + 1][0] == name and not isinstance(fields[j + 1][1], list):
                    j += 1
                if j > i and draw(st.booleans()):
                    items = [_render_scalar(draw, fields[k][1]) for k in range(i, j + 1)]
                    out.append(f"{pre}{name}: [" + draw(st.sampled_from([", ", ",", " , "])).join(items) + "]")
                    i = j + 1
                    continue
                sep = draw(st.sampled_from([": ", ":", " : "]))
                out.append(f"{pre}{name}{sep}{_render_scalar(draw, v)}")
            out.append(draw(st.sampled_from(["", ";", ","])))
            tc = draw(COMMENT)
            if tc:
                out.append(draw(SPACE) + tc)
            i += 1
        return "".join(out)

    text = render(model, "")
    text += draw(st.sampled_from(["", "\n", "\n# end\n"]))
    return model, text


def _model_leaves(fields, prefix=""):
    counts = {}
    out = []
    for name, v in fields:
        k = counts.get(name, 0)
        counts[name] = k + 1
        p = f"{prefix}.{name}[{k}]" if prefix else f"{name}[{k}]"
        if isinstance(v, list):
            out.append((p, "{}"))
            out.extend(_model_leaves(v, p))
        else:
            out.append((p, v))
    return out


def _doc_leaves(doc):
    from tfod_seg.pbtxt import Message

    def walk(msg, prefix):
        out = []
        for name in msg.names():
            for k, (f, i) in enumerate(msg.occurrences(name)):
                node = f.value if i is None else f.value.items[i]
                p = f"{prefix}.{name}[{k}]" if prefix else f"{name}[{k}]"
                if isinstance(node, Message):
                    out.append((p, "{}"))
                    out.extend(walk(node, p))
                else:
                    out.append((p, node.value))
        return out

    return sorted(walk(doc.root, ""), key=lambda x: x[0])


# derandomize: the same 80 documents every run (a failure reproduces; CI cannot fail by chance)
HSET = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@HSET
@given(documents())
def test_property_parse_dump_is_byte_identical_and_values_match(doc_and_text):
    model, text = doc_and_text
    doc = PbtxtDocument.parse(text, "gen.config")
    assert doc.dump() == text
    got = dict(_doc_leaves(doc))
    want = dict(_model_leaves(model))
    assert got.keys() == want.keys()
    for k in want:
        g, w = got[k], want[k]
        if isinstance(w, float):
            assert g == w
        else:
            assert g == w and (isinstance(g, bool) == isinstance(w, bool)), (k, g, w)


@HSET
@given(documents(), st.data())
def test_property_set_changes_exactly_one_value(doc_and_text, data):
    from tfod_seg.pbtxt import Message

    _, text = doc_and_text
    doc = PbtxtDocument.parse(text)
    before = dict(_doc_leaves(doc))
    scalars = [p for p in before if not isinstance(doc.get(p), Message)]
    if not scalars:
        return
    path = data.draw(st.sampled_from(scalars))
    old = before[path]
    new = data.draw(SCALARS.filter(lambda x: not isinstance(x, Ident)))
    doc.set(path, new)
    after = dict(_doc_leaves(PbtxtDocument.parse(doc.dump())))
    assert after.keys() == before.keys()
    for k in before:
        if k != path:
            assert after[k] == before[k]
    v = after[path]
    if isinstance(old, Ident) and isinstance(new, str) and v == new:
        return  # an enum value stays an identifier
    assert v == new and isinstance(v, bool) == isinstance(new, bool)


@HSET
@given(documents(), NAMES, st.one_of(SCALARS, st.dictionaries(NAMES, SCALARS, max_size=3)))
def test_property_add_then_remove_restores_text(doc_and_text, name, value):
    _, text = doc_and_text
    doc = PbtxtDocument.parse(text)
    before = len(doc.get_all(name))
    doc.add(name, value)
    assert len(doc.get_all(name)) == before + 1
    added = doc.get(f"{name}[{before}]")
    if isinstance(value, dict):
        assert added.to_dict() == {k: v for k, v in value.items()}
    else:
        assert added == value
    doc.remove(f"{name}[{before}]")
    assert doc.dump() == text


@HSET
@given(st.dictionaries(NAMES, st.one_of(SCALARS, st.dictionaries(NAMES, SCALARS, min_size=1, max_size=3)), min_size=1, max_size=5))
def test_property_from_dict_round_trip(data):
    doc = PbtxtDocument.from_dict(data)
    again = PbtxtDocument.parse(doc.dump())
    assert again.dump() == doc.dump()
    assert again.to_dict() == data
