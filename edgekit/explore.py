"""``edgekit inspect ARTIFACT --explore``: per-node overlays for Model Explorer.

Model Explorer (``pip install ai-edge-model-explorer model-explorer-onnx``) draws a .tflite or
.onnx graph and colours its nodes by any value given in a *node data* file
(``model-explorer FILE --node_data_paths A.json,B.json``). This writes those files, keyed as its
adapters key the graph (TFLite: the subgraph ``main``, nodes by operator index; ONNX: the graph's
name, nodes by node name):

- ``time_us.json``: each node's time per inference in microseconds, from a per-operator profile made now
  (edgekit.profiling; fused and delegated operators added up on the node they came from);
- ``int8_error.json`` (an int8 .tflite exported by edgekit): each node's int8 error, rmse in units
  of its quantization step, from ``inspect --quant`` on the source model (LiteRT's debugger).

Example:
    >>> files = write_overlays("runs/demo/export/model_int8.tflite", "explore")   # doctest: +SKIP
    >>> sorted(files)                                                            # doctest: +SKIP
    ['int8_error', 'time_us']
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from edgekit.errors import UsageError
from edgekit.files import atomic_write_text
from edgekit.runtimes import format_of_path, runtime_for_format

# white to red, as Model Explorer's gradients are given (stop 0 = the smallest value)
_GRADIENT = [{"stop": 0, "bgColor": "#ffffff"}, {"stop": 0.5, "bgColor": "#fdae6b"}, {"stop": 1, "bgColor": "#d62728"}]


def graph_id(artifact: str | Path) -> str:
    """The id Model Explorer's adapter gives the artifact's main graph."""
    if format_of_path(artifact) == "onnx":
        import onnx

        return onnx.load(str(artifact), load_external_data=False).graph.name
    return "main"


def node_data(graph: str, name: str, values: dict[str, float]) -> dict[str, Any]:
    """One Model Explorer node-data file's content: ``values`` by node id, coloured white to red."""
    return {graph: {"name": name, "results": {k: {"value": round(v, 6)} for k, v in values.items()},
                    "gradient": _GRADIENT}}


def write_overlays(artifact: str | Path, out: str | Path, *, runs: int = 200, threads: int = 1,
                   calib: str | None = None, timeout_s: float = 300.0, log=lambda s: None) -> dict[str, Path]:
    """Write the overlays for ``artifact`` into ``out``; returns them by name."""
    from edgekit.bench.inputs import eval_inputs
    from edgekit.bench.targets import resolve_targets
    from edgekit.profiling import profile_isolated

    artifact = Path(artifact)
    fmt = format_of_path(artifact)
    if fmt not in ("tflite", "onnx") or not artifact.is_file():
        raise UsageError(f"--explore draws an exported .tflite or .onnx file's graph; {artifact} is not one",
                         hint="pass a file from `edgekit export`, e.g. runs/demo/export/model_int8.tflite")
    target = resolve_targets([str(artifact)])[0]
    x, _, _ = eval_inputs(target, None, 1, {}, timeout_s)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    graph = graph_id(artifact)
    files: dict[str, Path] = {}
    log(f"profiling {artifact.name} on {runtime_for_format(fmt)}")
    prof = profile_isolated(runtime_for_format(fmt), artifact, x, threads=threads, runs=runs, timeout_s=timeout_s)
    if prof["status"] != "ok":
        raise UsageError(f"{artifact.name} could not be profiled: {prof['error']}")
    times: dict[str, float] = defaultdict(float)
    for op in prof["ops"]:
        if op.get("graph_node") is not None:
            times[op["graph_node"]] += op["ms"] * 1e3
    files["time_us"] = out / "time_us.json"
    atomic_write_text(files["time_us"], json.dumps(node_data(graph, "time per inference (us)", times), indent=1))
    if fmt == "tflite" and target.quant == "int8" and target.source:
        log(f"measuring each layer's int8 error on {target.source}")
        errors = _tflite_int8_errors(artifact, target.source, calib)
        if errors:
            files["int8_error"] = out / "int8_error.json"
            atomic_write_text(files["int8_error"], json.dumps(node_data(graph, "int8 error (rmse / scale)", errors), indent=1))
    return files


def _tflite_int8_errors(artifact: Path, source: str, calib: str | None) -> dict[str, float]:
    """Each node's rmse/scale (edgekit.quant_report on the source model), by the operator index of
    the node in ``artifact`` that writes the same tensor."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.quant_report import quant_report

    report = quant_report(source, calib, fmt="tflite")
    it = Interpreter(model_path=str(artifact))
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    node_of = {names[o]: str(op["index"]) for op in it._get_ops_details() for o in op["outputs"] if o in names}
    return {node_of[layer["layer"]]: layer["rmse_scale"] for layer in report["layers"] if layer["layer"] in node_of}
