"""The agent's cache: artifacts and input arrays by sha256, each checked before anything runs it.

Only model files (``.tflite``, ``.onnx``) and NumPy arrays (``.npz`` without pickles) are
accepted; a file is written to a temporary name while its sha256 is computed, checked (the
hash it was sent under, the size limit, its format), and only then renamed into place, so a
cut upload or a bad file leaves nothing behind.

Example:
    >>> store = Store(Path("~/.cache/edgekit/agent").expanduser(), max_bytes=256 << 20)   # doctest: +SKIP
    >>> store.put_artifact(sha, "tflite", request.stream, length)                         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edgekit.errors import InputError

FORMATS = {"tflite": ".tflite", "onnx": ".onnx"}
SHA = re.compile(r"^[0-9a-f]{64}$")


class TooLarge(InputError):
    pass


class Store:
    def __init__(self, root: Path, *, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        for sub in ("artifacts", "inputs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- where things are -------------------------------------------------------------------
    def artifact(self, sha: str) -> Path | None:
        _check_sha(sha)
        return next((p for ext in FORMATS.values() if (p := self.root / "artifacts" / f"{sha}{ext}").is_file()), None)

    def inputs(self, sha: str) -> Path | None:
        _check_sha(sha)
        p = self.root / "inputs" / f"{sha}.npz"
        return p if p.is_file() else None

    # -- arrivals ---------------------------------------------------------------------------
    def put_artifact(self, sha: str, fmt: str, stream: BinaryIO, length: int | None) -> Path:
        _check_sha(sha)
        if fmt not in FORMATS:
            raise InputError(f"the agent takes .tflite and .onnx files, not {fmt!r}")
        return self._put(sha, stream, length, self.root / "artifacts" / f"{sha}{FORMATS[fmt]}",
                         lambda p: _check_model(p, fmt))

    def put_inputs(self, sha: str, stream: BinaryIO, length: int | None) -> Path:
        _check_sha(sha)
        return self._put(sha, stream, length, self.root / "inputs" / f"{sha}.npz", _check_arrays)

    def _put(self, sha: str, stream: BinaryIO, length: int | None, dest: Path, check) -> Path:
        if length is not None and length > self.max_bytes:
            raise TooLarge(f"the upload is {length / 1e6:.1f} MB; this agent takes at most {self.max_bytes / 1e6:.0f} MB",
                           hint="start the agent with a larger --max-upload-mb")
        if dest.is_file():
            return dest
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(f"the upload is over this agent's {self.max_bytes / 1e6:.0f} MB limit",
                                       hint="start the agent with a larger --max-upload-mb")
                    digest.update(chunk)
                    out.write(chunk)
            if length is not None and size != length:
                raise InputError(f"the upload was cut: {size} of {length} bytes arrived")
            if digest.hexdigest() != sha:
                raise InputError(f"the upload's sha256 is {digest.hexdigest()[:12]}..., not the {sha[:12]}... it was sent as")
            check(Path(tmp))
            os.replace(tmp, dest)
            return dest
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _check_sha(sha: str) -> None:
    if not SHA.match(sha):
        raise InputError("an artifact is named by its sha256: 64 lowercase hex digits")


def _check_model(path: Path, fmt: str) -> None:
    """What the file says it is, before any runtime reads it: a TFLite flatbuffer ("TFL3" at byte 4),
    or an ONNX protobuf that parses. A runtime loads it later in an isolated worker, as locally."""
    head = path.read_bytes()[:8] if path.stat().st_size >= 8 else b""
    if fmt == "tflite" and head[4:8] != b"TFL3":
        raise InputError("the upload is not a .tflite file (no TFL3 identifier)")
    if fmt == "onnx":
        try:
            import onnx

            onnx.load(str(path), load_external_data=False)
        except ImportError:  # the agent extra has no onnx: onnxruntime checks it when it loads
            if not head or head[0] != 0x08:  # field 1 (ir_version), varint
                raise InputError("the upload is not an .onnx file") from None
        except Exception:
            raise InputError("the upload is not an .onnx file (it does not parse)") from None


def _check_arrays(path: Path) -> None:
    """An .npz of plain numeric arrays: no pickled objects, nothing that runs code."""
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                if not np.issubdtype(z[name].dtype, np.number):
                    raise InputError(f"input array {name!r} is not numeric")
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise InputError(f"the inputs are not a NumPy .npz of plain arrays: {type(e).__name__}") from None


def batch_to_npz(batch: dict) -> bytes:
    """A batch (arrays by name) as .npz bytes, each array under ``tensor:NAME``."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **{f"tensor:{k}": np.ascontiguousarray(v) for k, v in batch.items()})
    return buf.getvalue()


def npz_to_batch(path_or_bytes):
    """What :func:`batch_to_npz` wrote, back as a batch."""
    import io

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with np.load(src, allow_pickle=False) as z:
        if z.files == ["x"]:  # written by an agent from before named batches: one array
            return {"input": z["x"]}
        return {k.split(":", 1)[1]: z[k] for k in z.files}
