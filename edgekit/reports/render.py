"""Render a bench report for people: a rich table, Markdown, and the JSON file.

Example:
    >>> print(to_markdown({"rows": [], "notes": [], "machine": {"cpu": "x", "cores": 2}, "settings": {"threads": 1}}))
    ... # doctest: +ELLIPSIS
    | artifact | ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.files import atomic_write_json, atomic_write_text

COLUMNS = ["artifact", "format", "quant", "runtime", "size", "x fp32", "accuracy", "agreement", "p50 ms", "p90 ms", "peak MB", "status"]


def _size(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1024:.1f} KB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MB"


def _num(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def row_cells(r: dict[str, Any]) -> list[str]:
    lat = r.get("latency_ms") or {}
    return [
        r["name"] + (" (reference)" if r.get("is_reference") else ""),
        r["format"],
        r["quant"],
        r["runtime"],
        _size(r.get("size_bytes")),
        _num(r.get("size_ratio"), ".2f"),
        _num(r.get("accuracy"), ".4f"),
        _num(r.get("agreement"), ".4f"),
        _num(lat.get("p50"), ".4f"),
        _num(lat.get("p90"), ".4f"),
        _num(r.get("peak_rss_mb"), ".0f"),
        r["status"],
    ]


def caption(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["settings"]
    return (
        f"host: {m.get('cpu')} ({m.get('cores')} cores), threads={s.get('threads')}; latency is one inference "
        "at batch 1 with inputs resident, as LiteRT benchmark_model measures it (TF.js: timed in JS with "
        "performance.now()); peak MB is the peak RSS of the process the model runs in (TF.js: the Node process or "
        "Chromium's renderer)"
    )


def print_table(report: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if console.width < 140:  # a narrow or piped terminal would truncate every cell
            console = Console(width=140)
    table = Table(title="edgekit bench", caption=caption(report), caption_justify="left")
    for c in COLUMNS:
        table.add_column(c, justify="left" if c in ("artifact", "format", "quant", "runtime", "status") else "right")
    for r in report["rows"]:
        cells = row_cells(r)
        style = "red" if r["status"] != "ok" else ("dim" if r.get("is_reference") else None)
        table.add_row(*cells, style=style)
    console.print(table)
    for note in report.get("notes", []):
        console.print(f"note: {note}", highlight=False)


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in report["rows"]:
        lines.append("| " + " | ".join(row_cells(r)) + " |")
    lines += ["", f"_{caption(report)}_"]
    lines += [f"- note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def write_json(report: dict[str, Any], path: Path) -> Path:
    return atomic_write_json(Path(path), report)


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    return atomic_write_text(Path(path), to_markdown(report))
