"""Per-operator profiles (``bench --ops``) for people: the top operators on the console, every
operator in Markdown, a bar chart per row in HTML.

Example:
    >>> rows = [{"name": "m.tflite", "runtime": "litert", "profile": "host", "threads": 1, "ops": {"status": "ok",
    ...          "whole_ms": 0.1, "sum_ms": 0.09, "coverage": 0.9, "unattributed_ms": 0.01, "ops": [{"op": "Conv",
    ...          "kernel": "XNNPACK", "layer": "conv2d", "ms": 0.09, "share": 0.9, "macs": 10**6, "gmacs_per_s": 11.1}]}}]
    >>> ops_lines({"rows": rows})[2]
    '| # | operator | layer | kernel | mean ms | share | MACs | GMAC/s |'
"""

from __future__ import annotations

from typing import Any

COLUMNS = ["#", "operator", "layer", "kernel", "mean ms", "share", "MACs", "GMAC/s"]


def profiled_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report.get("rows", []) if r.get("ops")]


def title(r: dict[str, Any]) -> str:
    n = r.get('threads') or 1
    return f"{r['name']} on {r['runtime']} ({r.get('profile', 'host')}, {n} thread{'s' if n > 1 else ''})"


def summary(ops: dict[str, Any]) -> str:
    """One line: what the operators add up to against the measured whole run, and what is left."""
    if ops["status"] == "partial":
        return f"the model stopped: {ops.get('error')}"
    if ops["status"] != "ok":
        return f"no per-operator profile: {ops.get('error')}"
    text = (f"{len(ops['ops'])} operators add up to {ops['sum_ms']:.4g} ms, {ops['coverage']:.0%} of the measured "
            f"p50 {ops['whole_ms']:.4g} ms; the other {ops['unattributed_ms']:.3g} ms is the runtime outside any operator")
    if ops.get("resolution_us"):
        text += f" and the {ops['resolution_us']} us resolution of its operator times"
    if ops.get("profiled_run_ms"):
        text += f" (a profiled run took {ops['profiled_run_ms']:.4g} ms)"
    return text


def cells(ops: dict[str, Any], limit: int | None = None) -> list[list[str]]:
    out = []
    est = any("device_ms_estimate" in o for o in ops["ops"])
    for k, o in enumerate(ops["ops"][:limit], 1):
        row = [str(k), o["op"], o["layer"] or "-", o["kernel"], f"{o['ms']:.4f}",
               f"{o['share']:.1%}" if o.get("share") is not None else "-",
               f"{o['macs']:,}" if o.get("macs") else "-", f"{o['gmacs_per_s']:.1f}" if o.get("gmacs_per_s") else "-"]
        if est:
            row.append(f"{o['device_ms_estimate']:.4f}" if o.get("device_ms_estimate") is not None else "-")
        out.append(row)
    return out


def columns(ops: dict[str, Any]) -> list[str]:
    return [*COLUMNS, "est. device ms"] if any("device_ms_estimate" in o for o in ops["ops"]) else COLUMNS


def print_ops(report: dict[str, Any], console=None, top: int = 5) -> None:
    """The ``top`` operators of every profiled row (the whole tables go to --markdown, --json, --html)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=max(Console().width, 140))
    for r in profiled_rows(report):
        ops = r["ops"]
        if ops["status"] not in ("ok", "partial"):
            console.print(f"{title(r)}: {summary(ops)}", highlight=False, style="yellow")
            continue
        t = Table(title=f"where the time goes: {title(r)}, top {min(top, len(ops['ops']))}", caption=summary(ops),
                  caption_justify="left")
        for c in columns(ops):
            t.add_column(c, justify="left" if c in ("operator", "layer", "kernel") else "right")
        for row in cells(ops, top):
            t.add_row(*row)
        console.print(t)


def ops_lines(report: dict[str, Any]) -> list[str]:
    """Markdown: every profiled row's whole operator table."""
    lines: list[str] = []
    for r in profiled_rows(report):
        ops = r["ops"]
        lines += [f"### where the time goes: {title(r)}", ""]
        if ops["status"] in ("ok", "partial"):
            lines += ["| " + " | ".join(columns(ops)) + " |", "|" + "|".join("---" for _ in columns(ops)) + "|",
                      *("| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells(ops))]
            lines.append("")
        lines += [f"_{summary(ops)}_", ""]
    return lines[1:] if lines[:1] == [""] else lines


def ops_html(report: dict[str, Any]) -> list[str]:
    """HTML: per profiled row, a bar chart of its operators' times (top 15, by layer colour) and the whole table."""
    import html

    from edgekit.reports.html_parts import html_img, html_table

    parts: list[str] = []
    for r in profiled_rows(report):
        ops = r["ops"]
        parts.append(f"<h2>Where the time goes: {html.escape(title(r))}</h2>")
        if ops["status"] in ("ok", "partial"):
            parts += [html_img(_bars(r), f"operator times of {r['name']}"), html_table(columns(ops), cells(ops))]
        parts.append(f"<p><em>{html.escape(summary(ops))}</em></p>")
    return parts


def _bars(r: dict[str, Any], top: int = 15) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgekit.reports.html_parts import figure_png

    ops = r["ops"]["ops"][:top]
    if not ops:
        return None
    labels = [f"{o['op']} ({o['layer'] or 'no layer'})" for o in ops][::-1]
    times = [o["ms"] for o in ops][::-1]
    layers = sorted({o["layer"] or "" for o in ops})
    palette = plt.get_cmap("tab10")
    colors = [palette(layers.index(o["layer"] or "") % 10) for o in ops][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(ops) + 1.2))
    ax.barh(range(len(ops)), times, color=colors)
    ax.set_yticks(range(len(ops)), labels, fontsize=7)
    for k, (t, o) in enumerate(zip(times, ops[::-1], strict=True)):
        if o.get("share") is not None:
            ax.text(t, k, f" {o['share']:.0%}", va="center", fontsize=7)
    whole = r["ops"].get("whole_ms")
    ax.set_xlabel(f"mean ms per inference (share of the measured p50 {whole:.4g} ms)" if whole else
                  "ms per inference, up to where the model stopped", fontsize=8)
    ax.set_title(title(r), fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    return figure_png(fig)
