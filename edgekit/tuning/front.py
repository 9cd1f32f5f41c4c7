"""Pareto fronts and hypervolume for (accuracy up, latency down, size down).

Everything is turned into minimisation first: ``(1 - accuracy, latency_ms, size_kb)``.

Example:
    >>> pts = [(0.9, 2.0, 10.0), (0.8, 1.0, 10.0), (0.7, 3.0, 20.0)]
    >>> pareto_indices(pts)
    [0, 1]
    >>> hypervolume(pts, reference=(0.0, 4.0, 40.0))   # the union of the boxes of the first two
    78.0
"""

from __future__ import annotations

from collections.abc import Sequence


def _minimised(p: Sequence[float]) -> tuple[float, float, float]:
    return (1.0 - float(p[0]), float(p[1]), float(p[2]))


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (accuracy, latency, size)."""
    ma, mb = _minimised(a), _minimised(b)
    return all(x <= y for x, y in zip(ma, mb, strict=True)) and any(x < y for x, y in zip(ma, mb, strict=True))


def pareto_indices(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (duplicates: the first one)."""
    out = []
    for i, p in enumerate(points):
        if any(dominates(q, p) or (j < i and tuple(q) == tuple(p)) for j, q in enumerate(points) if j != i):
            continue
        out.append(i)
    return out


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``points`` and bounded by ``reference`` = (accuracy, latency_ms, size_kb),
    in minimised space: (1 - accuracy) x latency x size. Exact, by slicing along each axis (fine for
    the tens of points a tune run makes)."""
    ref = _minimised(reference)
    pts = [m for m in (_minimised(p) for p in points) if all(x < r for x, r in zip(m, ref, strict=True))]
    if not pts:
        return 0.0
    xs = sorted({p[0] for p in pts} | {ref[0]})
    ys = sorted({p[1] for p in pts} | {ref[1]})
    volume = 0.0
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            # the lowest z covered in this (x, y) cell: the cell is dominated above it
            covering = [p[2] for p in pts if p[0] <= xs[i] and p[1] <= ys[j]]
            if covering:
                volume += (xs[i + 1] - xs[i]) * (ys[j + 1] - ys[j]) * (ref[2] - min(covering))
    return volume
