"""ONNX int8 repair: the same search as TFLite's, with ONNX Runtime's own tools.

The ranking comes from ONNX Runtime's ``qdq_loss_debug``: the float model and its QDQ
quantization are run on calibration inputs with every activation exposed, and each activation
gets two signal-to-quantization-noise ratios (SQNR, dB): local, across its quantize/dequantize
pair, and cumulative, against the float model's same activation. A node is ranked by the worst of
them among the activations it reads and writes (a wide tensor hurts both its producer, which
writes it in int8, and its consumers, which read it in int8). Candidates are
made with ``quantize_static(nodes_to_exclude=...)`` in the layout the export chose, and the search
is :func:`edgekit.exporters.int8_repair.bisect_keep_set`.

Example:
    >>> model, record = repair_onnx_int8(pre, tmp, reader, samples, options, evaluate, 1.0)   # doctest: +SKIP
    >>> record["result"]                                                                      # doctest: +SKIP
    '2 of 9 nodes kept in float32'
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import ExportError
from edgekit.exporters.int8_repair import bisect_keep_set, max_evaluations
from edgekit.exporters.onnx_int8_layout import LAYOUTS, WithOverrides, _quantize
from edgekit.files import captured_stderr_fd
from edgekit.io_spec import rows, take

DEBUG_SAMPLES = 32


def rank_nodes(pre: Path, tmp: Path, reader: Callable, samples, options) -> list[dict]:
    """Quantizable nodes of the pre-processed float model, worst SQNR first."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    qdq = tmp / "rank-qdq.onnx"
    _quantize(pre, qdq, reader(), LAYOUTS["qdq-u8s8"], options, reduce_range=False)
    debug_rows = take(samples, 0, min(DEBUG_SAMPLES, rows(samples)))

    def debug_reader():
        return _Rows(onnx.load(pre).graph.input[0].name, debug_rows)

    with captured_stderr_fd(), contextlib.redirect_stdout(io.StringIO()):
        modify_model_output_intermediate_tensors(str(pre), str(tmp / "rank-float-aug.onnx"))
        modify_model_output_intermediate_tensors(str(qdq), str(tmp / "rank-qdq-aug.onnx"))
        float_acts = collect_activations(str(tmp / "rank-float-aug.onnx"), debug_reader())
        qdq_acts = collect_activations(str(tmp / "rank-qdq-aug.onnx"), debug_reader())
    errors = compute_activation_error(create_activation_matching(qdq_acts, float_acts))
    local = {name: e["qdq_err"] for name, e in errors.items()}
    cumulative = {name: e["xmodel_err"] for name, e in errors.items() if "xmodel_err" in e}
    nodes = []
    for node in onnx.load(pre).graph.node:
        tensors = [*node.input, *node.output]
        here = [local[t] for t in tensors if t in local]
        so_far = [cumulative[t] for t in tensors if t in cumulative]
        if here and node.name:
            nodes.append({"layer": node.name, "op": node.op_type, "sqnr_db": round(min(here), 2),
                          "sqnr_cumulative_db": round(min(so_far), 2) if so_far else None})
    # ranked by the worse of the two: a wide tensor hides its harm from its own SQNR (its signal is
    # large), and shows it in the cumulative SQNR of what is computed from it
    return sorted(nodes, key=lambda n: (min(n["sqnr_db"], n["sqnr_cumulative_db"] or n["sqnr_db"]), n["layer"]))


class _Rows:
    """A calibration reader over a batch (several inputs: by name)."""

    def __init__(self, input_name: str, samples):
        self.input_name, self.samples, self.i = input_name, samples, 0

    def get_next(self):
        if self.i >= rows(self.samples):
            return None
        row = take(self.samples, self.i, self.i + 1)
        self.i += 1
        return row if isinstance(row, dict) else {self.input_name: row}

    def __iter__(self):
        while (row := self.get_next()) is not None:
            yield row


def repair_onnx_int8(pre: Path, tmp: Path, reader: Callable, samples, options, layout: str,
                     evaluate_model: Callable[[Path], float], budget: float) -> tuple[object | None, dict]:
    """Keep the fewest nodes out of int8 that bring the ONNX artifact within ``budget`` points."""
    import onnx

    t0 = time.perf_counter()
    try:
        ranked = rank_nodes(pre, tmp, reader, samples, options)
    except Exception as e:
        raise ExportError(f"ONNX Runtime's qdq_loss_debug failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    by_name = {n["layer"]: n for n in ranked}
    built: dict[tuple, Path] = {}

    def build(keep: list[str]) -> Path:
        key = tuple(sorted(keep))
        if key not in built:
            dst = tmp / f"repair-{len(built)}.onnx"
            opts = WithOverrides(options, nodes_to_exclude=list(keep))
            _quantize(pre, dst, reader(), LAYOUTS[layout], opts, reduce_range=False)
            built[key] = dst
        return built[key]

    keep, steps = bisect_keep_set([n["layer"] for n in ranked], lambda k: evaluate_model(build(k)), budget)
    record = {"budget_points": budget, "layers_quantized": len(ranked), "evaluations": len(steps),
              "max_evaluations": max_evaluations(len(ranked)), "seconds": round(time.perf_counter() - t0, 2),
              "steps": [{k: v for k, v in s.items() if k != "layers"} for s in steps], "ranking": ranked[:10],
              "metric": "SQNR, local (across the quantize/dequantize pair) and cumulative (against the float "
                        "model), dB, lower is worse"}
    if keep is None:
        record["result"] = "keeping every quantizable node in float still misses the budget"
        return None, record
    record["kept"] = [{**by_name[k], "precision": "float32"} for k in keep]
    record["result"] = f"{len(keep)} of {len(ranked)} nodes kept in float32"
    return onnx.load(build(keep)), record

