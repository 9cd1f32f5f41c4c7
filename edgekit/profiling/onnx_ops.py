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


def profile_onnx(path: str | Path | bytes, feeds: dict[str, np.ndarray], *, threads: int | None, runs: int,
                 warmup: int = 5, take_off_cost: bool = True) -> dict[str, Any]:
    """Each node's time (ms) per inference over ``runs`` inferences of one sample, in execution order.

    ``feeds``: by the graph's own input names. Returns ``ops`` (``name``, ``op``, ``kernel``, ``ms``,
    ``raw_ms``), ``invoke_ms`` (ONNX Runtime's ``model_run`` event: the whole run as it timed it) and
    ``profiler_cost_us`` (:func:`profiler_cost_us`, taken off every node's time: ``take_off_cost``)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-profile-") as tmp:
        session = _session(path, threads, Path(tmp))
        for _ in range(warmup + runs):
            session.run(None, feeds)
        trace = json.loads(Path(session.end_profiling()).read_text())
    prof = per_node(trace, warmup, runs)
    return compensate(prof, profiler_cost_us(threads)) if take_off_cost and prof["ops"] else prof


def _session(model: str | Path | bytes, threads: int | None, profile_dir: Path | None):
    """An ONNX Runtime session made as edgekit's ONNXSession makes it, profiling into ``profile_dir``."""
    import onnxruntime as ort

    from edgekit.runtimes.onnxruntime import session_options

    opts = session_options(threads, str(profile_dir / "ort") if profile_dir is not None else None)
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def _chain(n: int) -> bytes:
    """An ONNX graph of ``n`` trivial nodes (Abs and Neg of 16 floats, alternating)."""
    from onnx import TensorProto, helper

    nodes, prev = [], "x"
    for i in range(n):
        nodes.append(helper.make_node("Abs" if i % 2 == 0 else "Neg", [prev], [f"c{i}"], name=f"c{i}"))
        prev = f"c{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8  # what every ONNX Runtime here reads (ONNX Runtime Web's reads up to 13)
    return model.SerializeToString()


def profiler_cost_us(threads: int | None, *, runs: int = 300) -> float:
    """What ONNX Runtime's profiler adds to each node's event, measured here: on chains of 40 and 80
    trivial nodes, a node's profiled time minus what a node adds to a plain run (the slope between
    the two chains' p50s, so the caller's own cost per run cancels). 1.8-1.9 us on the host these
    docs were measured on, where the node itself takes 0.3 us."""
    import time

    x = {"x": np.ones((1, 16), np.float32)}
    with tempfile.TemporaryDirectory(prefix="edgekit-profile-cost-") as tmp:
        profiled = _session(_chain(40), threads, Path(tmp))
        for _ in range(5 + runs):
            profiled.run(None, x)
        events = per_node(json.loads(Path(profiled.end_profiling()).read_text()), 5, runs)["ops"]
    plain = {n: _session(_chain(n), threads, None) for n in (40, 80)}
    p50 = {n: [] for n in plain}
    for _ in range(5):  # interleaved rounds, each the median of its runs; the fastest round of each
        for n, s in plain.items():
            for _ in range(20):
                s.run(None, x)
            clock = []
            for _ in range(200):
                t0 = time.perf_counter_ns()
                s.run(None, x)
                clock.append(time.perf_counter_ns() - t0)
            p50[n].append(float(np.median(clock)) / 1e3)
    return cost_per_event_us(events, min(p50[40]), min(p50[80]))


def cost_per_event_us(chain40_events: list[dict], plain40_us: float, plain80_us: float) -> float:
    """The profiler's cost per node event: a trivial node's profiled time (the median over the 40-node
    chain's nodes) less what a node adds to a plain run ((80-node p50 - 40-node p50) / 40)."""
    per_event_us = float(np.median([o["ms"] for o in chain40_events])) * 1e3
    per_node_us = (plain80_us - plain40_us) / 40
    return max(per_event_us - max(per_node_us, 0.0), 0.0)


def chain_models_b64() -> dict[str, str]:
    """The 40- and 80-node chains, base64, for a JS engine to measure its profiler's cost on."""
    import base64

    return {str(n): base64.b64encode(_chain(n)).decode() for n in (40, 80)}


def compensate(prof: dict[str, Any], cost_us: float) -> dict[str, Any]:
    """Take the profiler's measured cost per node event off every node's time (``raw_ms`` kept)."""
    for op in prof["ops"]:
        op["raw_ms"] = op["ms"]
        op["ms"] = max(op["ms"] - cost_us / 1e3, 0.0)
    prof["profiler_cost_us"] = round(cost_us, 3)
    return prof


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
