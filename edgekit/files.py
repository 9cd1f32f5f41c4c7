"""Small file helpers: hashing and atomic writes, so no half-written file looks valid.

Example:
    >>> from pathlib import Path
    >>> p = atomic_write_text(Path("/tmp/edgekit-doc.txt"), "hello")
    >>> sha256_bytes(b"hello")[:12]
    '2cf24dba5fb0'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgekit.errors import InputError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    """The sha256 of a file, or of every file in a folder (names and contents, sorted)."""
    h = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def path_size(path: Path) -> int:
    """Bytes in a file, or in every file under a folder (a TF.js model folder)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def captured_stderr_fd():
    """Capture what C/C++ code writes to file descriptor 2 (converter logs) into a string list.

    Example:
        >>> with captured_stderr_fd() as captured:
        ...     os.write(2, b"noise\n")
        6
        >>> captured
        ['noise']
    """
    captured: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.extend(tmp.read().decode("utf-8", "replace").splitlines())


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, *, what: str) -> Any:
    """Read a JSON file, turning a missing or malformed file into one clear InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist", hint="check the path")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{what} {path} is not valid JSON: {e}") from None


def check_writable_dir(path: Path, *, flag: str) -> None:
    """Fail early, before any work, when ``path`` cannot become a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} is a file, not a folder", hint="pick a folder path")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{flag} {path} is under {probe}, a file, not a folder", hint="pick a folder path")
    if not os.access(probe, os.W_OK):
        raise InputError(f"{flag} {path} cannot be written", hint="pick a folder you can write to")
    try:  # permissions can say yes where the filesystem says no (read-only mounts, /proc, root)
        import tempfile

        os.rmdir(tempfile.mkdtemp(prefix=".edgekit-probe-", dir=probe))
    except OSError as e:
        raise InputError(f"{flag} {path} cannot be written ({e.strerror or type(e).__name__})",
                         hint="pick a folder you can write to") from None
