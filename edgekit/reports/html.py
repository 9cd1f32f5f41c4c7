"""The HTML bench report: one self-contained file with tables, notes and plots (matplotlib).

Plots: accuracy against latency per format and quant, one chart per profile (measured
latency on the host, estimated latency on the other profiles, labelled so); and latency
histograms of every measured row. Images are embedded as PNG, so the file can be attached
to a CI job or mailed as it is.

Example:
    >>> write_html(report, "runs/demo/bench.html")   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from edgekit.files import atomic_write_text
from edgekit.reports.html_parts import figure_png, html_img, html_table
from edgekit.reports.ops import ops_html
from edgekit.reports.render import (
    MEASURED_COLUMNS,
    caption,
    device_caption,
    device_cells,
    device_columns,
    device_rows,
    host_columns,
    host_rows,
    measured_caption,
    measured_cells,
    measured_rows,
    row_cells,
)
from edgekit.reports.web_engines import WEB_CAPTION, WEB_COLUMNS, web_cells, web_engine_rows, web_verdict

_COLORS = {"tflite": "#1f77b4", "onnx": "#ff7f0e", "tfjs": "#2ca02c", "keras": "#7f7f7f"}
_MARKERS = {"fp32": "o", "fp16": "s", "dynamic": "D", "int8": "^", "uint8": "v"}


def _scatter(rows: list[dict[str, Any]], title: str, estimated: bool) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for r in rows:
        if r["status"] != "ok":
            continue
        lat = (r.get("estimate") or {}).get("latency_ms") if estimated else (r.get("latency_ms") or {}).get("p50")
        quality = r.get("accuracy") if r.get("accuracy") is not None else r.get("agreement")
        if lat is None or quality is None:
            continue
        points.append((lat, quality, r))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    for lat, q, r in points:  # colour: format; marker: quant; one legend entry per point
        ax.scatter(lat, q, s=70, color=_COLORS.get(r["format"], "black"), marker=_MARKERS.get(r["quant"], "o"),
                   edgecolors="black", linewidths=0.5, alpha=0.85,
                   label=f"{r['format']} {r['quant']} ({r['runtime']})" + (" reference" if r.get("is_reference") else ""))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    metric = "accuracy" if any(r.get("accuracy") is not None for _, _, r in points) else "top-1 agreement with the source"
    ax.set_xlabel(("estimated device latency p50, ms (estimate)" if estimated else "measured latency p50, ms") + " (log)")
    ax.set_xscale("log")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return figure_png(fig)


def _histograms(rows: list[dict[str, Any]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["status"] == "ok" and (r.get("latency_histogram") or {}).get("counts")]
    if not rows:
        return None
    cols = 3
    n = len(rows)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(10, 2.2 * ((n + cols - 1) // cols)), squeeze=False)
    for ax, r in zip(axes.flat, rows, strict=False):
        h = r["latency_histogram"]
        edges, counts = h["edges_ms"], h["counts"]
        ax.bar(edges[:-1], counts, width=[b - a for a, b in zip(edges[:-1], edges[1:], strict=False)], align="edge",
               color=_COLORS.get(r["format"], "gray"))
        p50 = (r.get("latency_ms") or {}).get("p50")
        if p50:
            ax.axvline(p50, color="black", linewidth=1)
        ax.set_title(f"{r['name']} ({r['runtime']}, {r.get('threads') or 1}t)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("ms", fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("latency histograms (line: p50)", fontsize=10)
    fig.tight_layout()
    return figure_png(fig)


def _training_histories(report: dict[str, Any]) -> list[str]:
    """The training history plot of each run folder the report's artifacts came from, when it is on disk."""
    from edgekit.trainer.history import HISTORY_PNG

    parts = []
    for source in dict.fromkeys(r.get("source") for r in report.get("rows", []) if r.get("source")):
        png = Path(source) / HISTORY_PNG
        if png.is_file():
            parts += [f"<h2>Training history: {html.escape(str(source))}</h2>",
                      html_img(base64.b64encode(png.read_bytes()).decode(), f"training history of {source}")]
    return parts


def to_html(report: dict[str, Any]) -> str:
    m = report.get("machine", {})
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>edgekit bench report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0;font-size:13px}",
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}",
        ".note{color:#555}.chart{display:block;margin:1em 0;max-width:100%}caption{caption-side:bottom;text-align:left}",
        "</style></head><body>",
        f"<h1>edgekit bench</h1><p>{html.escape(str(m.get('cpu')))}, {m.get('cores')} cores; edgekit {report.get('edgekit_version')}; "
        f"{html.escape(str(report.get('created')))}; profiles: {html.escape(', '.join(report.get('settings', {}).get('profiles') or ['host']))}</p>",
        "<h2>Measured on this host</h2>",
        html_table(host_columns(host_rows(report)), [row_cells(r) for r in host_rows(report)]),
        f"<p class=note>{html.escape(caption(report))}</p>",
        html_img(_scatter(host_rows(report), "host: accuracy vs measured latency", estimated=False), "host: accuracy vs latency"),
    ]
    web = web_engine_rows(report)
    for name, rows in device_rows(report).items():
        parts += [
            f"<h2>Profile {html.escape(name)} (estimates)</h2>",
            html_table(device_columns(report, name), [device_cells(r) for r in rows]),
            f"<p class=note>{html.escape(device_caption(report, name))}</p>",
            html_img(_scatter(rows, f"{name}: accuracy vs estimated latency", estimated=True), f"{name}: accuracy vs latency"),
        ]
        if name in web:
            parts += [
                f"<h3>{html.escape(name)}: which engine for the web</h3>",
                f"<p><b>{html.escape(web_verdict(web[name]))}</b></p>",
                html_table(WEB_COLUMNS, [web_cells(r) for r in web[name]]),
                f"<p class=note>{html.escape(WEB_CAPTION)}</p>",
            ]
    for key, rows in measured_rows(report).items():
        parts += [f"<h2>Measured on {html.escape(key)}</h2>", html_table(MEASURED_COLUMNS, [measured_cells(r) for r in rows]),
                  f"<p class=note>{html.escape(measured_caption(report, key))}</p>",
                  html_img(_scatter(rows, f"{key}: accuracy vs measured latency", estimated=False), f"{key}: accuracy vs latency")]
    measured = [r for r in report["rows"] if (r.get("profile", "host") == "host" or r.get("is_reference"))
                and not r.get("measured_on")]
    extra = [r for r in report["rows"] if r not in measured]
    seen = {(r["artifact"], r["runtime"], r.get("threads")) for r in measured}
    for r in extra:  # device rows measured with other thread counts
        if (r["artifact"], r["runtime"], r.get("threads")) not in seen:
            seen.add((r["artifact"], r["runtime"], r.get("threads")))
            measured.append(r)
    parts += ["<h2>Latency distributions (measured here)</h2>", html_img(_histograms(measured), "latency histograms")]
    parts += ops_html(report)
    parts += _training_histories(report)
    if report.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(Path(path), to_html(report))
