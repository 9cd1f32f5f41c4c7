"""ONNX int8 repair: the same search as TFLite's, with ONNX Runtime's own tools.

The ranking comes from ONNX Runtime's ``qdq_loss_debug``: the float model and its QDQ
quantization are run on calibration inputs with every activation exposed, and each activation
gets two signal-to-quantization-noise ratios (SQNR, dB): local, across its quantize/dequantize
pair, and cumulative, against the float model's same activation. The report ranks a node by the
worst of them among the activations it reads and writes. The search adds nodes in the order of
:func:`search_order`: where the cumulative SQNR falls most across a node, that node and the nodes
that write its inputs (a wide tensor hurts both its producer, which writes it in int8, and its
consumers, which read it in int8). Candidates are made with ``quantize_static(nodes_to_exclude=...)``
in the layout the export chose, and the search is :func:`edgekit.quantize.tflite_repair.bisect_keep_set`.

Example:
    >>> model, record = repair_onnx_int8(pre, tmp, reader, samples, options, evaluate, 1.0)   # doctest: +SKIP
    >>> record["result"]                                                                      # doctest: +SKIP
    '2 of 9 nodes kept in float32'
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.errors import ExportError
from edgekit.files import captured_stderr_fd
from edgekit.io_spec import rows, take
from edgekit.quantize.onnx_layouts import LAYOUTS, WithOverrides, dynamic_batch, quantize_layout
from edgekit.quantize.tflite_repair import bisect_keep_set, max_evaluations

DEBUG_SAMPLES = 32
EXACT_DB = 200.0  # the SQNR given to a tensor quantization does not change at all (float32 itself: about 150)
# A float input is exact (SQNR in the hundreds of dB); int8 gives about 40 dB at best. The drop across a
# node is measured from at most this, so the first quantized layer does not look like a culprit.
DROP_CAP_DB = 60.0
# Activations ONNX Runtime fuses into the node that writes their input (their quantization is that node's).
FUSED_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish"})
# Activations ONNX Runtime's quantizer removes where their output is quantized (QuantizeLinear clips instead).
CLIPPING_ACTIVATIONS = frozenset({"Relu", "Clip"})


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
    quantize_layout(pre, qdq, reader(), LAYOUTS["qdq-u8s8"], options)
    debug_rows = take(samples, 0, min(DEBUG_SAMPLES, rows(samples)))

    def debug_reader():  # the rows in one batch where the batch axis is free
        graph = onnx.load(pre).graph
        batch = rows(debug_rows) if all(dynamic_batch(i) for i in graph.input) else 1
        return _Rows(debug_rows, batch)

    with captured_stderr_fd(), contextlib.redirect_stdout(io.StringIO()):
        modify_model_output_intermediate_tensors(str(pre), str(tmp / "rank-float-aug.onnx"))
        modify_model_output_intermediate_tensors(str(qdq), str(tmp / "rank-qdq-aug.onnx"))
        float_acts = collect_activations(str(tmp / "rank-float-aug.onnx"), debug_reader())
        qdq_acts = collect_activations(str(tmp / "rank-qdq-aug.onnx"), debug_reader())
    graph = onnx.load(pre).graph
    matching = create_activation_matching(qdq_acts, float_acts)
    # ONNX Runtime's quantizer removes a Relu or Clip whose output it quantizes (the quantize step
    # clips instead), so in the QDQ model that tensor holds the unclipped input, and its local SQNR
    # would count the activation's own work as error (MobileNetV3's squeeze-excite ReLUs: 2.4 dB,
    # where the same quantization of the ReLU's real output is 41 dB): it is clipped first.
    for tensor, (lo, hi) in _clip_bounds(graph).items():
        if tensor in matching and matching[tensor].get("pre_qdq") is not None:
            matching[tensor]["pre_qdq"] = [np.clip(a, lo, hi) for a in matching[tensor]["pre_qdq"]]
    with np.errstate(divide="ignore", invalid="ignore"):  # an exact all-zero tensor: 0/0
        errors = compute_activation_error(matching)
    # no error at all (0/0 or x/0) is an exact tensor
    local = {name: _exact(e["qdq_err"]) for name, e in errors.items()}
    cumulative = {name: _exact(e["xmodel_err"]) for name, e in errors.items() if "xmodel_err" in e}
    readers: dict[str, list] = {}
    for node in graph.node:
        for t in node.input:
            readers.setdefault(t, []).append(node)

    def measured_outputs(node) -> list[str]:
        """Its outputs, or where ONNX Runtime fuses an activation into it (Conv, Relu), the activation's."""
        outs = [t for t in node.output if t in cumulative]
        fused = [o for t in node.output for r in readers.get(t, []) if r.op_type in FUSED_ACTIVATIONS
                 for o in r.output if o in cumulative]
        return outs or fused

    # ONNX Runtime's quantizer removes a Relu or Clip whose output it quantizes (the quantize step
    # clips instead), so in the QDQ model that tensor holds the unclipped input: its local SQNR then
    # measures the activation's own work as error (MobileNetV3's squeeze-excite ReLUs: 2.4 dB, where
    # the same quantization of the ReLU's real output is 41 dB). Their cumulative SQNR stays.
    clipped = {t for node in graph.node if node.op_type in CLIPPING_ACTIVATIONS for t in node.output}
    producer = {t: node.name for node in graph.node for t in node.output}
    nodes = []
    for node in graph.node:
        tensors = [*node.input, *node.output, *measured_outputs(node)]
        here = [local[t] for t in tensors if t in local and t not in clipped]
        so_far = [cumulative[t] for t in tensors if t in cumulative]
        if not here and so_far:  # a Relu between two clipped tensors: judged by the cumulative SQNR
            here = list(so_far)
        if here and node.name:
            before = [min(cumulative[t], DROP_CAP_DB) for t in node.input if t in cumulative]
            after = [cumulative[t] for t in measured_outputs(node)]
            drop = max(0.0, min(before) - min(after)) if before and after else 0.0
            nodes.append({"layer": node.name, "op": node.op_type, "sqnr_db": round(min(here), 2),
                          "sqnr_cumulative_db": round(min(so_far), 2) if so_far else None,
                          "sqnr_drop_db": round(drop, 2),
                          "after": producer.get(node.input[0]) if node.input else None})  # who writes its input
    # ranked by the worse of the two: a wide tensor hides its harm from its own SQNR (its signal is
    # large), and shows it in the cumulative SQNR of what is computed from it
    return sorted(nodes, key=lambda n: (min(n["sqnr_db"], n["sqnr_cumulative_db"] or n["sqnr_db"]), n["layer"]))


