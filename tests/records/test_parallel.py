"""The worker pool of the writer (records.writer.parallel_map): order, errors, dead workers, Ctrl-C."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.data.fixtures import labelme_dataset
from tfod_seg.errors import AnnotationError, UserError
from tfod_seg.records.writer import WorkerError, parallel_map


def _square(x):
    return x * x


def _fail_on_3(x):
    if x == 3:
        raise ValueError("three")
    return x


def _annotation_error(x):
    raise AnnotationError("a.json", "bad shape")  # custom __init__: not picklable as is


class _Named:
    def __init__(self, n):
        self.n, self.source = n, f"ann/{n}.json"


def _die_on_2(item):
    if item.n == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return item.n


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_in_input_order(workers):
    assert list(parallel_map(_square, range(50), workers=workers, window=4)) == [x * x for x in range(50)]


def _pid(x):
    return x, os.getpid()


def test_only_the_active_workers_get_items():
    """``active()`` limits how many workers are given items (the convert writer leaves a core to
    TensorFlow's import that way); raising it brings the others in, order unchanged."""
    results = list(parallel_map(_pid, range(40), workers=3, active=lambda: 1))
    assert [x for x, _ in results] == list(range(40)) and len({p for _, p in results}) == 1
    seen = []

    def two_after_ten():
        return 1 if len(seen) < 10 else 3

    for x, pid in parallel_map(_pid, range(200), workers=3, active=two_after_ten):
        seen.append((x, pid))
    assert [x for x, _ in seen] == list(range(200))
    assert len({p for _, p in seen[:10]}) == 1 and len({p for _, p in seen}) == 3


def test_worker_exception_is_raised_for_its_item():
    got = []
    with pytest.raises(ValueError, match="three"):
        for v in parallel_map(_fail_on_3, range(10), workers=2):
            got.append(v)
    assert got == [0, 1, 2]


def test_user_error_with_custom_init_crosses_the_process_boundary():
    with pytest.raises(UserError, match="a.json: bad shape"):
        list(parallel_map(_annotation_error, range(3), workers=2))


@pytest.mark.timeout(300)  # the old pool waited forever here; the timeout turns a hang into a failure
def test_a_killed_worker_fails_the_run_naming_its_item():
    with pytest.raises(WorkerError) as e:
        list(parallel_map(_die_on_2, [_Named(n) for n in range(6)], workers=2))
    assert str(e.value).startswith("ann/2.json: a worker process killed by signal 9 (SIGKILL); out of memory?")


SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's default, whatever the test runner had
    import tfod_seg.records.convert as convert

    def slow(args):
        open(os.path.join(sys.argv[2] + ".encoding"), "a").close()  # tells the test a worker is encoding
        time.sleep(0.5)
        return convert.encode_task(args)

    convert._encode_task = slow
    from tfod_seg.cli import main
    print("started", flush=True)
    sys.exit(main(["convert", "--format", "labelme", sys.argv[1], "--out", sys.argv[2], "--workers", "2",
                   "--quiet"]))
""")


@pytest.mark.timeout(180)
def test_ctrl_c_during_convert_exits_130_with_one_line(tmp_path):
    labelme_dataset(tmp_path / "in", n=40, width=48, height=40)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "in"), str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "started"
    marker = tmp_path / "out.encoding"
    while not marker.exists() and proc.poll() is None:  # wait until a worker encodes (no fixed sleep)
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines() == ["interrupted"], err
    leftovers = [n for n in os.listdir(tmp_path / "out") if n.endswith(".tfrecord")] if (tmp_path / "out").exists() else []
    assert leftovers == []  # nothing under a final name


def test_shards_report_and_label_map_get_the_umask_mode(tmp_path):
    from tfod_seg.annotations.labelme import read_labelme
    from tfod_seg.records.convert import convert_dataset

    labelme_dataset(tmp_path / "in", n=2, width=48, height=40)
    old = os.umask(0o027)
    try:
        convert_dataset(read_labelme(tmp_path / "in"), tmp_path / "out", workers=1)
    finally:
        os.umask(old)
    modes = {n: os.stat(tmp_path / "out" / n).st_mode & 0o777 for n in os.listdir(tmp_path / "out")
             if not n.startswith(".")}
    assert modes and set(modes.values()) == {0o640}, modes
