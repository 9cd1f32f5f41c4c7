"""Arrays spilled to an unnamed temporary file and memory-mapped: data on disk, not in memory.

A compressed ``.npz`` member cannot be memory-mapped where it lies, and a ``.csv`` has to be
parsed; both are streamed here, a chunk at a time, into a temporary file that has no name
(deleted as soon as it is mapped, so nothing is left behind however edgekit ends), and read
back as a read-only ``np.memmap``. Memory stays at one chunk; only the rows used are paged in.

Example:
    >>> import io
    >>> a = spill_stream(io.BytesIO(np.arange(6, dtype=np.float32).tobytes()), (3, 2), np.float32)
    >>> a[2].tolist()
    [4.0, 5.0]
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np

CHUNK_BYTES = 8 << 20


def spill_stream(stream: BinaryIO, shape: tuple[int, ...], dtype, *, fortran: bool = False) -> np.ndarray:
    """Copy an array's raw bytes from ``stream`` to disk, a chunk at a time; map them."""
    dtype = np.dtype(dtype)
    expected = int(np.prod(shape)) * dtype.itemsize
    with tempfile.TemporaryFile(prefix="edgekit-spill-") as fh:
        written = 0
        while written < expected:
            chunk = stream.read(min(CHUNK_BYTES, expected - written))
            if not chunk:
                raise ValueError(f"the array data ends after {written} of {expected} bytes")
            fh.write(chunk)
            written += len(chunk)
        return _map(fh, shape, dtype, fortran)


def spill_rows(rows: Iterable[np.ndarray], width: int, dtype=np.float32) -> np.ndarray:
    """Write rows of ``width`` values to disk as they come (e.g. parsed CSV lines); map them (n, width)."""
    dtype = np.dtype(dtype)
    with tempfile.TemporaryFile(prefix="edgekit-spill-") as fh:
        n, block = 0, []
        for row in rows:
            block.append(row)
            if len(block) * width * dtype.itemsize >= CHUNK_BYTES:
                fh.write(np.asarray(block, dtype).tobytes())
                n, block = n + len(block), []
        if block:
            fh.write(np.asarray(block, dtype).tobytes())
            n += len(block)
        if n == 0:
            return np.zeros((0, width), dtype)
        return _map(fh, (n, width), dtype, False)


def _map(fh, shape, dtype, fortran: bool) -> np.ndarray:
    fh.flush()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    # The mapping holds its own reference to the file; the file has no name: nothing to clean up.
    return np.memmap(fh, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C")
