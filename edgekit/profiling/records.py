"""What a per-operator profile is made of, and the error a runtime that cannot profile raises."""

from __future__ import annotations

from edgekit.errors import EdgekitError


class ProfilingUnavailable(EdgekitError):
    """This runtime, library version or file cannot give per-operator times (one line, why)."""


def typical_total(values: list[float], runs: int) -> float:
    """An operator's time per inference from its events over ``runs`` runs: the mean of the events
    at or below their 90th percentile (a shared machine's stalls land on a few events), times the
    events per run (an operator a loop runs several times counts each time)."""
    import numpy as np

    if not values:
        return 0.0
    a = np.asarray(values, dtype=np.float64)
    kept = a[a <= np.percentile(a, 90)]
    return float(kept.mean()) * len(a) / runs
