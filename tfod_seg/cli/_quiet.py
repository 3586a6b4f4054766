"""Quiet terminal, complete log file: what TensorFlow and Model Garden print goes to a log file.

On a CPU-only machine TensorFlow's C++ runtime prints a CUDA ``cuInit`` error, grappler's
``op_level_cost_estimator ... Error in PredictCost()`` protobuf dumps and oneDNN notes on the
process's stderr, and TensorFlow / Keras / Model Garden log warnings that a user cannot act on
(checkpoint-restore notes about ``optimizer.iter``, "Skipping full serialization", deprecation
notices). `quiet_output` keeps them off the terminal and writes everything to the command's log
file (``DIR/logs/COMMAND.log`` beside its outputs, see `log_path_for`):

* Python logging: the console shows tfod-seg's own warnings and anything at ERROR or above;
  records of the third-party loggers below ERROR (and `warnings.warn` messages) go to the log
  file only. The log file gets INFO and above from everyone.
* The C++ runtime's lines (glog / TensorFlow prefixes, CUDA, grappler dumps) written to file
  descriptor 2 pass through a filter thread: those go to the log file, every other byte reaches
  the terminal unchanged. Python's own ``sys.stderr`` (progress bars, ``error:`` lines) goes
  straight to the terminal. Only done when ``sys.stderr`` is the process's real stderr.

``-v`` turns it off: everything reaches the terminal, as before.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import sys
import threading
from typing import Iterator, Optional

#: Loggers whose records below ERROR go to the log file only.
THIRD_PARTY = ("tensorflow", "absl", "official", "orbit", "tf_keras", "keras", "h5py", "matplotlib", "PIL",
               "py.warnings", "apache_beam", "google", "urllib3", "jax", "numexpr")

#: Lines on file descriptor 2 that belong in the log file, not on the terminal.
NOISE = re.compile("|".join([
    r"^[IWE]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+\S+:\d+\]",  # absl / glog C++ lines (W0000 00:00:... file.cc:1])
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] ",  # TensorFlow's C++ logging prefix
    r"cuInit|cuda_driver|cuda_platform|cudart_stub|Could not find cuda drivers|Unable to register cu(DNN|FFT|BLAS)",
    r"op_level_cost_estimator|PredictCost",
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations|This TensorFlow binary is optimized|rebuild TensorFlow with the appropriate",
    r"TF-TRT Warning",
]))

# Commands whose output folder also holds their log (``DIR/logs/COMMAND.log``); the others (an
# export folder should hold only the model; infer/score outputs are read by other tools) log to
# ``~/.cache/tfod-seg/logs/COMMAND.log``.
_COMMAND_DIRS = {"train": "model_dir", "evaluate": "checkpoint_dir", "demo": "out"}


def log_path_for(args) -> str:
    """``DIR/logs/COMMAND.log`` for train / evaluate / demo with a local folder, else
    ``~/.cache/tfod-seg/logs/COMMAND.log`` (a URL output: the log must be a local file)."""
    from tfod_seg import io

    command = getattr(args, "command", None) or "tfod-seg"
    folder = getattr(args, _COMMAND_DIRS.get(command, ""), None)
    try:  # URLs are not probed here (that would import TensorFlow): they log to the cache
        local = bool(folder) and not io.is_url(str(folder)) and bool(io.check_path(str(folder)))
    except io.PathError:  # e.g. gs:/bucket (one slash): the command reports it; no local 'gs:' folder
        local = False
    if local:
        return os.path.join(os.path.abspath(os.path.expanduser(str(folder))), "logs", f"{command}.log")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "tfod-seg", "logs", f"{command}.log")


class _ConsoleFilter(logging.Filter):
    """Keeps third-party records below ERROR and noise lines off the console handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        third_party = any(record.name == n or record.name.startswith(n + ".") for n in THIRD_PARTY)
        if third_party and record.levelno < logging.ERROR:
            return False
        return not NOISE.search(record.getMessage())


class _LockedFile:
    """The log file, written by the logging handler and the stderr filter thread."""

    def __init__(self, f):
        self.f = f
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return self.f.write(text)

    def flush(self) -> None:
        with self.lock:
            self.f.flush()

    def close(self) -> None:
        with self.lock:
            self.f.close()


class _StderrFilter:
    """File descriptor 2 through a pipe: noise lines to ``log``, the rest to the real stderr."""

    def __init__(self, log):
        self.log = log
        self.real = os.dup(2)
        read, write = os.pipe()
        self.read = read
        os.dup2(write, 2)
        os.close(write)
        self.thread = threading.Thread(target=self._pump, name="tfod-seg-stderr-filter", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        try:
            self._pump_lines()
        except Exception:  # never lose the user's stderr: pass the rest through unfiltered
            with contextlib.suppress(OSError):
                while True:
                    chunk = os.read(self.read, 65536)
                    if not chunk:
                        break
                    os.write(self.real, chunk)

    def _pump_lines(self) -> None:
        pending = b""
        in_noise = False
        while True:
            chunk = os.read(self.read, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                in_noise = self._route(line + b"\n", in_noise)
            if pending and not pending.startswith((b"W", b"E", b"I", b"2")):  # a partial line: a bar, a prompt
                os.write(self.real, pending)
                pending = b""
        if pending:
            self._route(pending, in_noise)

    def _route(self, line: bytes, in_noise: bool) -> bool:
        text = line.decode("utf-8", "replace")
        noise = bool(NOISE.search(text)) or (in_noise and text[:1] in (" ", "\t", "}"))  # a dump's continuation
        if noise:
            self.log.write(text)
            self.log.flush()
        else:
            os.write(self.real, line)
        return noise

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self.real, 2)  # closes the pipe's write end held by fd 2
        self.thread.join(timeout=5)  # forked workers still holding the pipe: give up waiting
        if not self.thread.is_alive():
            os.close(self.read)
        os.close(self.real)


def _real_stderr() -> bool:
    try:
        return sys.stderr is sys.__stderr__ and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def quiet_output(args, verbose: int = 0, log_path: Optional[str] = None) -> Iterator[Optional[str]]:
    """Route library noise to the command's log file while the command runs (see module docstring).
    Yields the log file's path (``None`` with ``-v`` or when it cannot be written)."""
    if verbose:
        yield None
        return
    path = log_path or log_path_for(args)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        log = _LockedFile(open(path, "a", encoding="utf-8"))
    except OSError:
        yield None
        return
    root = logging.getLogger()
    file_handler = logging.StreamHandler(log)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.setLevel(logging.INFO)
    console_filter = _ConsoleFilter()
    consoles = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    old_levels = (root.level, [h.level for h in consoles])
    for h in consoles:
        h.addFilter(console_filter)
        h.setLevel(max(h.level, logging.WARNING))
    root.addHandler(file_handler)
    root.setLevel(min(root.level, logging.INFO))
    logging.captureWarnings(True)
    stderr_filter = _StderrFilter(log) if _real_stderr() else None
    try:
        yield path
    finally:
        gc.collect()  # TensorFlow warns about unrestored checkpoint values when the objects die
        if stderr_filter is not None:
            stderr_filter.close()
        logging.captureWarnings(False)
        root.removeHandler(file_handler)
        root.setLevel(old_levels[0])
        for h, level in zip(consoles, old_levels[1]):
            if stderr_filter is None:  # in-process callers (tests) get their handlers back as they were;
                h.removeFilter(console_filter)  # a CLI process keeps the filter until it exits
            h.setLevel(level)
        log.close()
