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
from edgekit.reports.web_engines import WEB_CAPTION, WEB_COLUMNS, web_cells, web_engine_rows, web_verdict

COLUMNS = ["artifact", "format", "quant", "runtime", "size", "x fp32", "accuracy", "agreement", "p50 ms", "p90 ms", "peak MB", "status"]
DEVICE_COLUMNS = ["artifact", "quant", "runtime", "thr", "host p50 ms", "factor", "est. device ms", "GMAC/s", "roofline",
                  "peak / limit MB", "size / limit MB", "est. / budget ms", "verdict"]
# a microcontroller: TFLite Micro's tensor arena against SRAM and the model against flash, in KB
MCU_DEVICE_COLUMNS = [*DEVICE_COLUMNS[:9], "arena / SRAM KB", "model / flash KB", *DEVICE_COLUMNS[11:]]


def host_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The host table's columns; ``accuracy`` is named for what it holds: a detector's row holds its
    mAP@0.5 (``row["metric"]``), so a table of detectors says ``mAP@0.5``, a mixed one both."""
    metrics = {r.get("metric", "accuracy") for r in rows if r.get("accuracy") is not None}
    name = next(iter(metrics)) if len(metrics) == 1 else " / ".join(sorted(metrics)) if metrics else "accuracy"
    return [name if c == "accuracy" else c for c in COLUMNS]


def device_columns(report: dict[str, Any], name: str) -> list[str]:
    kind = ((report.get("profiles") or {}).get(name) or {}).get("kind")
    return MCU_DEVICE_COLUMNS if kind == "mcu" else DEVICE_COLUMNS


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
        "at batch 1 with inputs resident, as LiteRT benchmark_model measures it (JS engines: timed in JS with "
        "performance.now()); peak MB is the peak RSS of the process the model runs in (JS engines: the Node process or "
        "Chromium's renderer)"
    )


def host_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows measured for the host profile (and the reference rows), the main table."""
    return [r for r in report["rows"] if (r.get("profile", "host") == "host" and not r.get("measured_on"))
            or r.get("is_reference")]


MEASURED_COLUMNS = ["artifact", "quant", "runtime", "thr", "p50 ms", "p90 ms", "est. ms", "est. error", "accuracy",
                    "agreement", "peak / limit MB", "p50 / budget ms", "verdict"]


