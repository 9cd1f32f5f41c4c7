"""``edgekit inspect ARTIFACT --explore``: per-node overlays for Model Explorer.

Model Explorer (``pip install ai-edge-model-explorer model-explorer-onnx``) draws a .tflite or
.onnx graph and colours its nodes by any value given in a *node data* file
(``model-explorer FILE --node_data_paths A.json,B.json``). This writes those files, keyed as its
adapters key the graph (TFLite: the subgraph ``main``, nodes by operator index; ONNX: the graph's
name, nodes by node name):

- ``time_us.json``: each node's time per inference in microseconds, from a per-operator profile made now
  (edgekit.profiling; fused and delegated operators added up on the node they came from);
- ``int8_error.json`` (an int8 file exported by edgekit): each node's int8 error from ``inspect --quant``
  on the source model. TFLite: rmse in units of its quantization step (LiteRT's debugger; red is
  the most error). ONNX: the node's own SQNR in dB (ONNX Runtime's ``qdq_loss_debug`` on a QDQ
  u8s8 quantization of the same float graph, whichever layout the file has; red is the lowest,
  the most error; an exact node's 200 dB shown as 60 so that the gradient spreads over the rest).

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
_RED_LOWEST = [{"stop": 1 - g["stop"], "bgColor": g["bgColor"]} for g in reversed(_GRADIENT)]  # for SQNR: low is bad
SQNR_SHOWN_MAX_DB = 60.0  # an exact node (200 dB) would squeeze every other node into one colour


def graph_id(artifact: str | Path) -> str:
    """The id Model Explorer's adapter gives the artifact's main graph."""
    if format_of_path(artifact) == "onnx":
        import onnx

        return onnx.load(str(artifact), load_external_data=False).graph.name
    return "main"


def node_data(graph: str, name: str, values: dict[str, float], *, red_is_lowest: bool = False) -> dict[str, Any]:
    """One Model Explorer node-data file's content: ``values`` by node id, coloured white to red
    (red the highest value, or with ``red_is_lowest`` the lowest)."""
    return {graph: {"name": name, "results": {k: {"value": round(v, 6)} for k, v in values.items()},
                    "gradient": _RED_LOWEST if red_is_lowest else _GRADIENT}}


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
    if target.quant == "int8" and target.source:
        log(f"measuring each layer's int8 error on {target.source}")
        if fmt == "tflite":
            content = node_data(graph, "int8 error (rmse / scale)", _tflite_int8_errors(artifact, target.source, calib))
        else:
            content = node_data(graph, f"int8 SQNR (dB, up to {SQNR_SHOWN_MAX_DB:g}; red is the most error)",
                                _onnx_int8_errors(artifact, target.source, calib), red_is_lowest=True)
        if content[graph]["results"]:
            files["int8_error"] = out / "int8_error.json"
            atomic_write_text(files["int8_error"], json.dumps(content, indent=1))
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


def _onnx_int8_errors(artifact: Path, source: str, calib: str | None) -> dict[str, float]:
    """Each node's own SQNR in dB (edgekit.quant_report on the source model), by the name of the node
    in ``artifact`` made from it: the same name in a QDQ file, with ``_quant`` added in a QOperator
    one (``n1_Conv_quant``). A float node the quantizer folded away (the Relu after a Conv) counts
    with the node before it: the worse of the two."""
    import onnx

    from edgekit.quant_report import quant_report

    report = quant_report(source, calib, fmt="onnx")
    names = {n.name.removesuffix("_quant"): n.name for n in onnx.load(str(artifact), load_external_data=False).graph.node}
    errors: dict[str, float] = {}
    for layer in report["layers"]:
        if layer["op"] in ("Shape", "Size"):  # they read a tensor's shape, not its values
            continue
        node = names.get(layer["layer"]) or names.get(layer.get("after") or "")
        if node is not None:
            errors[node] = min(errors.get(node, SQNR_SHOWN_MAX_DB), layer["sqnr_db"])
    return errors
