"""``--quant mixed``: the fastest artifact within the accuracy budget, chosen by measurement.

int8 is not always faster. LiteRT's int8 kernels for some operators (batched matmuls, softmax,
the ops of a layer norm or GELU) are slower on a CPU than their float ones, so a transformer in
plain int8 can be several times slower than in fp32; ONNX Runtime has its own slow int8 paths.
Which operators to keep in float depends on the model, the runtime and the CPU, so it is measured:

1. list the operator types that int8 quantizes: the types that hold weights first (giving them
   back to int8 is where the file shrinks), then the rest, most frequent first;
2. start from the accurate end, every quantized operator type kept in float; give each type back
   to int8 in turn and keep the change when the result stays within the budget and is faster by
   more than the timing noise (3%), or as fast and at least 5% smaller;
3. per layer: a type that holds weights and could not go back to int8 as a whole (it broke the
   budget) goes back with its worst layers kept in float, the fewest found by the repair's
   bisection over its layers ranked by quantization error
   (:func:`edgekit.quantize.tflite_repair.bisect_keep_set`), and is kept on the same terms as in 2;
   a transformer's residual stream, read by every dense layer, is the usual reason;
4. compare the result with plain int8 and fp32: the fastest within the budget wins; within 3% of
   it, the smallest file. The start (every type in float) is fp32 in all but name and does not
   compete: fp32 itself does.

Every candidate is run on the held-out inputs (accuracy or agreement, and the parity checks the
chosen file must pass). Latency is only ever compared between files timed in the same
measurement: one worker process, 10 interleaved rounds of 30 ms (A B, B A, ...), the best round of
each, so a slow spell of a shared machine cannot fall on one side only. Each step times the
candidate against the current best; the final choice times plain int8, the best mix and fp32
together. A decision within 5% of its threshold is measured again, up to twice, each file keeping
its fastest measurement. A candidate outside the budget is not timed. The manifest records every
candidate. Inputs and outputs stay float32.

Formats supply the operator types, a ``build(float_ops, float_nodes=())`` and, for the per-layer
step, their layers ranked worst first: TFLite through LiteRT's
quantization debugger (:func:`speed_mix_tflite`), ONNX through ``quantize_static``'s
``op_types_to_quantize`` and ``nodes_to_exclude``, ranked by ``qdq_loss_debug``
(:meth:`edgekit.exporters.onnx.ONNXExporter.speed_mix`).

Example:
    >>> data, record = speed_mix(["FULLY_CONNECTED", "BATCH_MATMUL"], build, evaluate, time_files,
    ...                          budget=1.0, fp32=fp32_bytes)                  # doctest: +SKIP
    >>> record["float_ops"]                                                     # doctest: +SKIP
    ['BATCH_MATMUL']
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from edgekit.files import captured_stderr_fd

# Operators that only move or select data: ONNX Runtime quantizes them where their input is quantized.
DATA_MOVEMENT = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather", "GatherElements", "Slice", "Split",
                           "Concat", "Flatten", "MaxPool", "Pad", "Resize", "Where", "TopK", "ArgMax"})

NOISE = 0.03  # timing noise: a candidate must be 3% faster to count as faster
GREY = 0.05  # a decision this close to its threshold is measured again
AGAIN = 2  # at most this many times

# operator types that hold weights (TFLite, ONNX): given back to int8, they shrink the file
WEIGHTED = {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D", "TRANSPOSE_CONV", "EMBEDDING_LOOKUP",
            "Conv", "ConvTranspose", "MatMul", "Gemm"}

# evaluate(data) -> {"drop": points, "parity": [failed checks]}; time_files({name: data}) -> {name: p50 ms},
# measured together in interleaved rounds
Evaluate = Callable[[bytes], dict]
TimeFiles = Callable[[dict[str, bytes]], dict[str, float]]


def _better(c: dict, best: dict) -> bool:
    """Faster by more than the noise, or as fast and at least 5% smaller (both timed together)."""
    faster = c["p50_ms"] < best["p50_ms"] * (1 - NOISE)
    as_fast = c["p50_ms"] <= best["p50_ms"] * (1 + NOISE)
    return faster or (as_fast and c["size_bytes"] < 0.95 * best["size_bytes"])


def _grey(c: dict, best: dict) -> bool:
    """Whether :func:`_better`'s verdict on ``c`` against ``best`` lies within :data:`GREY` of its threshold."""
    ratio = c["p50_ms"] / best["p50_ms"]
    smaller = c["size_bytes"] < 0.95 * best["size_bytes"]
    return abs(ratio - ((1 + NOISE) if smaller else (1 - NOISE))) < GREY


def _choose(pool: list[dict]) -> dict:
    """The fastest of ``pool``; within :data:`NOISE` of it, the smallest file."""
    fastest = min(c["p50_ms"] for c in pool)
    return min((c for c in pool if c["p50_ms"] <= fastest * (1 + NOISE)), key=lambda c: c["size_bytes"])


