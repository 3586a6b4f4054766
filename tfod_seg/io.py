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

Cloud Storage: off Google Cloud, the first ``gs://`` path sets ``NO_GCE_CHECK=true`` so TensorFlow
does not probe the GCE metadata server for credentials (that probe can take a minute); on GCE,
Vertex AI and TPU VMs (and with an explicit ``NO_GCE_CHECK``) nothing changes. A failing ``gs://``
operation raises `PathError` in one line: no network, no credentials (with how to get them),
access denied, or no such bucket, instead of TensorFlow's HTTP error and a traceback.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob as _glob
import json
import os
import posixpath
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


# gs:// is built into TensorFlow's Linux/macOS/Windows wheels: no probe (which would import it).
_checked_schemes: dict = {"gs": True}


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
    if s == "gs":
        prepare_gcs()
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


# -- Cloud Storage: credentials and clear errors ----------------------------------------------
CREDENTIALS_HINT = ("run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
                    "service-account key file")


def on_gce() -> bool:
    """True on Google Compute Engine (also Vertex AI and Cloud TPU VMs), whose metadata server
    gives credentials. Read from the DMI product name, as google-auth does: no network."""
    if os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_IP"):
        return True
    try:
        with open("/sys/class/dmi/id/product_name", encoding="ascii", errors="replace") as f:
            return f.read().strip().startswith("Google")
    except OSError:
        return False


def prepare_gcs() -> None:
    """Off Google Cloud, set ``NO_GCE_CHECK=true`` (TensorFlow then skips the metadata-server
    credentials probe, which can take a minute); an explicit ``NO_GCE_CHECK`` is kept."""
    if "NO_GCE_CHECK" not in os.environ and not on_gce():
        os.environ["NO_GCE_CHECK"] = "true"


def gcs_credentials() -> Optional[str]:
    """Where TensorFlow will take Cloud Storage credentials from (the same order it uses):
    GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default file, the GCE metadata
    server; None when there are none (TensorFlow then sends anonymous requests)."""
    key = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key:
        return key
    config = os.environ.get("CLOUDSDK_CONFIG") or os.path.join(os.path.expanduser("~"), ".config", "gcloud")
    adc = os.path.join(config, "application_default_credentials.json")
    if os.path.isfile(adc):
        return adc
    if os.environ.get("NO_GCE_CHECK", "").lower() != "true" and on_gce():
        return "the GCE metadata server"
    return None


def explain_url_error(e: BaseException, path: str) -> str:
    """One line saying why a TensorFlow file operation on URL ``path`` failed."""
    msg = _tf_message(e)
    if scheme(path) != "gs":
        return msg
    creds = gcs_credentials()
    key = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    no_creds = f"no Google Cloud credentials found ({CREDENTIALS_HINT})"
    if key and not os.path.isfile(key):
        return f"GOOGLE_APPLICATION_CREDENTIALS names {key}, which does not exist ({msg})"
    if "libcurl" in msg or "resolve host" in msg:
        reason = f"cannot reach Cloud Storage ({msg.split('error details: ')[-1]})"
        return reason + (f"; also {no_creds}" if creds is None else "")
    denied = type(e).__name__ in ("PermissionDeniedError", "UnauthenticatedError") or re.search(r"\b40[13]\b", msg)
    if denied:
        return no_creds if creds is None else f"access denied with the credentials of {creds} ({msg})"
    if type(e).__name__ == "NotFoundError" and "bucket" in msg.lower():
        return f"the bucket does not exist ({msg})"
    return msg


def _require_write_credentials(p: str, what: str) -> None:
    """Writing to Cloud Storage needs credentials (anonymous writes are refused): say so at
    once, before TensorFlow is even imported. Reads stay anonymous-capable (public buckets)."""
    if scheme(p) == "gs" and gcs_credentials() is None:
        raise PathError(f"{p}: cannot write the {what} to Cloud Storage: no Google Cloud credentials found "
                        f"({CREDENTIALS_HINT})")