def _clip_bounds(graph) -> dict[str, tuple[float | None, float | None]]:
    """The output tensors of the Relu and Clip nodes of ``graph``, with the range they clip to."""
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def bound(node, k: int) -> float | None:
        name = node.input[k] if len(node.input) > k else ""
        return float(consts[name].reshape(-1)[0]) if name in consts and consts[name].size == 1 else None

    bounds = {}
    for node in graph.node:
        if node.op_type == "Relu":
            bounds[node.output[0]] = (0.0, None)
        elif node.op_type == "Clip":
            bounds[node.output[0]] = (bound(node, 1), bound(node, 2))
    return bounds


def _exact(sqnr_db: float) -> float:
    """SQNR capped at :data:`EXACT_DB` (an exact tensor measures inf, or NaN when it is all zeros)."""
    return EXACT_DB if math.isnan(sqnr_db) else min(float(sqnr_db), EXACT_DB)


def search_order(nodes: list[dict], pre: Path) -> list[str]:
    """The order the bisection adds nodes in: where the cumulative SQNR falls most across a node
    first, each such node followed by the nodes that write its inputs (through activations fused
    into them). A tensor with a few wide channels keeps a high SQNR of its own (its signal is
    large) and ruins what is computed from it; both the node that writes it and the nodes that read
    it quantize it, so both must leave int8 together."""
    import onnx

    graph = onnx.load(pre).graph
    producer = {out: node for node in graph.node for out in node.output}
    inputs = {node.name: list(node.input) for node in graph.node}
    quantizable = {n["layer"] for n in nodes}
    order: list[str] = []

    def add(name: str) -> None:
        if name in quantizable and name not in order:
            order.append(name)

    by_drop = sorted(nodes, key=lambda n: (-n.get("sqnr_drop_db", 0.0), nodes.index(n)))
    for n in by_drop:
        add(n["layer"])
        for tensor in inputs.get(n["layer"], []):
            node = producer.get(tensor)
            while node is not None:
                add(node.name)
                node = producer.get(node.input[0]) if node.op_type in FUSED_ACTIVATIONS and node.input else None
    return order


