"""``--quant mixed`` (TFLite): the fastest artifact within the accuracy budget, chosen by measurement.

int8 is not always faster. LiteRT's int8 kernels for some operators (batched matmuls, softmax,
the ops of a layer norm or GELU) are slower on a CPU than their float ones, so a transformer in
plain int8 can be several times slower than in fp32. Which operators to keep in float depends on
the model and the CPU, so it is measured:

1. calibrate once (LiteRT's quantization debugger) and list the operator types that int8 quantizes;
2. start from the accurate end, every quantized operator type kept in float; give each type back
   to int8 in turn (most frequent first) and keep the change when the result stays within the
   budget and is faster by more than the timing noise (3%), or as fast and at least 5% smaller;
3. compare the result with plain int8 and fp32: the fastest within the budget wins; within 3% of
   it, the smallest file.

Every candidate is run in LiteRT on the held-out inputs (accuracy or agreement, and the parity
checks the chosen file must pass) and timed on this machine (1 thread, batch 1); the manifest
records each one. Inputs and outputs stay float32.

Example:
    >>> data, record = speed_mix_tflite(saved_model, x, options, measure, budget=1.0)   # doctest: +SKIP
    >>> record["float_ops"]                                                             # doctest: +SKIP
    ['BATCH_MATMUL', 'SOFTMAX']
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from edgekit.exporters.int8_repair import layer_errors
from edgekit.files import captured_stderr_fd

NOISE = 0.03  # timing noise: a candidate must be 3% faster to count as faster


def _better(c: dict, best: dict) -> bool:
    """Within the budget and faster by more than the noise, or as fast and at least 5% smaller."""
    if not c["within_budget"]:
        return False
    if not best["within_budget"]:
        return True
    faster = c["p50_ms"] < best["p50_ms"] * (1 - NOISE)
    as_fast = c["p50_ms"] <= best["p50_ms"] * (1 + NOISE)
    return faster or (as_fast and c["size_bytes"] < 0.95 * best["size_bytes"])


def _name(float_ops: list[str]) -> str:
    return f"int8, {', '.join(float_ops)} in float" if float_ops else "int8"


def speed_mix_tflite(saved_model: Path, calibration, options, measure: Callable[[bytes], dict], budget: float,
                     fp32: bytes) -> tuple[bytes, dict]:
    """The chosen flatbuffer and the record. ``measure(data)`` returns ``{"drop": points, "p50_ms": ms}``
    and, under ``parity``, the parity checks the candidate fails (then it is outside the budget)."""
    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    t0 = time.perf_counter()
    # float inputs and outputs: quantizing a classifier's scores to 256 levels flips near-ties, which
    # no choice of operators inside can win back (seen: 5 points on a small ViT)
    options = dataclasses.replace(options, int8_io="float")
    ranked, debugger = layer_errors(saved_model, calibration, options)
    op_types = [op for op, _ in Counter(layer["op"] for layer in ranked).most_common()]

    def build(float_ops: list[str]) -> bytes:
        from tensorflow.lite.python.convert import mlir_quantize

        io = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[options.int8_io]
        with captured_stderr_fd():
            return mlir_quantize(debugger.calibrated_model, disable_per_channel=options.per_tensor,
                                 disable_per_channel_for_dense_layers=options.per_tensor,
                                 fully_quantize=options.int8_io != "float", input_data_type=io, output_data_type=io,
                                 denylisted_ops=list(float_ops))

    candidates = []

    def trial(name: str, data: bytes, float_ops: list[str] | None) -> dict:
        m = measure(data)
        c = {"candidate": name, "float_ops": float_ops, "size_bytes": len(data), "p50_ms": m["p50_ms"],
             "drop_points": round(m["drop"], 3), "within_budget": m["drop"] <= budget and not m.get("parity"),
             "data": data}
        if m.get("parity"):
            c["parity_failed"] = "; ".join(m["parity"])
        candidates.append(c)
        return c

    # From the accurate end: every quantized operator type in float, then each type given back to
    # int8 (most frequent first) where that keeps the budget and is faster, or as fast and smaller.
    plain = trial("int8", build([]), [])
    best = trial(_name(op_types), build(op_types), list(op_types))
    for op in op_types:
        ops = [o for o in best["float_ops"] if o != op]
        c = trial(_name(ops), build(ops), ops)
        if _better(c, best):
            best = c
    full = trial("fp32", fp32, None)
    pool = [c for c in (plain, best, full) if c["within_budget"]] or [full]
    fastest = min(c["p50_ms"] for c in pool)
    chosen = min((c for c in pool if c["p50_ms"] <= fastest * (1 + NOISE)), key=lambda c: c["size_bytes"])
    record = {
        "chosen": chosen["candidate"],
        "float_ops": chosen["float_ops"],
        "budget_points": budget,
        "seconds": round(time.perf_counter() - t0, 2),
        "candidates": [{k: v for k, v in c.items() if k != "data"} for c in candidates],
        "plain_int8": {k: plain[k] for k in ("p50_ms", "size_bytes", "drop_points")},
        "fp32": {k: full[k] for k in ("p50_ms", "size_bytes", "drop_points")},
        "mixed": {k: chosen[k] for k in ("p50_ms", "size_bytes", "drop_points")},
        "rule": f"the fastest within the budget (1 thread, here); within {NOISE:.0%}, the smaller file",
    }
    return chosen["data"], record