def _final_grey(pool: list[dict]) -> bool:
    """Whether a file smaller than the chosen one missed the tie by less than :data:`GREY`."""
    chosen = _choose(pool)
    return any(_grey(c, chosen) for c in pool if c["size_bytes"] < 0.95 * chosen["size_bytes"])


def _name(float_ops: list[str] | None, float_nodes: list[str] = ()) -> str:
    if float_ops is None:
        return "fp32"
    name = f"int8, {', '.join(float_ops)} in float" if float_ops else "int8"
    if float_nodes:
        name += f"{'; ' if float_ops else ', '}{len(float_nodes)} more layer{'s' * (len(float_nodes) > 1)} in float"
    return name


def speed_mix(op_types: list[str], build: Callable[..., bytes], evaluate: Evaluate, time_files: TimeFiles,
              budget: float, fp32: bytes, layers: Callable[[], dict[str, list[str]]] | None = None
              ) -> tuple[bytes, dict]:
    """The chosen file and the record for the manifest. ``build(float_ops)`` quantizes every operator
    type but ``float_ops`` to int8; ``build(float_ops, float_nodes)`` keeps the named layers in float
    too. ``layers()`` (called only when the per-layer step is needed) gives each operator type's
    layers, worst quantization error first."""
    from edgekit.quantize.tflite_repair import bisect_keep_set

    t0 = time.perf_counter()
    candidates: list[dict] = []

    def trial(float_ops: list[str] | None, data: bytes, float_nodes: list[str] = ()) -> dict:
        m = evaluate(data)
        c = {"candidate": _name(float_ops, float_nodes), "float_ops": float_ops, "size_bytes": len(data),
             "p50_ms": None, "drop_points": round(m["drop"], 3),
             "within_budget": m["drop"] <= budget and not m.get("parity"), "data": data}
        if float_nodes:
            c["float_nodes"] = list(float_nodes)
        if m.get("parity"):
            c["parity_failed"] = "; ".join(m["parity"])
        candidates.append(c)
        return c

    def timed(cs: list[dict], grey: Callable[[], bool]) -> None:
        """Time ``cs`` together; while ``grey()``, again (at most :data:`AGAIN` times), each file
        keeping its fastest measurement of this decision."""
        for k in range(1 + AGAIN):
            p50 = time_files({c["candidate"]: c["data"] for c in cs})
            for c in cs:
                c["p50_ms"] = p50[c["candidate"]] if k == 0 else min(c["p50_ms"], p50[c["candidate"]])
            if not grey():
                break

    def step(c: dict) -> None:
        """Keep ``c`` as the best when it is within the budget and better (timed against the best)."""
        nonlocal best
        if not c["within_budget"]:
            return
        if not best["within_budget"]:
            best = c
            return
        timed([best, c], lambda: _grey(c, best))
        if _better(c, best):
            best = c

    # From the accurate end: every quantized operator type in float, then each type given back to
    # int8 where that keeps the budget and is faster, or as fast and smaller.
    op_types = sorted(op_types, key=lambda o: o not in WEIGHTED)  # stable: most frequent first within each
    plain = trial([], build([]))
    start = best = trial(list(op_types), build(list(op_types)))
    refused: list[str] = []  # weight types whose give-back as a whole broke the budget
    for op in op_types:
        ops = [o for o in best["float_ops"] if o != op]
        c = trial(ops, build(ops))
        if not c["within_budget"] and op in WEIGHTED:
            refused.append(op)
        step(c)
    per_layer: list[dict] = []
    ranked = layers() if refused and layers is not None else {}
    for op in refused:
        names = ranked.get(op, [])
        if len(names) < 2 or not best["within_budget"] or op not in best["float_ops"]:
            continue
        ops, nodes = [o for o in best["float_ops"] if o != op], best.get("float_nodes", [])
        tried: dict[frozenset, dict] = {}

        def drop(keep: list[str], ops=ops, nodes=nodes, tried=tried, names=names) -> float:
            if len(keep) == len(names):  # every layer of the type in float: the best as it is
                return best["drop_points"]
            c = trial(ops, build(ops, [*nodes, *keep]), [*nodes, *keep])
            tried[frozenset(keep)] = c
            return c["drop_points"] if c["within_budget"] else math.inf

        keep, steps = bisect_keep_set(names, drop, budget)
        per_layer.append({"op": op, "layers": len(names), "kept_in_float": keep, "evaluations": len(steps)})
        if keep is not None and frozenset(keep) in tried:
            step(tried[frozenset(keep)])
    full = trial(None, fp32)
    final = [plain, full] + ([best] if best is not plain and best is not start else [])
    pool = [c for c in final if c["within_budget"]] or [full]
    timed(final, lambda: _final_grey(pool))
    chosen = _choose(pool)
    record = {
        "chosen": chosen["candidate"],
        "float_ops": chosen["float_ops"],
        "float_nodes": chosen.get("float_nodes", []),
        "per_layer": per_layer,
        "budget_points": budget,
        "seconds": round(time.perf_counter() - t0, 2),
        "candidates": [{k: v for k, v in c.items() if k != "data"} for c in candidates],
        "plain_int8": {k: plain[k] for k in ("p50_ms", "size_bytes", "drop_points")},
        "fp32": {k: full[k] for k in ("p50_ms", "size_bytes", "drop_points")},
        "mixed": {k: chosen[k] for k in ("p50_ms", "size_bytes", "drop_points")},
        "rule": f"the fastest within the budget (1 thread, here; timed together in one process, in interleaved "
                f"rounds, the best round of each; measured again when within {GREY:.0%} of a verdict's threshold); within "
                f"{NOISE:.0%}, the smaller file; a candidate outside the budget is not timed",
    }
    return chosen["data"], record


