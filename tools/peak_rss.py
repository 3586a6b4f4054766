"""Run a command and measure its wall time and peak memory, worker processes included.

Used by the benchmarks in tools/. Memory is sampled every ``interval`` seconds over the whole
process tree with psutil:

* ``peak_tree_pss``: the largest sum of PSS (proportional set size: shared pages divided
  among the processes sharing them, so forked workers are not counted twice) over the tree;
* ``peak_rss``: the largest RSS of any single process of the tree (the kernel's high-water
  mark ``VmHWM`` of each live process, read at each sample, so short peaks between samples
  count; ``wait4``'s ``ru_maxrss`` is not used: on Linux it includes the size of the forking
  parent before ``exec``).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from typing import Dict, List, Optional


@dataclasses.dataclass
class Measured:
    seconds: float
    peak_tree_pss: int  # bytes
    peak_rss: int  # bytes
    returncode: int

    def mib(self, value: int) -> float:
        return value / 2 ** 20


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(cmd: List[str], log: str, env: Optional[Dict[str, str]] = None, interval: float = 0.2) -> Measured:
    """Run ``cmd`` (output to ``log``) and return its time and peak memory."""
    import psutil

    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        root = psutil.Process(proc.pid)
        peak_pss = peak_rss = 0
        try:
            while True:
                pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                try:
                    procs = [root] + root.children(recursive=True)
                except psutil.NoSuchProcess:
                    break
                total = 0
                for p in procs:
                    try:
                        total += p.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        continue
                    peak_rss = max(peak_rss, _hwm(p.pid))
                peak_pss = max(peak_pss, total)
                time.sleep(interval)
        except BaseException:  # Ctrl-C in the benchmark: do not leave the measured command running
            _kill_tree(root)
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(time.perf_counter() - t0, peak_pss, peak_rss, proc.returncode)


def _kill_tree(root) -> None:
    import psutil

    try:
        procs = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