def measured_rows(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows measured on a remote device (``bench --device``), by device and profile."""
    out: dict[str, list] = {}
    for r in report["rows"]:
        if r.get("measured_on") and not r.get("is_reference"):
            profile = r.get("profile", "host")
            key = r["measured_on"]["device"] + ("" if profile == "host" else f", profile {profile}")
            out.setdefault(key, []).append(r)
    return out


def measured_cells(r: dict[str, Any]) -> list[str]:
    lat = r.get("latency_ms") or {}
    c = r.get("checks") or {}
    est = (r.get("estimate") or {}).get("latency_ms")
    err = r.get("estimate_error_pct")
    return [r["name"], r["quant"], r["runtime"], str(r.get("threads") or 1), _num(lat.get("p50"), ".4f"),
            _num(lat.get("p90"), ".4f"), "-" if est is None else f"~{est:.4g}", "-" if err is None else f"{err:+.0f}%",
            _num(r.get("accuracy"), ".4f"), _num(r.get("agreement"), ".4f"),
            _check_cell(c.get("memory"), r.get("peak_rss_mb"), ".0f"),
            _check_cell(c.get("latency_budget"), lat.get("p50"), ".3g"),
            r.get("verdict") or (r["status"] if r["status"] == "ok" else f"failed: {r.get('error') or ''}"[:100])]


def measured_caption(report: dict[str, Any], key: str) -> str:
    d = report.get("device") or {}
    if d.get("user_agent"):
        return (f"MEASURED in {d.get('name')} ({d.get('cores')} cores reported; user agent: {d.get('user_agent')}), by "
                f"edgekit's page runner served from {d.get('served_from')}: the same engines and page as the local browser "
                "runtimes. est. ms: the profile's estimate for the same artifact, made on this host in the same run; est. "
                "error: (estimate - measured) / measured. A web page cannot see its memory: no peak MB.")
    versions = ", ".join(f"{k} {v['version']}" for k, v in (d.get("runtimes") or {}).items())
    return (f"MEASURED on {d.get('name')} ({d.get('cpu')}, {d.get('cores')} cores, {d.get('platform')}; {versions}) by its "
            f"edgekit agent at {d.get('url')}, with the same worker as a local bench. est. ms: the profile's estimate "
            "for the same artifact, made on this host in the same run; est. error: (estimate - measured) / measured.")


def device_rows(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows of each device profile (everything but the host), in profile order."""
    out: dict[str, list] = {}
    for r in report["rows"]:
        if r.get("profile", "host") != "host" and not r.get("is_reference") and not r.get("measured_on"):
            out.setdefault(r["profile"], []).append(r)
    return out


def _check_cell(c: dict | None, value, fmt: str, prefix: str = "") -> str:
    """The value, the profile's limit after a slash, and OVER when the value breaks it:
    ``58 / 1024``, ``~120 / 100 OVER``; the value alone when the profile sets no limit."""
    if value is None:
        return "-"
    text = prefix + _num(value, fmt)
    if not c:
        return text
    limit = c.get("limit_mb", c.get("limit_ms", c.get("limit_kb")))
    return f"{text} / {limit:g}" + ("" if c["ok"] else " OVER")


def device_cells(r: dict[str, Any]) -> list[str]:
    lat = r.get("latency_ms") or {}
    est = r.get("estimate") or {}
    ch = r.get("checks") or {}
    roof = est.get("roofline")
    roof_cell = "-" if roof is None else f"{roof * 100:.0f}%" + (" LOW" if est.get("low_utilisation") else
                                                                  " PEAK?" if est.get("above_peak") else "")
    est_cell = "-" if est.get("latency_ms") is None else f"~{est['latency_ms']:.4g}"
    size = r.get("size_bytes")
    return [
        r["name"], r["quant"], r["runtime"], str(r.get("threads") or 1), _num(lat.get("p50"), ".4f"),
        _num(est.get("factor"), ".3g"), est_cell, _num(est.get("achieved_gmacs"), ".3g"), roof_cell,
        *(_mcu_cells(r, ch) if "full_integer" in ch else
          [_check_cell(ch.get("memory"), r.get("peak_rss_mb"), ".0f"),
           _check_cell(ch.get("storage"), size / 1e6 if size else None, ".3g")]),
        _check_cell(ch.get("latency_budget"), est.get("latency_ms"), ".3g", "~") if ch.get("latency_budget") else "-",
        r.get("verdict") or ("ok" if r["status"] == "ok" else "failed"),
    ]


def _mcu_cells(r: dict[str, Any], ch: dict) -> list[str]:
    arena, size = (r.get("arena") or {}).get("smallest_bytes"), r.get("size_bytes")
    return [_check_cell(ch.get("sram"), arena / 1024 if arena else None, ".1f"),
            _check_cell(ch.get("flash"), size / 1024 if size else None, ".1f")]


def device_caption(report: dict[str, Any], name: str) -> str:
    p = (report.get("profiles") or {}).get(name) or {}
    t = p.get("throughput") or {}
    ref = t.get("reference") or {}
    limits = ", ".join(f"{k} {v:g} {u}" for k, v, u in (("memory", p.get("memory_mb"), "MB"), ("storage", p.get("storage_mb"), "MB"),
                                                         ("SRAM for the tensor arena", p.get("sram_kb"), "KB"),
                                                         ("flash for the model", p.get("flash_kb"), "KB"),
                                                         ("latency budget", p.get("latency_budget_ms"), "ms")) if v)
    here = ("the same workload's time on TFLite Micro here, timed in alternation with the artifact in one process "
            "(host p50 x factor = the median ratio of their pair times x the device figure)" if p.get("kind") == "mcu"
            else "the same workload measured here in this run")
    return (f"{name}: {p.get('description', '')} Limits: {limits or 'none'}. est. device ms (~) is an ESTIMATE: host p50 x "
            f"factor; factor = {ref.get('workload')} on the device ({ref.get('latency_ms')} ms, {ref.get('threads')} threads; "
            f"{ref.get('quant', 'fp32')}; {ref.get('source')}) / {here}"
            + (f" (int8 rows: the int8 reference, device figure / {t.get('int8_gain'):g})" if t.get("int8_gain", 1) != 1 else "")
            + f". Roofline: achieved GMAC/s / device peak ({t.get('peak_gmacs_fp32')} GMAC/s fp32"
            + (f", {t.get('peak_gmacs_int8')} int8" if t.get("peak_gmacs_int8") != t.get("peak_gmacs_fp32") else "")
            + "); LOW below 20%; PEAK? above 100%: faster than the device can compute, so the estimate is too low. "
            "peak MB is measured here.")


def focus_output(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The report with each row's accuracy and agreement taken from output ``name`` (``bench --output``);
    the rows' ``outputs`` keep every output. A UsageError when no row has that output."""
    from edgekit.errors import UsageError, suggest

    known = sorted({o for r in report["rows"] for o in (r.get("outputs") or {})})
    if name not in known:
        have = f"the model's outputs are {', '.join(known)}" if known else "these models have one output each"
        raise UsageError(f"--output {name} names no output: {have}.{suggest(name, known)}")
    rows = []
    for r in report["rows"]:
        m = (r.get("outputs") or {}).get(name)
        rows.append(r if m is None else {**r, "accuracy": m.get("accuracy"), "agreement": m.get("agreement")})
    notes = [n for n in report.get("notes", []) if not n.startswith("several outputs")]
    note = f"accuracy and agreement are those of output '{name}' (--output)"
    maes = [f"{r['name']} {r['outputs'][name]['mae']:.4g}" for r in report["rows"] if "mae" in (r.get("outputs") or {}).get(name, {})]
    if maes:
        note += f"; it holds values, and its mean absolute error is: {', '.join(maes)}"
    return {**report, "rows": rows, "notes": [note + ".", *notes]}


def print_table(report: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        want = 160 if device_rows(report) else 140
        if console.width < want:  # a narrow or piped terminal would truncate every cell
            console = Console(width=want)
    table = Table(title="edgekit bench", caption=caption(report), caption_justify="left")
    for c in host_columns(host_rows(report)):
        table.add_column(c, justify="left" if c in ("artifact", "format", "quant", "runtime", "status") else "right")
    for r in host_rows(report):
        cells = row_cells(r)
        style = "red" if r["status"] != "ok" else ("dim" if r.get("is_reference") else None)
        table.add_row(*cells, style=style)
    if table.rows or not device_rows(report):  # only profiles asked for: their tables say it all
        console.print(table)
    web = web_engine_rows(report)
    for name, rows in device_rows(report).items():
        console.print(_rich_table(f"profile {name} (estimates)", device_caption(report, name), device_columns(report, name),
                                  [device_cells(r) for r in rows], [_failing(r) for r in rows]))
        if name in web:
            console.print(_rich_table(f"{name}: which engine for the web", f"{web_verdict(web[name])}. {WEB_CAPTION}",
                                      WEB_COLUMNS, [web_cells(r) for r in web[name]], [_failing(r) for r in web[name]]))
    for key, rows in measured_rows(report).items():
        console.print(_rich_table(f"measured on {key}", measured_caption(report, key), MEASURED_COLUMNS,
                                  [measured_cells(r) for r in rows], [_failing(r) for r in rows]))
    for note in report.get("notes", []):
        console.print(f"note: {note}", highlight=False)


_TEXT_COLUMNS = ("artifact", "format", "quant", "runtime", "engine", "verdict", "status")


def _failing(r: dict[str, Any]) -> bool:
    return r["status"] != "ok" or str(r.get("verdict", "")).startswith("fail")


def _rich_table(title: str, caption_text: str, columns: list[str], cells: list[list[str]], failing: list[bool]):
    """One rich table: text columns left, numbers right, the artifact never wrapped, failing rows red."""
    from rich.table import Table

    t = Table(title=title, caption=caption_text, caption_justify="left")
    for c in columns:
        t.add_column(c, justify="left" if c in _TEXT_COLUMNS else "right", no_wrap=c == "artifact")
    for row, bad in zip(cells, failing, strict=True):
        t.add_row(*row, style="red" if bad else None)
    return t


def _md_table(columns: list[str], cells: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|",
            *("| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells)]


def to_markdown(report: dict[str, Any]) -> str:
    host = host_rows(report)
    lines = [*_md_table(host_columns(host), [row_cells(r) for r in host]), "", f"_{caption(report)}_"] if host or not device_rows(report) else []
    web = web_engine_rows(report)
    for name, rows in device_rows(report).items():
        lines += ["", f"### profile {name}", "", *_md_table(device_columns(report, name), [device_cells(r) for r in rows]),
                  "", f"_{device_caption(report, name)}_"]
        if name in web:
            lines += ["", f"#### {name}: which engine for the web", "", f"**{web_verdict(web[name])}**", "",
                      *_md_table(WEB_COLUMNS, [web_cells(r) for r in web[name]]), "", f"_{WEB_CAPTION}_"]
    for key, rows in measured_rows(report).items():
        lines += ["", f"### measured on {key}", "", *_md_table(MEASURED_COLUMNS, [measured_cells(r) for r in rows]),
                  "", f"_{measured_caption(report, key)}_"]
    from edgekit.reports.ops import ops_lines

    profiled = ops_lines(report)
    if profiled:
        lines += ["", *profiled]
    lines.append("")
    lines += [f"- note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def write_json(report: dict[str, Any], path: Path) -> Path:
    return atomic_write_json(Path(path), report)


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    return atomic_write_text(Path(path), to_markdown(report))


def print_ops(report: dict[str, Any], console=None) -> None:
    """The top operators of every row profiled with ``bench --ops`` (edgekit.reports.ops)."""
    from edgekit.reports.ops import print_ops as show

    show(report, console)
