"""What ``edgekit check`` shows: a rich table, JUnit XML for CI systems, Markdown for job summaries.

Example:
    >>> write_junit(result, "check.xml")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from edgekit.files import atomic_write_text
from edgekit.gate.compare import CheckResult, RowResult

COLUMNS = ["artifact", "runtime", "profile", "accuracy", "vs float", "vs baseline", "agreement", "p50 ms", "latency", "size",
           "result"]


def _cell(r: RowResult, name: str) -> str:
    c = next((c for c in r.checks if c.name == name), None)
    if c is None:
        return "-"
    return c.value + ("" if c.ok else " FAIL")


def cells(r: RowResult) -> list[str]:
    row: dict[str, Any] = r.row or r.base or {}
    acc = row.get("accuracy")
    p50 = ((r.row or {}).get("latency_ms") or {}).get("p50")
    return [
        f"{row.get('name', r.name)} ({row.get('quant', '?')})", str(row.get("runtime", "-")), str(row.get("profile", "host")),
        "-" if acc is None else f"{acc:.4f}", _cell(r, "accuracy vs float"), _cell(r, "accuracy vs baseline"),
        _cell(r, "agreement"), "-" if p50 is None else f"{p50:.4g}", _cell(r, "latency vs baseline"),
        _cell(r, "size vs baseline"), r.status.upper() if r.status in ("fail", "missing") else r.status,
    ]


def summary(result: CheckResult) -> str:
    c = result.counts()
    parts = [f"{c.get(k, 0)} {k}" for k in ("pass", "fail", "missing", "new") if c.get(k)]
    verdict = "PASSED" if result.passed else "FAILED"
    return f"edgekit check {verdict}: {', '.join(parts)} (thresholds: {result.thresholds_source})"


def print_result(result: CheckResult, console) -> None:
    from rich.table import Table

    table = Table(title="edgekit check")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("artifact", "runtime", "profile", "result") else "right")
    for r in result.rows:
        table.add_row(*cells(r), style="red" if r.status in ("fail", "missing") else ("yellow" if r.status == "new" else None))
    console.print(table)
    for r in result.rows:
        for msg in r.failures:
            console.print(f"regression: {msg}", highlight=False)
        if r.note and r.status == "pass":
            console.print(f"rerun: {r.name} on {(r.row or {}).get('runtime')}: {r.note}", highlight=False)
        if r.status == "new":
            console.print(f"new: {r.name} on {(r.row or {}).get('runtime')} ({(r.row or {}).get('profile')}) has no baseline "
                          "row; it was checked against the float model only (record it with --update-baseline)", highlight=False)
    if result.yardstick_scale:
        console.print(yardstick_note(result), highlight=False)
    console.print(summary(result), highlight=False)


def yardstick_note(result: CheckResult) -> str:
    return (f"note: latency is compared as a ratio to the machine yardstick, which ran {result.yardstick_scale:.3g}x as "
            "long here as on the baseline's machine")


def to_markdown(result: CheckResult) -> str:
    lines = [f"## {summary(result)}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in result.rows]
    fails = [m for r in result.rows for m in r.failures]
    if result.yardstick_scale:
        lines += ["", yardstick_note(result)]
    if fails:
        lines += ["", "### Regressions", ""] + [f"- {m}" for m in fails]
    reruns = [f"- {r.name} on {(r.row or {}).get('runtime')}: {r.note}" for r in result.rows if r.note and r.status == "pass"]
    if reruns:
        lines += ["", "### Measured again", ""] + reruns
    return "\n".join(lines) + "\n"


def to_junit(result: CheckResult) -> str:
    failures = sum(1 for r in result.rows if r.status in ("fail", "missing"))
    skipped = sum(1 for r in result.rows if r.status == "new")
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuites name="edgekit check" tests="{len(result.rows)}" failures="{failures}" skipped="{skipped}">',
           f'  <testsuite name="edgekit check" tests="{len(result.rows)}" failures="{failures}" errors="0" skipped="{skipped}">']
    for r in result.rows:
        row = r.row or r.base or {}
        name = f"{row.get('name', r.name)} {row.get('quant', '')} on {row.get('runtime', '')}".strip()
        out.append(f'    <testcase classname={quoteattr("edgekit.check." + str(row.get("profile", "host")))} name={quoteattr(name)}>')
        if r.status in ("fail", "missing"):
            msg = "; ".join(r.failures)
            out.append(f'      <failure message={quoteattr(msg[:500])} type="regression">{escape(msg)}</failure>')
        elif r.status == "new":
            out.append('      <skipped message="no baseline row: checked against the float model only"/>')
        detail = "\n".join(f"{c.name}: {c.value} (limit {c.limit}) {'ok' if c.ok else 'FAIL'}" for c in r.checks)
        out.append(f"      <system-out>{escape(detail)}</system-out>")
        out.append("    </testcase>")
    out += ["  </testsuite>", "</testsuites>"]
    return "\n".join(out) + "\n"


def write_junit(result: CheckResult, path: str | Path) -> Path:
    return atomic_write_text(Path(path), to_junit(result))


def write_markdown(result: CheckResult, path: str | Path) -> Path:
    return atomic_write_text(Path(path), to_markdown(result))
