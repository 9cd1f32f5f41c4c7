"""``--quant mixed``: the fastest artifact within the accuracy budget, chosen by measurement.

int8 is not always faster. LiteRT's int8 kernels for some operators (batched matmuls, softmax,
the ops of a layer norm or GELU) are slower on a CPU than their float ones, so a transformer in
plain int8 can be several times slower than in fp32; ONNX Runtime has its own slow int8 paths.
Which operators to keep in float depends on the model, the runtime and the CPU, so it is measured:

1. list the operator types that int8 quantizes (most frequent first);
2. start from the accurate end, every quantized operator type kept in float; give each type back
   to int8 in turn and keep the change when the result stays within the budget and is faster by
   more than the timing noise (3%), or as fast and at least 5% smaller;
3. compare the result with plain int8 and fp32: the fastest within the budget wins; within 3% of
   it, the smallest file.

Every candidate is run on the held-out inputs (accuracy or agreement, and the parity checks the
chosen file must pass). Latency is only ever compared between files timed in the same
measurement, in interleaved rounds (A B, B A, A B: the best round of each), so a slow spell of a
shared machine cannot fall on one side only: each step times the candidate against the current
best, and the final choice times plain int8, the best mix and fp32 together (5 rounds). A
candidate outside the budget is not timed. The manifest records every candidate. Inputs and
outputs stay float32.

Formats supply the operator types and a ``build(float_ops)``: TFLite through LiteRT's
quantization debugger (:func:`speed_mix_tflite`), ONNX through ``quantize_static``'s
``op_types_to_quantize`` (:meth:`edgekit.exporters.onnx.ONNXExporter.speed_mix`).

Example:
    >>> data, record = speed_mix(["FULLY_CONNECTED", "BATCH_MATMUL"], build, evaluate, time_files,
    ...                          budget=1.0, fp32=fp32_bytes)                  # doctest: +SKIP
    >>> record["float_ops"]                                                     # doctest: +SKIP
    ['BATCH_MATMUL']
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from edgekit.files import captured_stderr_fd

NOISE = 0.03  # timing noise: a candidate must be 3% faster to count as faster

# evaluate(data) -> {"drop": points, "parity": [failed checks]}; time_files({name: data}) -> {name: p50 ms},
# measured together in interleaved rounds
Evaluate = Callable[[bytes], dict]
TimeFiles = Callable[[dict[str, bytes]], dict[str, float]]


def _better(c: dict, best: dict) -> bool:
    """Faster by more than the noise, or as fast and at least 5% smaller (both timed together)."""
    faster = c["p50_ms"] < best["p50_ms"] * (1 - NOISE)
    as_fast = c["p50_ms"] <= best["p50_ms"] * (1 + NOISE)
    return faster or (as_fast and c["size_bytes"] < 0.95 * best["size_bytes"])


def _name(float_ops: list[str] | None) -> str:
    if float_ops is None:
        return "fp32"
    return f"int8, {', '.join(float_ops)} in float" if float_ops else "int8"


def speed_mix(op_types: list[str], build: Callable[[list[str]], bytes], evaluate: Evaluate, time_files: TimeFiles,
              budget: float, fp32: bytes) -> tuple[bytes, dict]:
    """The chosen file and the record for the manifest. ``build(float_ops)`` quantizes every operator
    type but ``float_ops`` to int8."""
    t0 = time.perf_counter()
    candidates: list[dict] = []

    def trial(float_ops: list[str] | None, data: bytes) -> dict:
        m = evaluate(data)
        c = {"candidate": _name(float_ops), "float_ops": float_ops, "size_bytes": len(data), "p50_ms": None,
             "drop_points": round(m["drop"], 3), "within_budget": m["drop"] <= budget and not m.get("parity"),
             "data": data}
        if m.get("parity"):
            c["parity_failed"] = "; ".join(m["parity"])
        candidates.append(c)
        return c

    def timed(*cs: dict) -> None:
        """Time ``cs`` together; each keeps the p50 of its latest measurement."""
        p50 = time_files({c["candidate"]: c["data"] for c in cs})
        for c in cs:
            c["p50_ms"] = p50[c["candidate"]]

    # From the accurate end: every quantized operator type in float, then each type given back to
    # int8 where that keeps the budget and is faster, or as fast and smaller.
    plain = trial([], build([]))
    best = trial(list(op_types), build(list(op_types)))
    for op in op_types:
        ops = [o for o in best["float_ops"] if o != op]
        c = trial(ops, build(ops))
        if not c["within_budget"]:
            continue
        if not best["within_budget"]:
            best = c
            continue
        timed(best, c)
        if _better(c, best):
            best = c
    full = trial(None, fp32)
    final = [plain, full] + ([best] if best is not plain else [])
    timed(*final)
    pool = [c for c in final if c["within_budget"]] or [full]
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
        "rule": f"the fastest within the budget (1 thread, here; timed together in interleaved rounds, the best "
                f"round of each); within "
                f"{NOISE:.0%}, the smaller file; a candidate outside the budget is not timed",
    }
    return chosen["data"], record


def speed_mix_tflite(saved_model: Path, calibration, options, evaluate: Evaluate, time_files: TimeFiles,
                     budget: float, fp32: bytes) -> tuple[bytes, dict]:
    """:func:`speed_mix` for TFLite: operator types from LiteRT's quantization debugger, candidates
    from its calibrated model quantized again with ``denylisted_ops``."""
    from edgekit.exporters.int8_repair import layer_errors
    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    # float inputs and outputs: quantizing a classifier's scores to 256 levels flips near-ties, which
    # no choice of operators inside can win back (seen: 5 points on a small ViT)
    options = dataclasses.replace(options, int8_io="float")
    ranked, debugger = layer_errors(saved_model, calibration, options)
    op_types = [op for op, _ in Counter(layer["op"] for layer in ranked).most_common()]

    def build(float_ops: list[str]) -> bytes:
        from tensorflow.lite.python.convert import mlir_quantize

        with captured_stderr_fd():
            return mlir_quantize(debugger.calibrated_model, disable_per_channel=options.per_tensor,
                                 disable_per_channel_for_dense_layers=options.per_tensor, fully_quantize=False,
                                 input_data_type=tf.float32, output_data_type=tf.float32,
                                 denylisted_ops=list(float_ops))

    return speed_mix(op_types, build, evaluate, time_files, budget, fp32)
