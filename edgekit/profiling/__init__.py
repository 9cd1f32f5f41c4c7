"""Per-operator profiles: where each runtime spends an inference, operator by operator.

Every runtime that can profile gives its session a ``profile_ops(batch, runs)`` method, run in
a worker of its own (never the worker whose timings feed the bench's latency figures):

- LiteRT: its C API's profiler (``litert_ops``), XNNPACK's operators mapped back to TFLite nodes;
- ONNX Runtime: its session profiler (``onnx_ops``), fused nodes mapped back by name;
- TF.js (Node and Chromium): ``tf.profile`` in the JS runner, wrapper kernels left out.

Each operator is named by the Keras layer it came from where its name says so (``layer_names``);
:mod:`edgekit.profiling.table` turns the raw times into the table bench reports.

Example:
    >>> r = profile_isolated("litert", "model_int8.tflite", x, threads=1, runs=200)   # doctest: +SKIP
    >>> r["ops"][0]["layer"], r["ops"][0]["ms"]                                      # doctest: +SKIP
    ('conv2d_1', 0.0122)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.profiling.records import ProfilingUnavailable

__all__ = ["ProfilingUnavailable", "profile_isolated"]


def profile_isolated(runtime: str, artifact: str | Path, inputs, *, threads: int | None, runs: int = 200,
                     timeout_s: float = 300.0) -> dict[str, Any]:
    """Profile ``artifact`` on ``runtime`` in a fresh worker: ``{"status": "ok", "ops": [...], ...}``,
    or ``{"status": "unavailable"|"failed", "error": one line}``."""
    from edgekit.runtimes.isolated import run_isolated

    r = run_isolated(runtime, artifact, inputs, threads=threads, want_outputs=False, timeout_s=timeout_s,
                     profile={"runs": runs})
    if not r.ok:
        kind = "unavailable" if r.error_type == "ProfilingUnavailable" else "failed"
        return {"status": kind, "error": r.error}
    return {"status": "ok", **r.reply["profile"]}
