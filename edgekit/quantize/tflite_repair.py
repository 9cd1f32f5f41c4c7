"""int8 repair: when full-integer int8 loses more than the budget, keep the few layers that cause it in float.

LiteRT's own machinery does the work: ``tf.lite.experimental.QuantizationDebugger`` calibrates
once and measures each quantized layer's error against the float model on calibration inputs
(``rmse/scale``: the root mean square error of its output in units of its quantization step);
the calibrated model is then quantized again with chosen layers left in float (the MLIR
quantizer's ``denylisted_nodes``, what the debugger's own ``get_nondebug_quantized_model`` calls). edgekit adds the search a person does by hand:

1. rank the quantized layers by ``rmse/scale``, worst first;
2. check that keeping all of them in float meets the budget (else the search cannot help);
3. find the lowest-ranked layer a passing prefix needs (galloping from the front: 1, 2, 4, ...
   layers, then bisecting the bracket), keep it, and repeat among the layers ranked above it until
   the kept ones alone pass; each candidate is converted, run in LiteRT and measured on the
   held-out inputs.

About ``2 log2 r`` evaluations per layer kept at rank ``r``, at most ``2 * ceil(log2 N) + 5`` in all
(past that, the last passing set is returned); the same data gives the same set.
The budget is in points: of accuracy against the float model when the held-out inputs have labels,
else of top-1 agreement with the float model.

Example:
    >>> ranked = rank_layers(stats)                                   # doctest: +SKIP
    >>> keep, steps = bisect_keep_set(ranked, evaluate, budget=1.0)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import ExportError
from edgekit.files import captured_stderr_fd
from edgekit.io_spec import take

DEBUG_SAMPLES = 64


def max_evaluations(n_layers: int) -> int:
    """The search's budget of full evaluations for ``n_layers`` quantized layers: ``2 * ceil(log2 N) + 5``."""
    return 2 * math.ceil(math.log2(max(n_layers, 2))) + 5


def rank_layers(stats_csv: str) -> list[dict]:
    """Quantized layers from the debugger's statistics, worst first, by ``rmse/scale`` (the output's
    root mean square error against the float model, in quantization steps)."""
    layers = []
    for r in csv.DictReader(io.StringIO(stats_csv)):
        scale = float(r["scale"] or 0)
        if scale <= 0 or not r["tensor_name"]:
            continue
        layers.append({"layer": r["tensor_name"], "op": r["op_name"], "scale": float(f"{scale:.6g}"),
                       "rmse_scale": round(math.sqrt(max(float(r["mean_squared_error"]), 0.0)) / scale, 4)})
    return sorted(layers, key=lambda layer: (-layer["rmse_scale"], layer["layer"]))


def search_order(ranked: list[dict], model: bytes) -> list[str]:
    """The order the bisection adds layers in: worst ``rmse/scale`` first, each followed by the layers
    that write its inputs (as ONNX's repair orders its nodes, edgekit.quantize.onnx_repair.search_order).

    A tensor with a few wide channels has a large scale, so its own rmse/scale looks exact while
    every layer computed from it is ruined; both the layer that writes it and the layers that read it
    quantize it, so both must leave int8 together. Ranked alone, the producer fell far behind its
    consumers: the int8 repair benchmark's two-channel workload kept 16 of 18 layers; in this order,
    4 of 18, the least that fixes it."""
    from ai_edge_litert.interpreter import Interpreter

    quantizable = {layer["layer"] for layer in ranked}
    try:
        it = Interpreter(model_content=model)
        names = {t["index"]: t["name"] for t in it.get_tensor_details()}
        ops = it._get_ops_details()
    except Exception:  # the ranking alone, as before
        return [layer["layer"] for layer in ranked]
    writer = {names[o]: names[op["outputs"][0]] for op in ops for o in op["outputs"] if o in names and len(op["outputs"])}
    reads = {names[op["outputs"][0]]: [names[i] for i in op["inputs"] if i in names]
             for op in ops if len(op["outputs"]) and op["outputs"][0] in names}
    order: list[str] = []

    def add(name: str) -> None:
        if name in quantizable and name not in order:
            order.append(name)

    for layer in ranked:
        add(layer["layer"])
        for tensor in reads.get(layer["layer"], []):
            if tensor in writer:
                add(writer[tensor])
    return order


