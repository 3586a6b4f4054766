"""All file access on user paths: local paths and URLs (``gs://``, ``ram://``, ...) alike.

Every path a user gives may be a URL. Local paths use the standard library (no TensorFlow
import, so forked conversion workers and ``tfod-seg --help`` stay light); a URL goes through
``tf.io.gfile`` (imported on first use), as Model Garden and TFOD2 do. No other module calls
``open``/``os.path``/``glob`` on a user path.

Atomic outputs: a local file is written under a temporary name beside it, then renamed. On a
URL the file is written to a local temporary file and uploaded to its final name when complete:
a Cloud Storage object only becomes visible once its upload finishes, so readers never see half
a file, and no rename is needed (a GCS rename is a copy plus a delete: a second transfer).

A URL whose scheme the installed TensorFlow cannot open (``s3://`` without a plugin, or a typo
such as ``gs:/bucket``) raises `PathError` naming the scheme before anything is written.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob as _glob
import json
import os
import re
import shutil
import tempfile
from typing import IO, Iterator, List, Optional

from tfod_seg.errors import UserError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BROKEN_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/{0,1}(?!/)")


class PathError(UserError):
    """A path that cannot be used: unsupported scheme, wrong kind (file vs folder), unwritable."""


def is_url(path) -> bool:
    return bool(_URL.match(os.fspath(path)))


def scheme(path) -> str:
    m = _URL.match(os.fspath(path))
    return m.group(1).lower() if m else ""


def _gfile():
    import tensorflow as tf  # heavy: only for URLs

    return tf.io.gfile


_checked_schemes: dict = {}


def check_path(path, what: str = "path") -> str:
    """Return ``path`` as a string if it can be used; raise `PathError` otherwise.

    Catches ``gs:/bucket`` (one slash: would create a local folder named ``gs:``) and schemes the
    installed TensorFlow has no filesystem for. Credentials are not checked here (no network).
    """
    p = os.fspath(path)
    if not isinstance(p, str):
        raise PathError(f"{p!r}: {what} must be a text path, got bytes")
    if not p:
        raise PathError(f"{what} is empty")
    if not is_url(p):
        m = _BROKEN_URL.match(p)
        if m and len(m.group(1)) > 1:  # not a Windows drive letter
            raise PathError(f"{p}: {what} looks like a URL with a malformed scheme {m.group(1)!r}: "
                            f"expected {m.group(1)}://BUCKET/PATH")
        return p
    s = scheme(p)
    if s not in _checked_schemes:
        _checked_schemes[s] = _scheme_supported(s)
    if not _checked_schemes[s]:
        raise PathError(f"{p}: {what} uses the URL scheme {s!r}, which the installed TensorFlow cannot open "
                        f"(supported: local paths, gs://, ram://; s3:// needs the tensorflow-io plugin)")
    return p


def _scheme_supported(s: str) -> bool:
    import tensorflow as tf

    try:
        tf.io.gfile.exists(f"{s}://tfod-seg-scheme-probe/x")
    except tf.errors.UnimplementedError:
        return False
    except Exception:  # noqa: BLE001 - any other answer (permission, not found) means the scheme exists
        return True
    return True


# -- path arithmetic (no I/O) ---------------------------------------------------------------
def join(base, *parts) -> str:
    base = os.fspath(base)
    if is_url(base):
        return "/".join([base.rstrip("/")] + [str(p).strip("/") for p in parts])
    return os.path.join(base, *[os.fspath(p) for p in parts])


def dirname(path) -> str:
    p = os.fspath(path)
    if is_url(p):
        head = p.rstrip("/").rsplit("/", 1)[0]
        return head if "://" in head and len(head) > len(scheme(p)) + 3 else p.rstrip("/")
    return os.path.dirname(p)


def basename(path) -> str:
    p = os.fspath(path)
    return p.rstrip("/").rsplit("/", 1)[-1] if is_url(p) else os.path.basename(p)


def abspath(path) -> str:
    """A URL unchanged; a local path expanded (``~``) and made absolute."""
    p = os.fspath(path)
    return p if is_url(p) else os.path.abspath(os.path.expanduser(p))


def resolve(path, base: Optional[str]) -> str:
    """``path`` taken relative to the folder ``base`` unless it is absolute or a URL."""
    p = os.fspath(path)
    if is_url(p) or os.path.isabs(os.path.expanduser(p)) or not base:
        return abspath(p)
    return join(base, p)


# -- queries ---------------------------------------------------------------------------------
def exists(path) -> bool:
    p = check_path(path)
    return _gfile().exists(p) if is_url(p) else os.path.exists(p)


def isdir(path) -> bool:
    p = check_path(path)
    return _gfile().isdir(p) if is_url(p) else os.path.isdir(p)


def isfile(path) -> bool:
    p = check_path(path)
    if is_url(p):
        g = _gfile()
        return g.exists(p) and not g.isdir(p)
    return os.path.isfile(p)


def size(path) -> int:
    p = check_path(path)
    return _gfile().stat(p).length if is_url(p) else os.path.getsize(p)


def listdir(path) -> List[str]:
    p = check_path(path)
    if is_url(p):
        return sorted(n.rstrip("/") for n in _gfile().listdir(p))
    return sorted(os.listdir(p))


def walk(top) -> Iterator[tuple]:
    """``(dirpath, dirnames, filenames)`` like `os.walk`, sorted, for local paths and URLs."""
    p = check_path(top)
    it = _gfile().walk(p) if is_url(p) else os.walk(p)
    for d, dirs, files in it:
        dirs[:] = sorted(x.rstrip("/") for x in dirs)
        yield d, dirs, sorted(files)


def has_magic(pattern) -> bool:
    return bool(re.search(r"[*?\[]", os.fspath(pattern)))


def glob(pattern) -> List[str]:
    """Sorted matches of ``pattern`` (``*``, ``?``, ``[...]``), local or remote."""
    p = check_path(pattern)
    if not is_url(p):
        return sorted(_glob.glob(os.path.expanduser(p)))
    if not has_magic(p):
        return [p] if _gfile().exists(p) else []
    # tf.io.gfile.glob handles * and ?; filter again with fnmatch so [...] works too.
    return sorted(m for m in _gfile().glob(p) if fnmatch.fnmatchcase(m, p))


# -- reading ---------------------------------------------------------------------------------
def open_file(path, mode: str = "rb", encoding: Optional[str] = None) -> IO:
    """A file object for ``path``; text modes decode as ``encoding`` (default UTF-8)."""
    p = check_path(path)
    if not is_url(p):
        if "b" in mode:
            return open(p, mode)
        return open(p, mode, encoding=encoding or "utf-8")
    f = _gfile().GFile(p, mode.replace("t", "") if "b" in mode else mode.replace("t", "") + "b")
    if "b" in mode:
        return f
    import io as _io

    return _io.TextIOWrapper(f, encoding=encoding or "utf-8")


def read_bytes(path, error: type = UserError, what: str = "file") -> bytes:
    """The bytes of ``path``; a missing path or a folder raises ``error`` naming it."""
    p = check_path(path, what)
    try:
        if not is_url(p):
            with open(p, "rb") as f:
                return f.read()
        g = _gfile()
        if g.isdir(p):
            raise IsADirectoryError(p)
        with g.GFile(p, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{p}: is a directory, expected a {what}") from None
    except PermissionError:
        raise error(f"{p}: permission denied reading the {what}") from None
    except OSError as e:
        raise error(f"{p}: cannot read the {what} ({e.strerror or e})") from None
    except Exception as e:  # tf.errors.* for URLs
        if type(e).__module__.startswith("tensorflow"):
            raise error(f"{p}: cannot read the {what} ({_tf_message(e)})") from None
        raise


def _tf_message(e) -> str:
    msg = getattr(e, "message", None) or str(e)
    return msg.strip().splitlines()[0][:300] if msg.strip() else type(e).__name__


def read_text(path, error: type = UserError, what: str = "file", newline: Optional[str] = None) -> str:
    """Read a UTF-8 text file; a missing or non-UTF-8 file raises ``error`` (a `UserError`
    subclass) naming the path and, for bad bytes, the offset."""
    data = read_bytes(path, error, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{os.fspath(path)}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if newline is None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_json(path, error: type = UserError, what: str = "JSON file"):
    """Parse a UTF-8 JSON file; bad JSON raises ``error`` naming the file, line and column."""
    text = read_text(path, error, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{os.fspath(path)}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise error(f"{os.fspath(path)}: JSON nested too deeply") from None


# -- writing ---------------------------------------------------------------------------------
def makedirs(path, what: str = "output folder") -> str:
    """Create folder ``path`` (and parents); a file in the way raises `PathError`."""
    p = check_path(path, what)
    if is_url(p):
        g = _gfile()
        if g.exists(p) and not g.isdir(p):
            raise PathError(f"{p}: {what} is a file, expected a folder")
        g.makedirs(p)
        return p
    try:
        os.makedirs(p, exist_ok=True)
    except FileExistsError:
        raise PathError(f"{p}: {what} is a file (or a file is in its path), expected a folder") from None
    except NotADirectoryError:
        raise PathError(f"{p}: a file is in the way of the {what}") from None
    except PermissionError:
        raise PathError(f"{p}: cannot create the {what}: permission denied") from None
    except OSError as e:
        raise PathError(f"{p}: cannot create the {what} ({e.strerror})") from None
    return p


def remove(path) -> None:
    p = check_path(path)
    if is_url(p):
        _gfile().remove(p)
    else:
        os.unlink(p)


def rmtree(path) -> None:
    p = check_path(path)
    if is_url(p):
        _gfile().rmtree(p)
    else:
        shutil.rmtree(p)


def copy(src, dst, overwrite: bool = True) -> None:
    s, d = check_path(src), check_path(dst)
    if not is_url(s) and not is_url(d):
        shutil.copyfile(s, d)
    else:
        _gfile().copy(s, d, overwrite=overwrite)


def rename(src, dst, overwrite: bool = True) -> None:
    s, d = check_path(src), check_path(dst)
    if not is_url(s) and not is_url(d):
        os.replace(s, d)
    else:
        _gfile().rename(s, d, overwrite=overwrite)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_target(p: str, what: str) -> None:
    if isdir(p):
        raise PathError(f"{p}: {what} is a folder, expected a file path")


@contextlib.contextmanager
def atomic_path(path, what: str = "output file") -> Iterator[str]:
    """Yield a LOCAL temporary path; on success it becomes ``path`` (renamed locally, uploaded
    for a URL). On any error the temporary file is removed and ``path`` is untouched. The file
    gets the user's normal permissions (umask), not mkstemp's 0600."""
    p = check_path(path, what)
    _check_target(p, what)
    if is_url(p):
        makedirs(dirname(p), "output folder")
        fd, tmp = tempfile.mkstemp(prefix="tfod-seg-", suffix="-" + basename(p))
        os.close(fd)
        try:
            yield tmp
            _gfile().copy(tmp, p, overwrite=True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return
    directory = os.path.dirname(os.path.abspath(p))
    makedirs(directory, "output folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(p) + ".", suffix=".tmp", dir=directory)
    except PermissionError:
        raise PathError(f"{p}: cannot write the {what}: permission denied") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes, what: str = "output file") -> None:
    with atomic_path(path, what) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path, text: str, what: str = "output file") -> None:
    atomic_write_bytes(path, text.encode("utf-8"), what)


def atomic_write_json(path, obj, indent: int = 2, what: str = "output file") -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n", what)


@contextlib.contextmanager
def local_copy(path, what: str = "file") -> Iterator[str]:
    """Yield a local path holding ``path``'s bytes (the path itself when already local), for
    libraries that only read real files."""
    p = check_path(path, what)
    if not is_url(p):
        yield p
        return
    data = read_bytes(p, UserError, what)
    fd, tmp = tempfile.mkstemp(prefix="tfod-seg-", suffix="-" + basename(p))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
