"""Does data fit a model's input? One check, used by export, bench and the runtimes.

Example:
    >>> fits((None, 8, 1), (8, 8, 1))
    True
    >>> fits((8, 8, 1), (8, 8))
    False
"""

from __future__ import annotations

from collections.abc import Sequence


def fits(want: Sequence[int | None], got: Sequence[int]) -> bool:
    """True when ``got`` (a sample's shape) matches ``want``; ``None`` in ``want`` matches any size."""
    want, got = tuple(want), tuple(got)
    return len(want) == len(got) and all(w is None or w == g for w, g in zip(want, got, strict=True))
