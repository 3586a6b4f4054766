"""The launcher's own options (no TFOD2 needed: parsing happens before any import), and the
compatibility fixes it shares with the TFOD2 environment's start-up hook."""

import json
import os
import subprocess
import sys

import pytest

from tfod_seg.engines.tfod import launcher


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train"], {"mode": "train", "once": False, "steps_per_iteration": 1, "log_every": 10}),
        (["train", "--log_every=5", "--steps_per_iteration=100"], {"log_every": 5, "steps_per_iteration": 100}),
        (["evaluate", "--once"], {"mode": "evaluate", "once": True}),
    ],
)
def test_own_options(argv, expected):
    args = launcher._parse_own(argv, "usage")
    assert {k: getattr(args, k) for k in expected} == expected


@pytest.mark.parametrize("argv", [["export", "--once"], ["serve"], ["train", "--log_every=0"], ["train", "--bogus"]])
def test_bad_options_exit_2_before_importing_tensorflow(argv, capsys):
    with pytest.raises(SystemExit) as e:
        launcher.main(argv + ["--", "--model_dir=x"])
    assert e.value.code == 2
    assert "usage" in capsys.readouterr().err


# ---- compat.py: the fixes the launcher and the environment's start-up hook install -------------
# Checked in a fresh interpreter (the fixes patch modules process-wide), loaded by file path as the
# hook and the launcher load it; TensorFlow and TFOD2 are not needed for these.

COMPAT_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import launcher
compat = launcher.install_compat()
assert launcher.install_compat() is compat  # one copy, installed once
from PIL import ImageFont
font = ImageFont.load_default()
import numpy as np
print(json.dumps({"applied": compat.applied(), "getsize": list(font.getsize("Mask R-CNN")),
                  "bbox": list(font.getbbox("Mask R-CNN")), "finders": sum(
                      getattr(f, "tfod_seg_compat", False) for f in sys.meta_path),
                  "np_bool_is_numpys": np.bool is not bool}))
"""


def test_compat_installs_the_pillow_fix_on_import_and_leaves_present_names_alone():
    here = os.path.dirname(launcher.__file__)
    proc = subprocess.run([sys.executable, "-c", COMPAT_PROBE, here], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["finders"] == 1
    # Pillow >= 10 (this environment's) has no getsize: put back, as the extent from the origin.
    assert "PIL.ImageFont.FreeTypeFont.getsize" in out["applied"] or "PIL.ImageFont.ImageFont.getsize" in out["applied"]
    assert out["getsize"] == out["bbox"][2:]
    # NumPy 2 has np.bool again (its own type): not replaced by Python's bool.
    assert out["np_bool_is_numpys"] and "np.bool" not in out["applied"]


def test_per_category_stats_equal_cocoeval_stats_per_category():
    """compat.category_stats: one column per category, each the COCOeval.stats of that category alone."""
    import numpy as np

    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from tfod_seg.engines.tfod import compat

    images = [{"id": i, "width": 100, "height": 100} for i in (1, 2, 3)]
    gt = [(1, 1, [10, 10, 30, 30]), (2, 1, [50, 50, 40, 20]), (2, 2, [5, 60, 30, 30]), (3, 2, [20, 20, 50, 50])]
    dets = [(1, 1, [12, 10, 30, 28], 0.9), (2, 1, [0, 0, 20, 20], 0.8), (2, 1, [52, 50, 38, 20], 0.3),
            (2, 2, [5, 62, 30, 28], 0.7), (3, 2, [0, 0, 30, 30], 0.6)]

    def evaluate(cat_ids):
        coco = COCO()
        coco.dataset = {"images": images, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
                        "annotations": [{"id": k, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3],
                                         "iscrowd": 0} for k, (i, c, b) in enumerate(gt, 1)]}
        coco.createIndex()
        res = coco.loadRes([{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, b, s in dets])
        ev = COCOeval(coco, res, "bbox")
        ev.params.catIds = cat_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
        return ev

    both = compat.category_stats(evaluate([1, 2]))
    assert both.shape == (12, 2)
    for column, cat in enumerate([1, 2]):
        np.testing.assert_allclose(both[:, column], evaluate([cat]).stats)
    assert not np.allclose(both[:, 0], both[:, 1])  # the columns really are per category
