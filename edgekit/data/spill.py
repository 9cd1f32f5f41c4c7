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
    per_block = max(1, CHUNK_BYTES // max(1, width * dtype.itemsize))

    def blocks():
        block = []
        for row in rows:
            block.append(row)
            if len(block) == per_block:
                yield np.asarray(block, dtype)
                block = []
        if block:
            yield np.asarray(block, dtype)

    return spill_blocks(blocks(), (width,), dtype)


def spill_blocks(blocks: Iterable[np.ndarray], row_shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Write blocks of rows (each ``(k, *row_shape)``) to disk as they come; map them ``(n, *row_shape)``.

    Example:
        >>> spill_blocks((np.ones((2, 3)), np.zeros((1, 3))), (3,)).shape
        (3, 3)
    """
    dtype, row_shape = np.dtype(dtype), tuple(row_shape)
    with tempfile.TemporaryFile(prefix="edgekit-spill-") as fh:
        n = 0
        for block in blocks:
            block = np.ascontiguousarray(block, dtype)
            if block.shape[1:] != row_shape:
                raise ValueError(f"a block of rows shaped {block.shape[1:]} among rows shaped {row_shape}")
            fh.write(block.tobytes())
            n += len(block)
        return _map(fh, (n, *row_shape), dtype, False)


def _map(fh, shape, dtype, fortran: bool) -> np.ndarray:
    fh.flush()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    # The mapping holds its own reference to the file; the file has no name: nothing to clean up.
    return np.memmap(fh, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C")
