"""Find the Python interpreter that runs TFOD2 (TF 2.15 + `object_detection`).

Order: an explicit path (`--tfod-python PATH`), then `$TFOD_SEG_TFOD_PYTHON`, then
`.venv-tfod/bin/python` at the repository root (built by `make tfod-env`) or in the current
directory, then the current interpreter when `object_detection` is importable in it (a user's
own TFOD2 clone on `PYTHONPATH`). Otherwise a `UserError` says to run `make tfod-env`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

from tfod_seg.errors import UserError

logger = logging.getLogger(__name__)

ENV_VAR = "TFOD_SEG_TFOD_PYTHON"
VENV_NAME = ".venv-tfod"
REPO_ROOT = Path(__file__).resolve().parents[3]

_PROBE = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('object_detection') else 3)"


def _venv_python(root: Path) -> Path:
    return root / VENV_NAME / "bin" / "python"


def candidates(tfod_python: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """The interpreters tried, in order, as ``(path, where it came from)``."""
    found = []
    if tfod_python:
        found.append((os.fspath(tfod_python), "--tfod-python"))
    if os.environ.get(ENV_VAR):
        found.append((os.environ[ENV_VAR], f"${ENV_VAR}"))
    for root in dict.fromkeys([REPO_ROOT, Path.cwd()]):
        found.append((str(_venv_python(root)), f"{VENV_NAME} in {root}"))
    return found


def has_object_detection(python: str) -> bool:
    """Whether `python` can import `object_detection` (found on its path; nothing is imported)."""
    try:
        return subprocess.run([python, "-c", _PROBE], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_tfod_python(tfod_python: str | os.PathLike | None = None) -> str:
    """Return the path of the TFOD2 interpreter, or raise `UserError` saying how to get one.

    An explicitly named interpreter (argument or environment variable) must exist and see
    `object_detection`; it is never silently replaced by another one.
    """
    for path, origin in candidates(tfod_python):
        explicit = origin.startswith(("--", "$"))
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            if explicit:
                raise UserError(f"{origin}: {path} is not an executable Python interpreter")
            continue
        if has_object_detection(path):
            logger.debug("TFOD2 interpreter %s (from %s)", path, origin)
            return path
        if explicit:
            raise UserError(
                f"{origin}: {path} cannot import object_detection (TFOD2); "
                "run `make tfod-env` to build .venv-tfod, or point it at an interpreter with TFOD2"
            )
        logger.warning("%s exists but cannot import object_detection; rebuild it with `make tfod-env`", path)
    if importlib.util.find_spec("object_detection") is not None:
        return sys.executable
    raise UserError(
        "the tfod engine needs the TFOD2 environment, and none was found: run `make tfod-env` "
        f"(builds {VENV_NAME}/ with TF 2.15 + TFOD2), or pass --tfod-python PATH / set "
        f"${ENV_VAR}, or put a TFOD2 checkout (object_detection) on PYTHONPATH"
    )
