"""Per-operator times from ONNX Runtime's own session profiler.

The session is made as :class:`~edgekit.runtimes.onnxruntime.ONNXSession` makes it (full graph
optimisation, the same threads) with ``enable_profiling``; ONNX Runtime then writes a Chrome
trace in which every executed node has a ``<node>_kernel_time`` event (``dur`` in us, ``args``
with ``op_name`` and ``provider``). The nodes are the *optimised* graph's: ``FusedConv`` for a
Conv and its Relu, ``QLinearConv`` for a quantized Conv, layout reorders (``ReorderInput``,
``ReorderOutput``) that ONNX Runtime adds. A fused node keeps the name of the first node it
fuses, so its time goes to that node's layer; reorders belong to no layer.

Example:
    >>> prof = profile_onnx("model_fp32.onnx", {"input": x[:1]}, threads=1, runs=100)   # doctest: +SKIP
    >>> prof["ops"][0]["op"], prof["ops"][0]["kernel"]                                  # doctest: +SKIP
    ('FusedConv', 'CPUExecutionProvider')
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.layer_names import scope_of
from edgekit.profiling.records import typical_total


def profile_onnx(path: str | Path, feeds: dict[str, np.ndarray], *, threads: int | None, runs: int,
                 warmup: int = 5) -> dict[str, Any]:
    """Each node's mean time (ms) over ``runs`` inferences of one sample, in execution order.

    ``feeds``: by the graph's own input names. Returns ``ops`` (``name``, ``op``, ``kernel``, ``ms``)
    and ``invoke_ms`` (ONNX Runtime's ``model_run`` event: the whole run as it timed it)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgekit-profile-") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        for _ in range(warmup + runs):
            session.run(None, feeds)
        trace = json.loads(Path(session.end_profiling()).read_text())
    return per_node(trace, warmup, runs)


def per_node(trace: list[dict], warmup: int, runs: int) -> dict[str, Any]:
    """Node events of the last ``runs`` model runs, per node (:func:`records.typical_total`)."""
    run_starts = sorted(e["ts"] for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run")
    if len(run_starts) < warmup + runs:
        return {"ops": [], "invoke_ms": None, "note": "ONNX Runtime recorded fewer runs than were made"}
    first = run_starts[warmup]
    durations: dict[str, list[float]] = defaultdict(list)
    info: dict[str, dict] = {}
    for e in trace:
        if e.get("cat") != "Node" or e["ts"] < first or not e["name"].endswith("_kernel_time"):
            continue
        name = e["name"][: -len("_kernel_time")]
        durations[name].append(e["dur"])
        info.setdefault(name, {"op": e["args"].get("op_name", "?"), "kernel": e["args"].get("provider", "?"),
                               "ts": e["ts"]})
    totals = {n: typical_total(d, runs) for n, d in durations.items()}
    runs_us = [e["dur"] for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"
               and e["ts"] >= first]
    ops = [{"name": n, "op": info[n]["op"], "kernel": info[n]["kernel"], "ms": totals[n] / 1e3}
           for n in sorted(totals, key=lambda n: info[n]["ts"])]
    return {"ops": ops, "invoke_ms": float(np.mean(runs_us)) / 1e3 if runs_us else None}


_FUSED_INTO_PRODUCER = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Add", "Mul"}


def origin(model) -> Callable[[str], tuple[str | None, str | None]]:
    """A function from a profiled node's name to (the exported node it was made from, its layer scope).

    ONNX Runtime names what it makes after what it came from: a fused node keeps the first node's
    name (``n18_MatMul/MatMulAddFusion``), an NCHWc node is named after its output tensor
    (``t17_nchwc``, t17 written by the Relu fused into a Conv), a quantized node adds a suffix
    (``n1_Conv_quant``). Layout reorders (``ReorderOutput``) came from no node."""
    from edgekit.exporters.onnx import LAYERS_KEY

    meta = {p.key: p.value for p in model.metadata_props}
    layers = json.loads(meta[LAYERS_KEY]) if LAYERS_KEY in meta else {}
    producer = {o: n.name for n in model.graph.node for o in n.output}
    kinds = {n.name: (n.op_type, n.input[0] if n.input else "") for n in model.graph.node}
    names = {n.name for n in model.graph.node}

    def find(name: str) -> tuple[str | None, str | None]:
        base = name.split("/")[0]
        stripped = re.sub(r"(_nchwc|_token_\d+)+$", "", base)
        node = next((c for c in (base, stripped) if c in names), None)
        if node is None and stripped in producer:  # named after a tensor: the node that writes it
            node = producer[stripped]
            for _ in range(3):  # a Conv+Relu is named after the Relu's output: the Conv is the node it came from
                if kinds[node][0] not in _FUSED_INTO_PRODUCER or kinds[node][1] not in producer:
                    break
                node = producer[kinds[node][1]]
        if node is None and (m := re.match(r"^(n\d+_[A-Za-z0-9]+)", base)) and m.group(1) in names:
            node = m.group(1)
        # a quantized node keeps its float node's name first (n3_Conv_quant, a QGemm's n19_MatMul/..._quant)
        exported = re.match(r"^(n\d+_[A-Za-z0-9]+)", node or base)
        layer = layers.get(node) or (layers.get(exported.group(1)) if exported else None)
        return node, layer or (scope_of(node) if node else None)

    return find


def attach_origins(prof: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Give each profiled node its exported node (``graph_node``), layer scope and MACs (:func:`origin`)."""
    import onnx

    from edgekit.macs import onnx_node_macs

    model = onnx.load(str(path), load_external_data=False)
    macs = onnx_node_macs(model)
    find = origin(model)
    seen: set = set()
    for op in prof["ops"]:
        node, scope = find(op["name"])
        op["scope"], op["node_type"], op["graph_node"] = scope, op["op"], node
        # a node split in several (a fused node and its reorders): its MACs once
        op["macs"] = macs.get(node, 0) if node and node not in seen else 0
        if node:
            seen.add(node)
    return prof


def trace_from_lines(lines: list[str]) -> list[dict]:
    """The trace events ONNX Runtime's WebAssembly build prints to the console, one JSON object a line."""
    events = []
    for line in lines:
        for part in line.splitlines():
            part = part.strip().rstrip(",")
            if part.startswith("{") and part.endswith("}"):
                try:
                    events.append(json.loads(part))
                except json.JSONDecodeError:
                    continue
    return events
