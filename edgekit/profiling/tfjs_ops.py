"""Per-kernel times from TF.js's ``tf.profile``, each kernel matched to the graph node it ran for.

The JS runner (``js/src/engines/tfjs.mjs``) profiles ``runs`` inferences and returns the kernels
of the first run in order (wrapper entries such as ``fusedConv2d__op``, which hold the kernel
inside them, left out, so nothing is counted twice) and every run's kernel times. A graph
model runs its nodes in the order of ``model.json``; a kernel is matched to the next node whose
op it implements (``_FusedConv2D`` runs as ``FusedConv2D``, ``MatMul`` as ``BatchMatMul``), and
a node that runs no kernel (``Shape``) is passed over, and a kernel no next node implements (a
``Reshape`` or ``Cast`` an op runs inside itself) belongs to the node before it. The node's name carries its
layer scope (``StatefulPartitionedCall/cnn_1/conv2d_1/Relu``); its MACs come from the kernel's
output shape and the node's weight shapes in the weights manifest. ``tf.profile`` times kernels only:
the graph executor's own cost per node, measured in the same engine on chains of 40 and 80 trivial
nodes (:func:`executor_cost_us`), is added to each node's time (``kernel_ms`` keeps the kernel's).

Example:
    >>> _kind("_FusedConv2D") == _kind("FusedConv2D"), _kind("MatMul") == _kind("BatchMatMul")
    (True, True)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from edgekit.layer_names import scope_of
from edgekit.profiling.records import typical_total

_SAME = {"batchmatmul": "matmul", "fusedbatchmatmul": "fusedmatmul", "addv2": "add", "realdiv": "div", "concatv2": "concat",
         "fuseddepthwiseconv2dnative": "fuseddepthwiseconv2d", "depthwiseconv2dnative": "depthwiseconv2d"}
_NO_NODE = {"Const", "Placeholder", "NoOp"}
_INNER = {"reshape", "cast", "identity", "expanddims", "squeeze"}


def _kind(op: str) -> str:
    k = op.lower().replace("_", "")
    return _SAME.get(k, k)


def per_kernel(reply: dict[str, Any], model_json: Path, runs: int) -> dict[str, Any]:
    """The runner's profile reply as operator records (``op``, ``kernel``, ``name``, ``scope``, ``macs``, ``ms``)."""
    kernels, times = reply["kernels"], reply["times_ms"]
    runs = len(times) or runs  # a run that failed: the kernels of that one run, up to the failure
    spec = json.loads(Path(model_json).read_text())
    nodes = [n for n in spec["modelTopology"].get("node", []) if n.get("op") not in _NO_NODE]
    weights = {w["name"]: w["shape"] for group in spec.get("weightsManifest", []) for w in group["weights"]}
    ops, k_node, node = [], 0, None
    for position, kernel in enumerate(kernels):
        kind = _kind(kernel["name"])
        if k_node < len(nodes) and _kind(nodes[k_node]["op"]) == kind:
            node, k_node = nodes[k_node], k_node + 1
        elif not (node is not None and kind in _INNER):  # a reshape or cast inside the node before runs as its own kernel
            for ahead in range(k_node, min(k_node + 8, len(nodes))):
                if _kind(nodes[ahead]["op"]) == kind:
                    node, k_node = nodes[ahead], ahead + 1
                    break
        values = [run[position] for run in times if position < len(run)]
        ops.append({"op": kernel["name"], "kernel": f"tfjs {reply.get('backend', '?')}",
                    "name": node["name"] if node else "", "scope": scope_of(node["name"]) if node else None,
                    "node_type": node["op"] if node else None,
                    "macs": _macs(node, kernel.get("outputShapes") or [], weights)
                    if node and _kind(node["op"]) == kind else 0,  # the node's own kernel, not one inside it
                    "ms": typical_total(values, runs)})
    result: dict[str, Any] = {"ops": ops, "invoke_ms": None}
    cost_us = executor_cost_us(reply.get("chains"))
    if cost_us is not None and ops:  # what the graph executor spends on each node, beside its kernel
        for op in ops:
            op["kernel_ms"] = op["ms"]
            op["ms"] = op["ms"] + cost_us / 1e3
        result["executor_cost_us"] = round(cost_us, 3)
    if reply.get("failed"):
        last = ops[-1] if ops else None
        where = f" after {len(ops)} kernels, the last {last['op']} ({last['name'] or 'no node'})" if last else " before any kernel"
        result["failed"] = f"{reply['failed']} (profiled up to the failure{where})"
    return result


def chain_topologies() -> dict[str, dict]:
    """Two TF.js graph models of 40 and 80 Relu nodes on a ``[1, 16]`` input (no weights): what the JS
    engine times the graph executor's own cost per node on (:func:`executor_cost_us`)."""
    shape = {"dim": [{"size": "1"}, {"size": "16"}]}
    out = {}
    for n in (40, 80):
        nodes = [{"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": shape}}}]
        nodes += [{"name": f"r{i}", "op": "Relu", "input": [f"r{i - 1}" if i else "x"], "attr": {"T": {"type": "DT_FLOAT"}}}
                  for i in range(n)]
        nodes.append({"name": "Identity", "op": "Identity", "input": [f"r{n - 1}"], "attr": {"T": {"type": "DT_FLOAT"}}})
        out[str(n)] = {"modelTopology": {"node": nodes, "library": {}, "versions": {"producer": 1}},
                       "signature": {"inputs": {"x": {"name": "x:0", "dtype": "DT_FLOAT", "tensorShape": shape}},
                                     "outputs": {"output": {"name": "Identity:0", "dtype": "DT_FLOAT", "tensorShape": shape}}}}
    return out


def executor_cost_us(chains: dict | None) -> float | None:
    """The graph executor's cost per node (us), beside what the node's kernel takes: between two chains of
    40 and 80 trivial nodes, the plain time added by 40 nodes less their kernels' time, over 40.
    ``tf.profile`` times kernels only; the executor's walk of the graph between them (about 1.8 us a node
    in Node's wasm backend here) is the rest of a run, and each node's share of it is added to its time.

    >>> round(executor_cost_us({"plain_ms": {"40": 0.114, "80": 0.221}, "kernel_ms": {"40": 0.039, "80": 0.075}}), 3)
    1.775
    """
    if not chains:
        return None
    plain, kernels = chains["plain_ms"], chains["kernel_ms"]
    cost = ((plain["80"] - plain["40"]) - (kernels["80"] - kernels["40"])) / 40 * 1e3
    return max(cost, 0.0)


def _macs(node: dict, output_shapes: list, weights: dict[str, list[int]]) -> int:
    op = node["op"]
    out = output_shapes[0] if output_shapes else None
    inputs = [i.split(":")[0] for i in node.get("input", [])]
    w = weights.get(inputs[1]) if len(inputs) > 1 else None
    if not out or not w:
        return 0
    per_sample = math.prod(out) // max(out[0], 1)
    if op in ("Conv2D", "_FusedConv2D"):  # filter [kh, kw, in, out]
        return per_sample * w[0] * w[1] * w[2]
    if op in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):  # filter [kh, kw, in, multiplier]
        return per_sample * w[0] * w[1]
    if op in ("MatMul", "_FusedMatMul", "BatchMatMul", "BatchMatMulV2"):
        attrs = node.get("attr", {})
        transpose_b = attrs.get("transpose_b", {}).get("b") or attrs.get("adj_y", {}).get("b")
        return per_sample * (w[-1] if transpose_b else w[-2])
    return 0
