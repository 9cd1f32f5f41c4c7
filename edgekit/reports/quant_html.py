"""The HTML page of ``edgekit inspect MODEL --quant --html FILE``: the worst layers as a bar chart
(flagged ones in red, the flag threshold as a dashed line) and every layer in a table.

Example:
    >>> write_quant_html(quant_report("runs/demo", None), "quant.html")   # doctest: +SKIP
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from edgekit.files import atomic_write_text
from edgekit.reports.html_parts import figure_png, html_img, html_table

SHOWN = 30  # layers in the chart: the worst ones
SQNR_AXIS_MAX_DB = 80.0  # beyond it a layer is as good as exact; its bar runs off the chart


def metric(report: dict[str, Any]) -> tuple[str, str, float, bool]:
    """``(key, label, threshold, higher_is_worse)`` of the report's error metric."""
    t = report["threshold"]
    if "rmse_scale_above" in t:
        return "rmse_scale", "RMSE / quantization step (higher is worse)", t["rmse_scale_above"], True
    if report["format"] == "tfjs":
        return "sqnr_db", "error against the typical weight, dB (lower is worse)", t["sqnr_db_below"], False
    return "sqnr_db", "SQNR of each output, dB (lower is worse)", t["sqnr_db_below"], False


def _chart(report: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label, threshold, _ = metric(report)
    layers = report["layers"][:SHOWN]  # already worst first
    if not layers:
        return None
    flagged = {layer["layer"] for layer in report["flagged"]}
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(layers) + 1.2))
    names = [_short(layer["layer"]) for layer in layers][::-1]
    values = [float(layer[key]) for layer in layers][::-1]
    colors = ["#d62728" if layer["layer"] in flagged else "#1f77b4" for layer in layers][::-1]
    ax.barh(range(len(layers)), values, color=colors)
    if key == "sqnr_db" and any(layer.get("sqnr_cumulative_db") is not None for layer in layers):
        cumulative = [layer.get("sqnr_cumulative_db") for layer in layers][::-1]
        ax.scatter([c for c in cumulative if c is not None], [i for i, c in enumerate(cumulative) if c is not None],
                   color="black", marker="|", s=120, label="cumulative (from the input)", zorder=3)
        ax.legend(loc="lower right", fontsize=8)
    ax.axvline(threshold, color="#d62728", linestyle="--", linewidth=1)
    if key == "sqnr_db":  # an almost exact layer (300+ dB) would squeeze every other bar to the left
        ax.set_xlim(0, min(max(values) * 1.05, SQNR_AXIS_MAX_DB))
    ax.set_yticks(range(len(layers)), names, fontsize=7)
    ax.set_xlabel(f"{label}; dashed: flag threshold {threshold:g}")
    n = len(report["layers"])
    ax.set_title(f"{report['format']} {report['quant']}: the {len(layers)} worst of {n} "
                 f"{'weight tensors' if report['format'] == 'tfjs' else 'layers'}", fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def _short(name: str, width: int = 60) -> str:
    name = name.removeprefix("StatefulPartitionedCall/")
    return name if len(name) <= width else "..." + name[-(width - 3):]


def to_quant_html(report: dict[str, Any]) -> str:
    key, label, threshold, worse_high = metric(report)
    flagged = {layer["layer"] for layer in report["flagged"]}
    columns = ["#", "operator", "layer", *(["scale"] if "scale" in (report["layers"] or [{}])[0] else []), label, ""]
    cells = []
    for i, layer in enumerate(report["layers"], 1):
        value = f"{layer[key]:.3f}" if key == "rmse_scale" else f"{layer[key]:.1f}"
        if layer.get("sqnr_cumulative_db") is not None:
            value += f" / {layer['sqnr_cumulative_db']:.1f} cumulative"
        cells.append([str(i), layer["op"], layer["layer"], *([f"{layer['scale']:.4g}"] if "scale" in columns else []),
                      value, "flagged" if layer["layer"] in flagged else ""])
    n = len(report["flagged"])
    unit = "" if worse_high else " dB"
    verdict = (f"{n} of {len(report['layers'])} flagged ({'above' if worse_high else 'below'} {threshold:g}{unit})"
               + ("" if not n else ": `edgekit export MODEL --quant int8 --max-drop P` keeps the ones to blame in float"
                  if report["format"] != "tfjs" else ": most of their weights round to zero in uint8; the uint8 "
                  "export's parity check says whether that matters, fp16 keeps them"))
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>edgekit quant report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0;font-size:13px}",
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}td:nth-child(2),td:nth-child(3){text-align:left}",
        ".note{color:#555}.chart{display:block;margin:1em 0;max-width:100%}",
        "</style></head><body>",
        f"<h1>{html.escape(report['quant'])} error per layer: {html.escape(str(report['model']))}</h1>",
        f"<p>format {html.escape(report['format'])}; calibration data: {html.escape(str(report['data']))}</p>",
        f"<p><b>{html.escape(verdict)}</b></p>",
        html_img(_chart(report), "error per layer") if report["layers"] else "<p class=note>No quantized layer.</p>",
        html_table(columns, cells),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_quant_html(report: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(Path(path), to_quant_html(report))
