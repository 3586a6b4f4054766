"""multi_worker: two worker processes on 127.0.0.1 train a few steps together (reads TF_CONFIG)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.garden_fixtures import REPO

WORKER = """
import json, sys
from tfod_seg.engines.garden.train import train
r = train(sys.argv[1], sys.argv[2], num_train_steps=int(sys.argv[3]), strategy="multi_worker", num_workers=2)
print("RESULT " + json.dumps({k: getattr(r, k) for k in ("final_step", "strategy", "start_step")}))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_train_together(tiny_trained_model, tmp_path):
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    model_dir = str(tmp_path / "mw")
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}),
                   TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, tiny_trained_model.config, model_dir, "4"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=400)
            assert p.returncode == 0, err[-3000:]
            outs.append(json.loads(out.split("RESULT ", 1)[1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [o["final_step"] for o in outs] == [4, 4]
    assert {o["strategy"] for o in outs} == {"multi_worker"}
    # Only the chief (worker 0) writes checkpoints and the config into model_dir.
    assert os.path.exists(os.path.join(model_dir, "ckpt-4.index"))
    with open(os.path.join(model_dir, "params.yaml")) as f:
        assert "multi_worker_mirrored" in f.read()


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    from tfod_seg.engines.garden.runtime import choose_strategy
    from tfod_seg.errors import EngineError

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(EngineError, match="TF_CONFIG"):
        choose_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2", "c:3"]},
                                                "task": {"type": "worker", "index": 0}}))
    with pytest.raises(EngineError, match="lists 3 workers"):
        choose_strategy("auto", num_workers=2)
    assert choose_strategy("auto") == "multi_worker"
