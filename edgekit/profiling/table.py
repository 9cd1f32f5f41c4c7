"""A profile as bench reports it: operators by time, their share of the measured run, their layer.

``share`` is each operator's time over the runtime's *measured* whole-model p50 (unprofiled runs
timed in the profile's worker just before and after it), so the shares of one row add up to ``coverage``: what the
operators account for. The rest (``unattributed_ms``) is the runtime's time outside any
operator (setting inputs, the interpreter's loop, reading outputs) plus, for LiteRT, what its
whole-microsecond event times drop; a profiler's own cost can push coverage above 1.

Example:
    >>> t = op_table({"ops": [{"op": "Conv", "kernel": "x", "ms": 0.2, "macs": 10**6, "scope": "conv2d_1"}]},
    ...              whole_ms=0.25, layers={"names": ["conv2d"], "retraced": True})
    >>> t["ops"][0]["layer"], t["ops"][0]["share"], t["coverage"]
    ('conv2d', 0.8, 0.8)
    >>> op_table({"ops": [{"op": "Conv", "kernel": "x", "ms": 0.2}]}, whole_ms=0.25, factor=12.5)["ops"][0]["device_ms_estimate"]
    2.5
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from edgekit.layer_names import keras_layer

TOP = 5  # operators the console shows per row


def op_table(profile: dict[str, Any], *, whole_ms: float | None, layers: dict | None = None,
             factor: float | None = None) -> dict[str, Any]:
    """The report's ``ops`` record for one bench row. ``whole_ms``: the whole model's p50, timed
    plainly in the profile's own worker around the profile (``plain_p50_ms``) where there is one.
    ``factor``: the row's device estimate factor, which gives each operator an estimated device time
    (labelled an estimate, as the row's is)."""
    whole_ms = profile.get("plain_p50_ms") or whole_ms
    names = (layers or {}).get("names")
    retraced = bool((layers or {}).get("retraced"))
    ops = []
    for o in profile["ops"]:
        ms = float(o["ms"])
        macs = int(o.get("macs") or 0)
        row = {"op": o["op"], "kernel": o["kernel"], "name": o.get("name", ""),
               "layer": keras_layer(o.get("scope"), names, retraced=retraced),
               "ms": round(ms, 6), "share": round(ms / whole_ms, 4) if whole_ms else None,
               "macs": macs or None, "gmacs_per_s": round(macs / (ms * 1e-3) / 1e9, 2) if macs and ms > 0 else None}
        if "raw_ms" in o:  # ONNX Runtime: before its profiler's measured cost per node was taken off
            row["raw_ms"] = round(float(o["raw_ms"]), 6)
        if factor:
            row["device_ms_estimate"] = round(ms * factor, 6)
        ops.append(row)
    total = sum(o["ms"] for o in ops)
    by_layer: dict[str, float] = defaultdict(float)
    for o in ops:
        by_layer[o["layer"] or "(no layer)"] += o["ms"]
    failed = profile.get("failed")
    return {
        "status": "partial" if failed else "ok", **({"error": failed} if failed else {}),
        "runs": profile.get("runs"), "whole_ms": whole_ms, "sum_ms": round(total, 6),
        "coverage": round(total / whole_ms, 4) if whole_ms else None,
        "unattributed_ms": round(whole_ms - total, 6) if whole_ms else None,
        "profiled_run_ms": round(profile["invoke_ms"], 6) if profile.get("invoke_ms") else None,
        "resolution_us": profile.get("resolution_us"),
        "profiler_cost_us": profile.get("profiler_cost_us"),
        "executor_cost_us": profile.get("executor_cost_us"),
        "ops": sorted(ops, key=lambda o: -o["ms"]),
        "by_layer": {k: round(v, 6) for k, v in sorted(by_layer.items(), key=lambda kv: -kv[1])},
    }
