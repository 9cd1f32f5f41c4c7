"""``edgekit inspect MODEL``: what a model is made of, and which formats can take it, before converting."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Show a model's layers, operators, parameters and MACs, and which formats and runtimes can take
each operator, before any conversion.

With --quant, measure which layers quantization hurts, before exporting: int8 per layer (TFLite
through LiteRT's debugger, ONNX through ONNX Runtime's qdq_loss_debug), or TF.js's uint8 weights
per tensor; --html FILE adds a page with the worst layers charted.

With --explore ARTIFACT (an exported .tflite or .onnx file), write Model Explorer node-data files
for its graph: each node's time per inference (profiled now, as `bench --ops` does) and, for an int8
.tflite, each node's int8 error; --open starts Model Explorer on them (pip install
ai-edge-model-explorer model-explorer-onnx).

Examples:
  edgekit inspect runs/demo
  edgekit inspect runs/demo --quant --calib builtin:digits --html quant.html
  edgekit inspect runs/demo --quant --format tfjs
  edgekit inspect runs/demo/export/model_int8.tflite --explore --open
"""


def inspect(
    model: Path = typer.Argument(..., help="A .keras, Keras 2 .h5, SavedModel or run folder."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    unsafe: bool = typer.Option(False, "--unsafe", help="Allow Python code (Lambda layers) in .keras files you trust."),
    quant: bool = typer.Option(False, "--quant", help="Measure each layer's quantization error (int8 activations "
                               "and weights; TF.js: uint8 weights): which layers quantization hurts."),
    calib: str = typer.Option(None, "--calib", help="--quant: calibration DATA (default: the run's own)."),
    format: str = typer.Option("tflite", "--format", "-f", help="--quant: tflite (LiteRT's debugger), onnx "
                               "(ONNX Runtime's qdq_loss_debug) or tfjs (uint8 weights, no data needed)."),
    html_out: Path = typer.Option(None, "--html", help="--quant: also write an HTML page with the worst layers charted."),
    explore: bool = typer.Option(False, "--explore", help="MODEL is an exported .tflite or .onnx: write Model Explorer "
                                 "node-data files (time per node; int8 error per node) for its graph."),
    out: Path = typer.Option(None, "--out", "-o", help="--explore: folder for the node-data files (default: "
                             "ARTIFACT's name + _explore)."),
    open_explorer: bool = typer.Option(False, "--open", help="--explore: start Model Explorer on the graph and the "
                                       "files (needs ai-edge-model-explorer; model-explorer-onnx for .onnx)."),
) -> int:
    from rich.table import Table

    from edgekit.cli.output import console, quiet_tensorflow
    from edgekit.inspect_model import inspect_model

    quiet_tensorflow()
    if explore:
        return _explore(model, out, calib, open_explorer)
    if out is not None or open_explorer:
        from edgekit.errors import UsageError

        raise UsageError("--out and --open go with --explore", hint="edgekit inspect ARTIFACT --explore --open")
    if html_out is not None and not quant:
        from edgekit.errors import UsageError

        raise UsageError("--html is a page of the quantization error per layer", hint="add --quant")
    if quant:
        from edgekit.errors import parse_choices

        fmt = parse_choices(format, ["tflite", "onnx", "tfjs"], what="format", flag="--format")
        if len(fmt) != 1:
            from edgekit.errors import UsageError

            raise UsageError("--quant measures one format at a time", hint="--format tflite, onnx or tfjs")
        if html_out is not None:
            from edgekit.files import check_writable_dir

            check_writable_dir(Path(html_out).parent, flag="--html folder")
        return _quant(model, calib, fmt[0], json_out=json_out, unsafe=unsafe, html_out=html_out)
    info = inspect_model(model, safe_mode=not unsafe)
    if json_out:
        import json

        print(json.dumps(info, indent=2))
        return 0
    con = console(width=120)
    params = f"{info['params']:,}" if info["params"] is not None else "-"
    macs = f"{info['macs']:,}" if info["macs"] else "-"
    if len(info["inputs"]) == 1 and len(info["outputs"]) == 1:
        con.print(f"[bold]{model}[/bold] ({info['kind']}, {info['framework']}): input {info['input_shape']}, "
                  f"output {info['output_shape']}, {params} parameters, {macs} MACs per inference")
    else:
        con.print(f"[bold]{model}[/bold] ({info['kind']}, {info['framework']}): {len(info['inputs'])} inputs, "
                  f"{len(info['outputs'])} outputs, {params} parameters, {macs} MACs per inference")
        t = Table(title="inputs and outputs, by name")
        for c in ("", "name", "shape", "dtype"):
            t.add_column(c)
        for kind in ("inputs", "outputs"):
            for spec in info[kind]:
                t.add_row(kind[:-1], spec["name"], str([None, *spec["shape"]]), spec["dtype"])
        con.print(t)
    if info["layers"]:
        t = Table(title="layers")
        for c in ("layer", "type", "output shape", "params"):
            t.add_column(c, justify="right" if c == "params" else "left")
        for layer in info["layers"]:
            t.add_row(layer["name"], layer["type"], str(layer["output_shape"]), f"{layer['params']:,}")
        con.print(t)
    if info["recurrent"]:
        t = Table(title="recurrent layers: how each format gets them")
        for c in ("layer", "tflite", "tfjs", "onnx"):
            t.add_column(c)
        for name, how in info["recurrent"].items():
            t.add_row(name, how["tflite"], how["tfjs"], how["onnx"])
        con.print(t)
    t = Table(title="operators (frozen TF graph, batch 1)")
    for c in ("operator", "count", "used by", "tflite", "onnx", "tfjs", "tflm"):
        t.add_column(c, justify="right" if c == "count" else "left")
    mark = {True: "yes", False: "[red]NO[/red]"}
    for op, o in info["operators"].items():
        t.add_row(op, str(o["count"]), ", ".join(o["layers"]), mark[o["tflite"]], mark[o["onnx"]], mark[o["tfjs"]],
                  mark[o["tflm"]])
    con.print(t)
    for fmt, blockers in info["blockers"].items():
        runtimes = ", ".join(info["runtimes"][fmt]) if fmt != "tflm" else "a microcontroller's TFLite Micro"
        if blockers:
            con.print(f"{fmt} ({runtimes}): cannot take {', '.join(blockers)}", highlight=False)
        else:
            con.print(f"{fmt} ({runtimes}): every operator is supported", highlight=False)
        for rewrite in info.get("rewrites", {}).get(fmt, []):
            con.print(f"{fmt}: edgekit rewrites {rewrite}", highlight=False)
    con.print("tflite support is edgekit's list of TF ops that become TFLite builtins; `edgekit export` is the proof. "
              "tflm: the builtin has a TFLite Micro kernel; `edgekit bench --runtime tflm` on the int8 file is the proof.",
              highlight=False)
    return 0


def _explore(artifact: Path, out: Path | None, calib: str | None, open_explorer: bool) -> int:
    import shutil
    import subprocess
    import sys

    from edgekit.cli.output import console, status
    from edgekit.errors import UsageError
    from edgekit.explore import write_overlays
    from edgekit.files import check_writable_dir

    out = out or artifact.with_name(artifact.name.replace(".", "_") + "_explore")
    check_writable_dir(out.parent, flag="--out folder")
    explorer = shutil.which("model-explorer")
    if open_explorer and explorer is None:
        raise UsageError("--open starts Model Explorer, which is not installed",
                         hint="pip install ai-edge-model-explorer model-explorer-onnx, or leave out --open")
    with status("profiling per operator") as spinner:
        files = write_overlays(artifact, out, calib=calib,
                               log=(lambda s: spinner.update(s)) if spinner is not None else (lambda s: None))
    con = console()
    for name, path in files.items():
        con.print(f"{name}: {path}", highlight=False)
    command = ["model-explorer", str(artifact), "--node_data_paths", ",".join(str(p) for p in files.values()),
               *(["--extensions", "model_explorer_onnx"] if artifact.suffix == ".onnx" else [])]  # its ONNX adapter
    if not open_explorer:
        con.print("open them in Model Explorer: " + " ".join(command), highlight=False)
        return 0
    con.print("starting Model Explorer (Ctrl-C stops it): " + " ".join(command), highlight=False)
    sys.stdout.flush()
    return subprocess.call([explorer, *command[1:]])


def _quant(model: Path, calib: str | None, fmt: str, *, json_out: bool, unsafe: bool, html_out: Path | None) -> int:
    from edgekit.cli.output import console, status
    from edgekit.quant_report import quant_report

    with status("measuring the quantization error per layer"):
        report = quant_report(model, calib, fmt=fmt, safe_mode=not unsafe)
    if html_out is not None:
        from edgekit.reports.quant_html import write_quant_html

        write_quant_html(report, html_out)
    if json_out:
        import json

        print(json.dumps(report, indent=2))
        return 0
    con = console(width=140)
    if fmt == "tfjs":
        _tfjs_table(report, con)
    else:
        _int8_table(report, fmt, con)
    if html_out is not None:
        con.print(f"html: {html_out}", highlight=False)
    return 0


def _tfjs_table(report: dict, con) -> None:
    from rich.table import Table

    t = Table(title="TF.js uint8 weights: error per tensor, worst first (weights only: compute stays float32)")
    for c in ("#", "weight", "shape", "scale", "dB vs typical weight", "dB vs tensor", "rounded to 0", ""):
        t.add_column(c, justify="left" if c in ("weight", "shape", "") else "right")
    flagged = {w["layer"] for w in report["flagged"]}
    for i, w in enumerate(report["layers"], 1):
        flag = "flagged" if w["layer"] in flagged else ""
        t.add_row(str(i), w["layer"].removeprefix("StatefulPartitionedCall/")[:70], w["op"].removeprefix("weight "),
                  f"{w['scale']:.3g}", f"{w['sqnr_db']:.1f}", f"{w['sqnr_tensor_db']:.1f}", f"{w['zeroed_pct']:g}%", flag,
                  style="red" if flag else None)
    con.print(t)
    n = len(report["flagged"])
    con.print(f"{n} of {len(report['layers'])} weight tensors below {report['threshold']['sqnr_db_below']:g} dB against "
              "their typical weight" + (": outliers stretch their one uint8 range until most weights round to zero; "
                                        "the uint8 export's parity check says whether that matters, `--quant fp16` "
                                        "keeps them" if n else ": uint8 keeps every tensor's typical weight"),
              highlight=False)


def _int8_table(report: dict, fmt: str, con) -> None:
    from rich.table import Table

    onnx = fmt == "onnx"
    metric = "SQNR dB, local / cumulative" if onnx else "rmse/scale"
    t = Table(title=f"int8 error per layer, worst first ({'ONNX' if onnx else 'TFLite'}, calibrated on {report['data']})")
    columns = ("#", "operator", "node", metric, "") if onnx else ("#", "operator", "layer (tensor)", "scale", metric, "")
    for c in columns:
        t.add_column(c, justify="right" if c in ("#", "scale", metric) else "left")
    flagged = {layer["layer"] for layer in report["flagged"]}
    for i, layer in enumerate(report["layers"], 1):
        flag = "flagged" if layer["layer"] in flagged else ""
        value = f"{_db(layer['sqnr_db'])} / {_db(layer['sqnr_cumulative_db'])}" if onnx else f"{layer['rmse_scale']:.3f}"
        cells = [str(i), layer["op"], layer["layer"][:70], *([] if onnx else [f"{layer['scale']:.4g}"]), value, flag]
        t.add_row(*cells, style="red" if flag else None)
    con.print(t)
    n = len(report["flagged"])
    limit = f"below SQNR {report['threshold']['sqnr_db_below']:g} dB" if onnx else \
        f"above rmse/scale {report['threshold']['rmse_scale_above']:g}"
    con.print(f"{n} of {len(report['layers'])} layers {limit}"
              + (": `edgekit export MODEL --quant int8 --max-drop P` keeps the ones to blame in float" if n else ""),
              highlight=False)


def _db(sqnr: float | None) -> str:
    """An SQNR for the table: "exact" where quantization changed nothing (see edgekit.quantize.onnx_repair.EXACT_DB)."""
    from edgekit.quantize.onnx_repair import EXACT_DB

    return "-" if sqnr is None else "exact" if sqnr >= EXACT_DB else f"{sqnr:.1f}"
