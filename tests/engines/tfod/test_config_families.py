"""Every zoo-shaped Faster R-CNN config (tests/config/zoo_shaped.py) made a Mask R-CNN by
`tfod-seg config`, then parsed with TFOD2's pipeline_pb2 and built with TFOD2's model_builder;
one training step for an FPN and a non-FPN extractor. Marked ``tfod``: run by `make test-tfod`
(e.g. ``PYTEST_ARGS="-k families"``); skipped in the normal suite.

Budget: the 14 parse + build cases take seconds each (model_builder builds the Keras layers
lazily); each training step ~1-3 min on 2 shared cores, mostly graph tracing.
"""

import importlib.util

import numpy as np
import pytest

from tests.config.zoo_shaped import CASES, write_zoo_config

pytestmark = [
    pytest.mark.tfod,
    pytest.mark.skipif(importlib.util.find_spec("object_detection") is None,
                       reason="needs the TFOD2 environment: `make test-tfod` (builds .venv-tfod)"),
]
SIZE = 128


@pytest.fixture(autouse=True, scope="module")
def compat_aliases():
    """The TFOD2 compatibility fixes, as in test_tfod2_integration.py."""
    from tfod_seg.engines.tfod.launcher import install_compat

    install_compat()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from tests.engines.tfod.test_tfod2_integration import make_samples
    from tfod_seg.records.convert import convert_dataset

    out = tmp_path_factory.mktemp("family_records")
    samples, _ = make_samples(8, size=SIZE)
    convert_dataset(samples, out, val_fraction=0.25, workers=1)
    return out


def _generate(tmp_path, records, extractor, resizer, steps=1000, **kw):
    from tfod_seg.config.generate import generate_config

    src = write_zoo_config(tmp_path, extractor, resizer, size=SIZE)
    return generate_config(src, label_map=str(records / "label_map.pbtxt"), train=str(records / "train-*.tfrecord"),
                           val=str(records / "val-*.tfrecord"), model_dir=str(tmp_path / "run"),
                           out=str(tmp_path / "pipeline.config"), steps=steps, batch_size=1, **kw)


@pytest.mark.parametrize("extractor, resizer", CASES)
def test_family_parses_and_builds(tmp_path, records, extractor, resizer):
    from object_detection.builders import model_builder
    from object_detection.protos import input_reader_pb2
    from object_detection.utils import config_util

    from tfod_seg.config.checks import check_config

    path = _generate(tmp_path, records, extractor, resizer)
    assert [p for p in check_config(path) if p.severity == "error"] == []
    configs = config_util.get_configs_from_pipeline_file(path)
    fr = configs["model"].faster_rcnn
    mp = fr.second_stage_box_predictor.mask_rcnn_box_predictor
    assert fr.number_of_stages == 3 and fr.num_classes == 2
    assert mp.predict_instance_masks and (mp.mask_height, mp.mask_width) == (33, 33)
    assert mp.mask_prediction_num_conv_layers == 4 and mp.HasField("conv_hyperparams")
    assert fr.second_stage_mask_prediction_loss_weight == 4.0 and not fr.resize_masks
    assert not (fr.use_static_shapes or fr.use_matmul_crop_and_resize or configs["train_config"].use_bfloat16)
    for reader in [configs["train_input_config"], *configs["eval_input_configs"]]:
        assert reader.load_instance_masks and reader.mask_type == input_reader_pb2.PNG_MASKS
    model = model_builder.build(configs["model"], is_training=True)
    assert model._number_of_stages == 3  # noqa: SLF001 (the built meta-architecture runs the mask stage)
    assert type(model._feature_extractor).__name__.endswith("KerasFeatureExtractor")  # noqa: SLF001


@pytest.mark.slow
@pytest.mark.parametrize("extractor", ["faster_rcnn_resnet50_fpn_keras", "faster_rcnn_resnet50_keras"])
def test_family_trains_one_step(tmp_path, records, extractor):
    from tfod_seg.engines.tfod import run

    path = _generate(tmp_path, records, extractor, "fixed", steps=1, augment="none",
                     overrides=["model.faster_rcnn.first_stage_max_proposals=32",
                                "+model.faster_rcnn.second_stage_batch_size=16"])
    events = []
    run("train", {"pipeline_config_path": path, "model_dir": str(tmp_path / "run")}, on_progress=events.append)
    assert [e.step for e in events] == [1]
    assert events[0].loss is not None and np.isfinite(events[0].loss)
    assert "Loss/BoxClassifierLoss/mask_loss" in events[0].extra  # the mask head trains