@contextlib.contextmanager
def _url_errors(p: str, action: str) -> Iterator[None]:
    """Turn TensorFlow's errors on URL ``p`` into a one-line `PathError`."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:
        if type(e).__module__.startswith("tensorflow"):
            raise PathError(f"{p}: cannot {action}: {explain_url_error(e, p)}") from None
        raise


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


def relpath(path, start) -> str:
    """``path`` relative to the folder ``start`` (for URLs: the part after ``start/``, else
    ``path`` unchanged)."""
    p, s = os.fspath(path), os.fspath(start)
    if is_url(p) or is_url(s):
        prefix = s.rstrip("/") + "/"
        return p[len(prefix):] if p.startswith(prefix) else p
    return os.path.relpath(p, s)


def is_inside(path, root) -> bool:
    """True when ``path`` lies inside the folder ``root`` once ``..`` (and, for local paths,
    symbolic links) are resolved: the check that keeps annotation-given paths in the dataset."""
    p, r = os.fspath(path), os.fspath(root)
    if is_url(p) or is_url(r):
        if scheme(p) != scheme(r) or not (is_url(p) and is_url(r)):
            return False
        pp = posixpath.normpath(p.split("://", 1)[1])
        rr = posixpath.normpath(r.split("://", 1)[1])
        return pp == rr or pp.startswith(rr.rstrip("/") + "/")
    p, r = os.path.realpath(p), os.path.realpath(r)
    return os.path.commonpath([p, r]) == r


def resolve(path, base: Optional[str]) -> str:
    """``path`` taken relative to the folder ``base`` unless it is absolute or a URL."""
    p = os.fspath(path)
    if is_url(p) or os.path.isabs(os.path.expanduser(p)) or not base:
        return abspath(p)
    return join(base, p)


# -- queries ---------------------------------------------------------------------------------
def exists(path) -> bool:
    p = check_path(path)
    if not is_url(p):
        return os.path.exists(p)
    with _url_errors(p, "check whether it exists"):
        return _gfile().exists(p)


def isdir(path) -> bool:
    p = check_path(path)
    if not is_url(p):
        return os.path.isdir(p)
    with _url_errors(p, "check whether it is a folder"):
        return _gfile().isdir(p)


def isfile(path) -> bool:
    p = check_path(path)
    if is_url(p):
        g = _gfile()
        with _url_errors(p, "check whether it is a file"):
            return g.exists(p) and not g.isdir(p)
    return os.path.isfile(p)


def size(path) -> int:
    p = check_path(path)
    if not is_url(p):
        return os.path.getsize(p)
    with _url_errors(p, "read its size"):
        return _gfile().stat(p).length


def listdir(path) -> List[str]:
    p = check_path(path)
    if is_url(p):
        with _url_errors(p, "list the folder"):
            return sorted(n.rstrip("/") for n in _gfile().listdir(p))
    return sorted(os.listdir(p))


def walk(top) -> Iterator[tuple]:
    """``(dirpath, dirnames, filenames)`` like `os.walk`, sorted, for local paths and URLs."""
    p = check_path(top)
    if not is_url(p):
        for d, dirs, files in os.walk(p):
            dirs[:] = sorted(dirs)
            yield d, dirs, sorted(files)
        return
    with _url_errors(p, "walk the folder"):
        for d, dirs, files in _gfile().walk(p):
            dirs[:] = sorted(x.rstrip("/") for x in dirs)
            yield d, dirs, sorted(files)


def has_magic(pattern) -> bool:
    return bool(re.search(r"[*?\[]", os.fspath(pattern)))


def glob(pattern, recursive: bool = False) -> List[str]:
    """Sorted matches of ``pattern`` (``*``, ``?``, ``[...]``), local or remote; with
    ``recursive``, a local ``**`` matches any number of folders."""
    p = check_path(pattern)
    if not is_url(p):
        return sorted(_glob.glob(os.path.expanduser(p), recursive=recursive))
    with _url_errors(p, "list the files matching it"):
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
            raise error(f"{p}: cannot read the {what} ({explain_url_error(e, p)})") from None
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
        _require_write_credentials(p, what)
        g = _gfile()
        with _url_errors(p, f"create the {what}"):
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
        _require_write_credentials(p, "change")
        with _url_errors(p, "remove it"):
            _gfile().remove(p)
    else:
        os.unlink(p)


def rmtree(path) -> None:
    p = check_path(path)
    if is_url(p):
        _require_write_credentials(p, "change")
        with _url_errors(p, "remove the folder"):
            _gfile().rmtree(p)
    else:
        shutil.rmtree(p)


def copy(src, dst, overwrite: bool = True) -> None:
    s, d = check_path(src), check_path(dst)
    if not is_url(s) and not is_url(d):
        shutil.copyfile(s, d)
    else:
        _require_write_credentials(d, "copy")
        with _url_errors(d if is_url(d) else s, f"copy {s} to {d}"):
            _gfile().copy(s, d, overwrite=overwrite)


def rename(src, dst, overwrite: bool = True) -> None:
    s, d = check_path(src), check_path(dst)
    if not is_url(s) and not is_url(d):
        os.replace(s, d)
    else:
        _require_write_credentials(d, "renamed file")
        with _url_errors(d if is_url(d) else s, f"rename {s} to {d}"):
            _gfile().rename(s, d, overwrite=overwrite)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def set_default_mode(path) -> None:
    """Give a local file the user's normal permissions (``0666 & ~umask``): files made with
    `tempfile.mkstemp` start as 0600. URLs are left alone (object stores have no modes)."""
    p = os.fspath(path)
    if not is_url(p):
        os.chmod(p, 0o666 & ~_umask())


def check_output_file(path, what: str = "output file") -> str:
    """Fail early, before any work, when ``path`` cannot become a file: it is a folder, a file
    is in the way of its folder, or that folder cannot be written. Creates nothing."""
    p = check_path(path, what)
    if is_url(p):
        if _gfile().isdir(p):
            raise PathError(f"{p}: {what} is a folder, expected a file path")
        return p
    if os.path.isdir(p):
        raise PathError(f"{p}: {what} is a folder, expected a file path")
    _check_creatable(os.path.dirname(os.path.abspath(p)), what)
    return p


def check_output_dir(path, what: str = "output folder") -> str:
    """Fail early when ``path`` cannot be (or become) a writable folder. Creates nothing."""
    p = check_path(path, what)
    if is_url(p):
        if _gfile().exists(p) and not _gfile().isdir(p):
            raise PathError(f"{p}: {what} is a file, expected a folder")
        return p
    if os.path.exists(p) and not os.path.isdir(p):
        raise PathError(f"{p}: {what} is a file, expected a folder")
    _check_creatable(os.path.abspath(p), what)
    return p


def _check_creatable(folder: str, what: str) -> None:
    existing = folder
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise PathError(f"{folder}: a file ({existing}) is in the way of the {what}'s folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PathError(f"{existing}: permission denied: cannot write the {what} there")


def _check_target(p: str, what: str) -> None:
    if isdir(p):
        raise PathError(f"{p}: {what} is a folder, expected a file path")


LOCK_NAME = ".tfod-seg.lock"
# Temporary names of atomic writes: `atomic_path` / shard writers use mkstemp's
# ".NAME.XXXXXXXX.tmp" (8 random characters); URL shards ".NAME.<32 hex>.tmp".
_TEMP_RE = re.compile(r"^\..+\.(?:[A-Za-z0-9_]{8}|[0-9a-f]{32})\.tmp$")


class OutputBusyError(PathError):
    """Another tfod-seg run holds the lock of the output folder."""


def remove_stale_temporaries(folder) -> List[str]:
    """Remove the temporary files a killed run left in ``folder`` (top level only; call it
    while holding `output_lock`, so no live run owns them). Returns their paths."""
    p = check_path(folder)
    if not isdir(p):
        return []
    removed = []
    for name in listdir(p):
        if _TEMP_RE.match(name):
            with contextlib.suppress(FileNotFoundError, OSError):
                remove(join(p, name))
                removed.append(join(p, name))
    return removed


@contextlib.contextmanager
def output_lock(folder, what: str = "output folder") -> Iterator[List[str]]:
    """Hold an exclusive lock on ``folder`` (a ``.tfod-seg.lock`` file, ``flock``) for one run.

    A second run into the same local folder is refused with `OutputBusyError` instead of
    overwriting or deleting the first one's files. Once the lock is held, temporary files of a
    killed earlier run are removed; the context yields their paths. The lock file is removed at
    the end. URLs are not locked (object stores have no locks): only the stale temporaries are
    cleaned there.
    """
    p = makedirs(folder, what)
    if is_url(p):
        yield remove_stale_temporaries(p)
        return
    lock = os.path.join(p, LOCK_NAME)
    fd = _acquire(lock, p, what)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield remove_stale_temporaries(p)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding it: a waiting run then re-checks the inode
        os.close(fd)


def _acquire(lock: str, folder: str, what: str) -> int:
    import fcntl

    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        except OSError as e:
            raise PathError(f"{folder}: cannot create the lock file in the {what} ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise OutputBusyError(f"{folder}: another tfod-seg run (process {owner}) is writing into this {what}; "
                                  "wait for it to finish or choose another folder") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed it as we opened it: take the new one


@contextlib.contextmanager
def atomic_path(path, what: str = "output file") -> Iterator[str]:
    """Yield a LOCAL temporary path; on success it becomes ``path`` (renamed locally, uploaded
    for a URL). On any error the temporary file is removed and ``path`` is untouched. The file
    gets the user's normal permissions (umask), not mkstemp's 0600."""
    p = check_path(path, what)
    _require_write_credentials(p, what)
    _check_target(p, what)
    if is_url(p):
        makedirs(dirname(p), "output folder")
        fd, tmp = tempfile.mkstemp(prefix="tfod-seg-", suffix="-" + basename(p))
        os.close(fd)
        try:
            yield tmp
            with _url_errors(p, f"upload the {what}"):
                if scheme(p) == "ram" and _gfile().exists(p):
                    _gfile().remove(p)  # TF's ram:// filesystem appends on overwrite
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
