"""``edgekit export MODEL --format tflite --quant fp32,fp16,dynamic,int8 [--calib DATA] [--out DIR]``."""

from __future__ import annotations

from pathlib import Path

import typer

from edgekit import status

HELP = """Export MODEL to edge formats, run every artifact against MODEL, write manifest.json.

MODEL is a .keras file, a Keras 2 .h5 file, a TF SavedModel folder, or a run folder from
`edgekit train`. Formats: tflite (LiteRT), onnx (ONNX Runtime), tfjs (TF.js graph model).
int8 is full-integer quantization calibrated on --calib (default: the run's training data);
TF.js fp16 and uint8 quantize weights only (compute stays float32).
Exit 0 when every artifact exported and matched its source, 1 when one did not, 2 on bad input.

Example: edgekit export runs/demo --format all --quant all --out runs/demo/export
"""


def export(
    model: Path = typer.Argument(..., help="Model file or folder."),
    format: str = typer.Option("tflite", "--format", "-f", help="Comma list of formats, or all."),
    quant: str = typer.Option("fp32", "--quant", "-q", help="Comma list: fp32, fp16, dynamic, int8 (TFLite, ONNX), int16x8 (TFLite, ONNX, on request), mixed (TFLite, ONNX, on request), uint8 (TF.js); or all."),
    calib: str = typer.Option(None, "--calib", help="Calibration DATA for int8 (default: the run's data)."),
    calib_samples: int = typer.Option(200, "--calib-samples", help="Calibration samples for int8."),
    int8_io: str = typer.Option("int8", "--int8-io", help="TFLite int8 input/output type: int8, uint8 or float."),
    opset: int = typer.Option(None, "--opset", help="ONNX opset (default: newest tf2onnx and ONNX Runtime share)."),
    batch: int = typer.Option(None, "--batch", help="ONNX: fix the batch size (default: dynamic)."),
    fp16_io: str = typer.Option("float16", "--fp16-io", help="ONNX fp16 input/output type: float16 or float32."),
    per_tensor: bool = typer.Option(False, "--per-tensor", help="int8 (and TFLite dynamic): per-tensor weight scales, smaller files (default per-channel, more accurate)."),
    unroll: bool = typer.Option(False, "--unroll", help="TFLite: unroll recurrent layers instead of the fused LSTM op (often faster on CPU, larger file)."),
    calib_method: str = typer.Option("minmax", "--calib-method", help="ONNX int8 calibration: minmax, entropy or percentile."),
    nms: str = typer.Option("auto", "--nms", help="A detector: on (decoding and NMS inside the artifact: boxes, scores, classes, count; a detector's default) or off (boxes and scores; the app runs NMS)."),
    max_detections: int = typer.Option(None, "--max-detections", help="A detector's NMS: detections kept per image (default 20)."),
    iou: float = typer.Option(None, "--iou", help="A detector's NMS: same-class boxes overlapping more than this IoU are one detection (default 0.5)."),
    score: float = typer.Option(None, "--score", help="A detector's NMS: the lowest score kept (default 0.1; an app may show fewer)."),
    max_drop: float = typer.Option(None, "--max-drop", help="int8 (TFLite, ONNX): points of accuracy (of agreement without labels) int8 may lose; beyond it, the layers to blame are found and kept in float."),
    int8_layout: str = typer.Option("auto", "--int8-layout", help="ONNX int8: auto (the fastest layout that keeps parity, measured here), qdq-u8s8, qdq-s8s8, qop-u8s8 or qop-s8s8."),
    input_shape: str = typer.Option(None, "--input-shape", help="Fix unknown dims (not batch): D1,D2 or NAME=D1,D2;NAME=D1. TFLite/TF.js and parity use it; ONNX stays dynamic."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: MODEL_export beside MODEL)."),
    parity_samples: int = typer.Option(200, "--parity-samples", help="Held-out inputs each artifact is checked on."),
    min_agreement: float = typer.Option(None, "--min-agreement", help="Override the top-1 agreement an artifact must reach."),
    unsafe: bool = typer.Option(False, "--unsafe", help="Allow Python code (Lambda layers) in .keras files you trust."),
    json_out: Path = typer.Option(None, "--json", help="Also write the manifest to this file."),
) -> int:
    from edgekit.errors import parse_choices
    from edgekit.exporters import all_quant_modes, format_names

    formats = parse_choices(format, format_names(), what="format", flag="--format")
    quants = parse_choices(quant, all_quant_modes(formats), what="quant mode", flag="--quant",
                           all_means=all_quant_modes(formats, on_request=False))
    out = out or model.parent / f"{model.name.removesuffix(model.suffix) or model.name}_export"

    from edgekit.cli.output import console, progress
    from edgekit.exporters.base import ExportOptions
    from edgekit.exporters.supervised import export_supervised
    from edgekit.files import atomic_write_json

    con = console()
    # In a child process: a converter that crashes costs one artifact, not the whole command. A terminal
    # shows a progress bar (artifacts done of all, which one now, time left); a log, a line per artifact.
    with progress("export", log_steps=False) as report:
        manifest = export_supervised(
            model, formats, quants, out, calib=calib,
            options=ExportOptions(calib_samples=calib_samples, int8_io=int8_io, opset=opset, batch=batch,
                                  fp16_io=fp16_io, per_tensor=per_tensor, calib_method=calib_method, int8_layout=int8_layout,
                                  max_drop=max_drop, nms=nms, max_detections=max_detections, iou=iou, score=score,
                                  unroll=unroll, input_shape=input_shape),
            parity_samples=parity_samples, min_agreement=min_agreement, safe_mode=not unsafe,
            log=lambda line: report.echo(line, style=None if "success" in line else "bold red"), progress=report,
        )
    if json_out:
        atomic_write_json(json_out, manifest.to_dict())
    names = {(a.format, a.quant) for a in manifest.artifacts}
    failed = [a for a in manifest.artifacts if not a.ok and (a.format, a.quant) in names and a.format in formats and a.quant in quants]
    if failed:
        con.print(f"{len(failed)} of {len(manifest.artifacts)} artifacts failed; see {out / 'manifest.json'}", style="bold red")
        lossy = sorted({a.format for a in failed if a.status == status.VALIDATION_FAILED and a.quant == "int8"
                        and a.format in ("tflite", "onnx") and max_drop is None})
        if lossy:
            con.print(f"hint: int8 loses too much in {' and '.join(lossy)}: `--max-drop 1` keeps the layers to blame in "
                      f"float (`edgekit inspect {model} --quant --calib DATA` ranks them); `--quant mixed` keeps whole "
                      "operator types in float, the fastest within the budget", highlight=False)
        return 1
    con.print(f"manifest: {out / 'manifest.json'}")
    return 0
