"""The launcher's own options (no TFOD2 needed: parsing happens before any import)."""

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