def speed_mix_tflite(saved_model: Path, calibration, options, evaluate: Evaluate, time_files: TimeFiles,
                     budget: float, fp32: bytes) -> tuple[bytes, dict]:
    """:func:`speed_mix` for TFLite: operator types from LiteRT's quantization debugger, candidates
    from its calibrated model quantized again with ``denylisted_ops``."""
    from edgekit.quantize.tflite_repair import layer_errors
    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    # float inputs and outputs: quantizing a classifier's scores to 256 levels flips near-ties, which
    # no choice of operators inside can win back (seen: 5 points on a small ViT)
    options = dataclasses.replace(options, int8_io="float")
    ranked, debugger = layer_errors(saved_model, calibration, options)
    op_types = [op for op, _ in Counter(layer["op"] for layer in ranked).most_common()]

    def build(float_ops: list[str], float_nodes: list[str] = ()) -> bytes:
        from tensorflow.lite.python.convert import mlir_quantize

        with captured_stderr_fd():
            return mlir_quantize(debugger.calibrated_model, disable_per_channel=options.per_tensor,
                                 disable_per_channel_for_dense_layers=options.per_tensor, fully_quantize=False,
                                 input_data_type=tf.float32, output_data_type=tf.float32,
                                 denylisted_ops=list(float_ops), denylisted_nodes=list(float_nodes))

    def layers() -> dict[str, list[str]]:
        by_op: dict[str, list[str]] = {}
        for layer in ranked:  # worst rmse/scale first
            by_op.setdefault(layer["op"], []).append(layer["layer"])
        return by_op

    return speed_mix(op_types, build, evaluate, time_files, budget, fp32, layers)


def speed_mix_onnx(fp32, samples, options, layout: str, evaluate: Evaluate, time_files: TimeFiles,
                   budget: float) -> tuple[bytes, dict]:
    """:func:`speed_mix` for ONNX, from the exporter's float graph ``fp32``: candidates quantized in
    ``layout`` with ``quantize_static(op_types_to_quantize=...)``; with every type in float, the
    candidate is the float model itself. Operators that only move data (:data:`DATA_MOVEMENT`)
    are not searched: they are quantized where their input is."""
    import tempfile

    import onnx

    from edgekit.quantize.onnx_layouts import (
        LAYOUTS,
        WithOverrides,
        preprocessed,
        quantizable_op_types,
        quantize_layout,
    )

    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-mix-") as tmp:
        tmp = Path(tmp)
        pre, reader = preprocessed(fp32, tmp, samples)
        quantizable = quantizable_op_types(onnx.load(pre))
        # operators that only move data are quantized where their input is: they follow, not searched
        moves = [o for o in quantizable if o in DATA_MOVEMENT]
        op_types = [o for o in quantizable if o not in DATA_MOVEMENT]
        built: dict[tuple, bytes] = {((), ()): fp32.SerializeToString()}

        def build(float_ops: list[str], float_nodes: list[str] = ()) -> bytes:
            int8_ops = tuple(o for o in op_types if o not in float_ops)
            key = (int8_ops, tuple(sorted(float_nodes)) if int8_ops else ())
            if key not in built:
                dst = tmp / f"mix-{len(built)}.onnx"
                opts = WithOverrides(options, op_types_to_quantize=[*int8_ops, *moves], nodes_to_exclude=list(float_nodes))
                quantize_layout(pre, dst, reader(), LAYOUTS[layout], opts)
                built[key] = dst.read_bytes()
            return built[key]

        def layers() -> dict[str, list[str]]:
            from edgekit.quantize.onnx_repair import rank_nodes

            by_op: dict[str, list[str]] = {}
            for node in rank_nodes(pre, tmp, reader, samples, options):  # worst SQNR first
                by_op.setdefault(node["op"], []).append(node["layer"])
            return by_op

        data, record = speed_mix(op_types, build, evaluate, time_files, budget, built[((), ())], layers)
    record.update(int8_layout=layout, follow_their_inputs=moves)
    return data, record