class _Rows:
    """A calibration reader over a batch (arrays by input name), ``batch`` rows at a time."""

    def __init__(self, samples: dict, batch: int = 1):
        self.samples, self.i, self.batch = samples, 0, batch

    def get_next(self):
        if self.i >= rows(self.samples):
            return None
        row = take(self.samples, self.i, self.i + self.batch)
        self.i += self.batch
        return row

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
    order = search_order(ranked, pre)
    built: dict[tuple, Path] = {}

    def build(keep: list[str]) -> Path:
        key = tuple(sorted(keep))
        if key not in built:
            dst = tmp / f"repair-{len(built)}.onnx"
            opts = WithOverrides(options, nodes_to_exclude=list(keep))
            quantize_layout(pre, dst, reader(), LAYOUTS[layout], opts)
            built[key] = dst
        return built[key]

    def evaluate(keep: list[str]) -> float:
        # every node in float is the float model, whose own export is validated against the source:
        # it loses nothing by definition, and is not run again
        return 0.0 if len(set(keep)) == len(ranked) else evaluate_model(build(keep))

    keep, steps = bisect_keep_set(order, evaluate, budget)
    record = {"budget_points": budget, "layers_quantized": len(ranked), "evaluations": len(steps),
              "max_evaluations": max_evaluations(len(ranked)), "seconds": round(time.perf_counter() - t0, 2),
              "steps": [{k: v for k, v in s.items() if k != "layers"} for s in steps], "ranking": [by_name[name] for name in order[:10]],
              "metric": "SQNR, local (across the quantize/dequantize pair) and cumulative (against the float "
                        "model), dB, lower is worse; searched in order of the fall in cumulative SQNR across "
                        "each node (sqnr_drop_db), each followed by the nodes that write its inputs"}
    if keep is None:
        record["result"] = "keeping every quantizable node in float still misses the budget"
        return None, record
    record["kept"] = [{**by_name[k], "precision": "float32"} for k in keep]
    record["result"] = f"{len(keep)} of {len(ranked)} nodes kept in float32"
    return onnx.load(build(keep)), record


def repair_from_float(fp32, samples, options, layout: str, evaluate, budget: float) -> tuple[bytes | None, dict]:
    """``--max-drop`` for ONNX from the exporter's float graph ``fp32``: the int8 model with the fewest
    nodes left in float that meets ``budget`` (:func:`repair_onnx_int8`), as bytes, or None; and the
    record for the manifest. ``evaluate(bytes)`` judges a candidate."""
    import tempfile

    from edgekit.quantize.onnx_layouts import preprocessed

    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-repair-") as tmp:
        tmp = Path(tmp)
        pre, reader = preprocessed(fp32, tmp, samples)

        def evaluate_path(path: Path) -> float:
            return evaluate(path.read_bytes())

        model, record = repair_onnx_int8(pre, tmp, reader, samples, options, layout, evaluate_path, budget)
        return (None if model is None else model.SerializeToString()), record