def bisect_keep_set(ranked: list[str], evaluate: Callable[[list[str]], float], budget: float,
                    limit: int | None = None) -> tuple[list[str] | None, list[dict]]:
    """The layers to keep in float, found by successive bisection over ``ranked`` (worst first);
    ``None`` when keeping all of them still misses the budget.

    ``evaluate(keep)`` converts with ``keep`` in float and returns the drop in points, or the drop and
    the parity checks the candidate failed (a candidate that fails one is outside the budget). The first
    bisection finds the lowest-ranked layer that a passing prefix needs; it is kept, and the search
    repeats among the layers ranked above it until the kept ones alone pass. Each layer found costs
    about ``log2 N`` evaluations; past ``limit`` the last passing set is returned.

    >>> def evaluate(keep): return 0.4 if {"a", "c"} <= set(keep) else 9.0   # two culprits: a and c
    >>> bisect_keep_set(["a", "b", "c", "d"], evaluate, 1.0)[0]
    ['a', 'c']
    """
    limit = limit or max_evaluations(len(ranked))
    steps: list[dict] = []

    def run(keep: list[str]) -> bool:
        result = evaluate(keep)
        drop, problems = (float(result[0]), list(result[1])) if isinstance(result, tuple) else (float(result), [])
        ok = drop <= budget and not problems
        steps.append({"kept": len(keep), "layers": list(keep), "drop_points": round(drop, 3), "ok": ok,
                      **({"parity_failed": "; ".join(problems)} if problems else {})})
        return ok

    if not run(ranked):
        return None, steps
    keep: list[str] = []
    candidates = list(ranked)
    passing = list(ranked)
    while candidates:
        lo, hi = 0, len(candidates)  # keep + candidates[:hi] passes; keep + candidates[:lo] fails (lo = 0 checked)
        # gallop from the front (1, 2, 4, ... layers): a good ranking puts the culprits there, so the
        # bracket is found in about log2 of the culprit's rank, not of the whole list
        size = 1
        while size < hi:
            if len(steps) >= limit:
                return _by_rank(passing, ranked), steps
            if run(keep + candidates[:size]):
                hi, passing = size, keep + candidates[:size]
                break
            lo, size = size, size * 2
        while hi - lo > 1:
            if len(steps) >= limit:
                return _by_rank(passing, ranked), steps
            mid = (lo + hi) // 2
            if run(keep + candidates[:mid]):
                hi, passing = mid, keep + candidates[:mid]
            else:
                lo = mid
        keep.append(candidates[hi - 1])
        candidates = candidates[: hi - 1]
        if not candidates or len(steps) >= limit:
            break
        if run(keep):
            passing = list(keep)
            break
    return _by_rank(passing if len(steps) >= limit else keep, ranked), steps


def _by_rank(keep: list[str], ranked: list[str]) -> list[str]:
    order = {name: i for i, name in enumerate(ranked)}
    return sorted(keep, key=order.__getitem__)


FLAG_RMSE_SCALE = 0.7  # LiteRT's debugger tutorial flags layers above this as suspects


def layer_errors(saved_model: Path, calibration, options) -> tuple[list[dict], object]:
    """Every quantized layer's int8 error against the float model, worst first, and the debugger
    (which holds the calibrated model). Each layer: tensor name, operator, scale, ``rmse/scale``."""
    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    from edgekit.quantize.tflite_converter import int8_converter, representative_rows

    samples = take(calibration, 0, options.calib_samples)
    dataset = representative_rows(samples, DEBUG_SAMPLES)

    try:
        with captured_stderr_fd():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=int8_converter(tf, saved_model, samples, options, {}), debug_dataset=dataset)
            debugger.run()
            buf = io.StringIO()
            debugger.layer_statistics_dump(buf)
    except Exception as e:
        raise ExportError(f"LiteRT's quantization debugger failed: {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None
    return rank_layers(buf.getvalue()), debugger


def repair_tflite_int8(saved_model: Path, calibration, options, evaluate_flatbuffer: Callable[[bytes], float | tuple],
                       budget: float) -> tuple[bytes | None, dict]:
    """Keep the fewest layers in float that bring the int8 artifact within ``budget`` points.

    Returns the repaired flatbuffer (None when even an all-float keep-set misses) and the
    ``mixed`` record for the manifest."""
    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    t0 = time.perf_counter()
    ranked, debugger = layer_errors(saved_model, calibration, options)
    by_name = {layer["layer"]: layer for layer in ranked}
    built: dict[tuple, bytes] = {}
    io_state = {"io": options.int8_io}

    def build(keep: list[str]) -> bytes:
        """The calibrated model quantized again with ``keep`` in float: no new calibration run."""
        key = (io_state["io"], *sorted(keep))
        if key not in built:
            from tensorflow.lite.python.convert import mlir_quantize

            io = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[io_state["io"]]
            with captured_stderr_fd():
                built[key] = mlir_quantize(
                    debugger.calibrated_model, disable_per_channel=options.per_tensor,
                    disable_per_channel_for_dense_layers=options.per_tensor, fully_quantize=io_state["io"] != "float",
                    input_data_type=io, output_data_type=io, denylisted_nodes=list(keep))
        return built[key]

    names = search_order(ranked, debugger.calibrated_model)
    keep, steps = bisect_keep_set(names, lambda k: evaluate_flatbuffer(build(k)), budget)
    io_note = None
    if keep is None and io_state["io"] != "float":
        # Even all layers in float miss: the integer inputs and outputs are to blame (a classifier's
        # scores in 256 levels flip near-ties; seen on MLPerf Tiny's ResNet-8). Search again with float IO.
        io_state["io"] = "float"
        keep, more = bisect_keep_set(names, lambda k: evaluate_flatbuffer(build(k)), budget,
                                     limit=max_evaluations(len(names)) - len(steps))
        io_note = (f"{options.int8_io} inputs and outputs alone lose {steps[0]['drop_points']:g} points: "
                   "inputs and outputs are float32")
        steps += more
    record = {
        "budget_points": budget,
        "layers_quantized": len(ranked),
        "evaluations": len(steps),
        "max_evaluations": max_evaluations(len(ranked)),
        "seconds": round(time.perf_counter() - t0, 2),
        "steps": [{k: v for k, v in s.items() if k != "layers"} for s in steps],
        "ranking": ranked[:10],
        "io": io_note or f"{options.int8_io} inputs and outputs, as asked",
        "float_io": io_state["io"] == "float",
    }
    if keep is None:
        record["result"] = "keeping every quantized layer in float still misses the budget"
        return None, record
    record["kept"] = [{**by_name[k], "precision": "float32"} for k in keep]
    record["result"] = f"{len(keep)} of {len(ranked)} layers kept in float32"
    if len(keep) == len(ranked):
        record["result"] += ": in effect fp32 (no layer could stay int8 within the budget; ship fp32, or loosen --max-drop)"
    return build(keep), record
