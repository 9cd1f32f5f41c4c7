"""What ``edgekit tune`` shows: the summary (``tune.json``), the Pareto table and the HTML report.

The front holds the trials that ran, exported, validated and met every constraint, and that
no other such trial beats on all three objectives. Every other trial is listed with why it is
off the front: dominated, over a constraint (which, by how much), pruned, or failed (where).
Trials of the same graph share one latency, the median of their measurements (``latency_trials``
says how many; each keeps its own as ``latency_measured_ms``).

Example:
    >>> summary = json.loads(Path("runs/tune/tune.json").read_text())   # doctest: +SKIP
    >>> print_front(summary)                                             # doctest: +SKIP
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import edgekit
from edgekit import status
from edgekit.files import atomic_write_json, atomic_write_text, read_json
from edgekit.tuning.front import pareto_indices
from edgekit.tuning.trial import pooled_latency

TUNE_JSON = "tune.json"
TUNE_HTML = "tune.html"


def summarize(study, settings, out: Path, *, trials: int, sampler: str, storage: str) -> dict[str, Any]:
    """Every trial of the study with its state, objectives and reason, and the front."""
    from edgekit.tuning.workers import retried

    again = retried(study)
    entries = [_entry(t, t.number in again) for t in study.get_trials(deepcopy=False)]
    _pool_latencies(entries)
    candidates = [e for e in entries if e["state"] == status.COMPLETE]
    front_idx = pareto_indices([_point(e) for e in candidates])
    front_numbers = {candidates[i]["number"] for i in front_idx}
    for e in entries:
        e["pareto"] = e["number"] in front_numbers
        if e["state"] == status.COMPLETE and not e["pareto"]:
            e["reason"] = "dominated: " + _dominated_by(e, [candidates[i] for i in front_idx])
    front = sorted((e for e in entries if e["pareto"]), key=lambda e: e["objectives"]["latency_ms"])
    done = [e for e in entries if e.get("seconds")]
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["state"]] = counts.get(e["state"], 0) + 1
    first = settings.profiles[0]
    return {
        "edgekit_version": edgekit.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "study": study.study_name,
        "storage": storage,
        "sampler": sampler,
        "settings": {**study.user_attrs.get("edgekit", {}), "trials": trials, "batch_size": settings.batch_size,
                     "learning_rate": settings.learning_rate, "patience": settings.patience},
        "metric": settings.metric,
        "objectives": {"accuracy": f"{settings.quant} artifact {settings.metric} on the test split (maximise)",
                       "latency_ms": f"{first.name} latency, ms ({'estimate' if first.estimates else 'measured'}; minimise)",
                       "size_kb": "artifact size, KB (minimise)"},
        "first_profile": first.name,
        "estimated": bool(first.estimates),
        "counts": counts,
        "seconds": {
            "train_mean": _mean([e["seconds"]["train"] for e in done]),
            "outside_training_mean": _mean([e["seconds"]["total"] - e["seconds"]["train"] for e in done]),
        },
        "front": front,
        "trials": entries,
    }


def _entry(t, run_again: bool = False) -> dict[str, Any]:
    """One trial as tune.json lists it; ``run_again``: a later trial is its retry (its worker died)."""
    ua = t.user_attrs
    state = t.state.name.lower()
    interrupted = ua.get("interrupted") or run_again
    if interrupted:
        state = status.INTERRUPTED
    elif state == "fail":
        state = status.FAILED
    elif state == status.COMPLETE and not ua.get("feasible", False):
        state = status.INFEASIBLE
    folder = f"trials/{t.number:04d}"
    return {
        "number": t.number,
        "state": state,
        "params": dict(t.params),
        "objectives": ua.get("objectives"),
        "profiles": ua.get("profiles"),
        "constraints": ua.get("constraints"),
        "host_p50_ms": ua.get("host_p50_ms"),
        "params_count": ua.get("params_count"),
        "graph_key": ua.get("graph_key"),
        "latency_measured_ms": ua.get("latency_measured_ms"),
        "seconds": ua.get("seconds"),
        "reason": ua.get("failure") or ("retried as a later trial" if interrupted else _lapsed(t)),
        "retry_of": ua.get("retry_of"),
        "role": ua.get("role"),
        "worker": ua.get("worker"),
        "folder": folder,
        "artifact": f"{folder}/export/{Path(ua['artifact']).name}" if ua.get("artifact") else None,
    }


def _pool_latencies(entries: list[dict]) -> None:
    """Every measured trial's latency objective becomes its graph's pooled latency, over every
    trial of that graph, later ones included (:func:`~edgekit.tuning.trial.pooled_latency`)."""
    groups: dict[str, list[dict]] = {}
    for e in entries:
        if e["objectives"] and e.get("graph_key") and e.get("latency_measured_ms") is not None:
            groups.setdefault(e["graph_key"], []).append(e)
    for group in groups.values():
        pooled = pooled_latency([e["latency_measured_ms"] for e in group])
        for e in group:
            e["objectives"] = {**e["objectives"], "latency_ms": pooled}
            e["latency_trials"] = len(group)


def _point(e: dict) -> tuple[float, float, float]:
    o = e["objectives"]
    return (o["accuracy"], o["latency_ms"], o["size_kb"])


def _dominated_by(e: dict, front: list[dict]) -> str:
    from edgekit.tuning.front import dominates

    by = [f["number"] for f in front if dominates(_point(f), _point(e))]
    return "trial " + ", ".join(str(n) for n in by[:3]) if by else "a front member"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def write_reports(summary: dict[str, Any], out: Path) -> None:
    atomic_write_json(out / TUNE_JSON, summary)
    atomic_write_text(out / TUNE_HTML, to_html(summary))


def load_summary(folder: Path) -> dict[str, Any]:
    from edgekit.errors import InputError

    path = Path(folder) / TUNE_JSON
    if not path.is_file():
        raise InputError(f"{folder} holds no {TUNE_JSON}", hint="pass the --out folder of an edgekit tune run")
    return read_json(path, what="a tune summary")


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={_num(v)}" for k, v in params.items())


def _num(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


POOLED_NOTE = "latency (N trials): the median of N trials' measurements of the same graph, trained differently"
FRONT_COLUMNS = ["trial", "accuracy", "latency ms", "size KB", "host p50 ms", "params", "artifact"]


def front_columns(summary: dict) -> list[str]:
    """The front table's columns, the accuracy one named by what it is (a detector's: mAP@0.5)."""
    return [summary.get("metric", "accuracy") if c == "accuracy" else c for c in FRONT_COLUMNS]


def front_cells(summary: dict) -> list[list[str]]:
    est = "~" if summary.get("estimated") else ""
    rows = []
    for e in summary["front"]:
        o = e["objectives"]
        role = e.get("role") or ""
        tag = " (defaults)" if "defaults" in role else " (smallest)" if "smallest" in role else ""
        rows.append([str(e["number"]) + tag, f"{o['accuracy']:.4f}",
                     f"{est}{o['latency_ms']:.4g}" + (f" ({e['latency_trials']} trials)"
                                                       if (e.get("latency_trials") or 1) > 1 else ""),
                     f"{o['size_kb']:.1f}",
                     f"{e['host_p50_ms']:.4g}" if e.get("host_p50_ms") is not None else "-",
                     _params_text(e["params"]), e.get("artifact") or "-"])
    return rows


def excluded_lines(summary: dict) -> list[str]:
    """One line per trial off the front, with why."""
    out = []
    for e in summary["trials"]:
        if e["pareto"]:
            continue
        out.append(f"trial {e['number']} {e['state']}: {e.get('reason') or e['state']}")
    return out


def print_front(summary: dict, console=None) -> None:
    from rich.table import Table

    from edgekit.cli.output import console as make_console

    con = console or make_console(width=140)
    s = summary["settings"]
    n = len(summary["trials"])
    lat = summary["objectives"]["latency_ms"]
    table = Table(title=f"Pareto front: {len(summary['front'])} of {n} trials ({s.get('model')} on {s.get('data')}, "
                        f"{s.get('quant')}; latency: {lat})", title_justify="left")
    for c in front_columns(summary):
        table.add_column(c, justify="left" if c in ("params", "artifact", "trial") else "right")
    for row in front_cells(summary):
        table.add_row(*row)
    if summary["front"]:
        con.print(table)
        if any((e.get("latency_trials") or 1) > 1 for e in summary["front"]):
            con.print(POOLED_NOTE)
    else:
        con.print(f"No trial is on the front: none of the {n} trials gave a deployable artifact within the constraints.")
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary["counts"].items()))
    sec = summary["seconds"]
    timing = (f" Per trial: {sec['train_mean']}s training, {sec['outside_training_mean']}s exporting, validating and "
              "benchmarking (means)." if sec["train_mean"] is not None else "")
    con.print(f"trials: {counts}.{timing}")
    for line in excluded_lines(summary):
        con.print(f"  {line}")


def _plot(summary: dict) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgekit.reports.html_parts import figure_png

    done = [e for e in summary["trials"] if e.get("objectives")]
    if not done:
        return None
    sizes = [e["objectives"]["size_kb"] for e in done]
    smax = max(sizes) or 1.0

    def marker_size(e):
        return 30 + 400 * e["objectives"]["size_kb"] / smax

    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for e in done:
        o = e["objectives"]
        if e["pareto"]:
            continue
        if e["state"] == status.INFEASIBLE:
            ax.scatter(o["latency_ms"], o["accuracy"], s=marker_size(e), color="#bbbbbb", marker="x", alpha=0.9)
        else:
            ax.scatter(o["latency_ms"], o["accuracy"], s=marker_size(e), color="#bbbbbb", alpha=0.7, edgecolors="#888888")
        ax.annotate(str(e["number"]), (o["latency_ms"], o["accuracy"]), fontsize=7, color="#888888",
                    xytext=(4, -8), textcoords="offset points")
    front = summary["front"]
    if front:
        xs = [e["objectives"]["latency_ms"] for e in front]
        ys = [e["objectives"]["accuracy"] for e in front]
        ax.plot(xs, ys, color="#1f77b4", linewidth=1, alpha=0.6, drawstyle="steps-post")
        ax.scatter(xs, ys, s=[marker_size(e) for e in front], color="#1f77b4", edgecolors="black", linewidths=0.6,
                   alpha=0.9, zorder=3)
        for e in front:
            ax.annotate(str(e["number"]), (e["objectives"]["latency_ms"], e["objectives"]["accuracy"]), fontsize=8,
                        xytext=(5, 4), textcoords="offset points", zorder=4)
    ax.scatter([], [], s=80, color="#1f77b4", edgecolors="black", label="Pareto front (size: marker area)")
    ax.scatter([], [], s=80, color="#bbbbbb", edgecolors="#888888", label="dominated")
    ax.scatter([], [], s=80, color="#bbbbbb", marker="x", label="over a constraint")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel(summary["objectives"]["latency_ms"] + " (log)")
    ax.set_ylabel(summary["objectives"]["accuracy"].replace(" (maximise)", ""))
    ax.set_title(f"edgekit tune: {summary['settings'].get('model')} on {summary['settings'].get('data')}")
    ax.grid(True, alpha=0.3)
    return figure_png(fig)


def to_html(summary: dict) -> str:
    from edgekit.reports.html_parts import html_img, html_table

    s = summary["settings"]
    all_cells = []
    for e in summary["trials"]:
        o = e.get("objectives") or {}
        all_cells.append([e["number"], e["state"] + (" (front)" if e["pareto"] else ""),
                          f"{o['accuracy']:.4f}" if o else "-", f"{o['latency_ms']:.4g}" if o else "-",
                          f"{o['size_kb']:.1f}" if o else "-",
                          f"{e['seconds']['train']:.1f} / {e['seconds']['total']:.1f}" if e.get("seconds") else "-",
                          _params_text(e["params"]), e.get("reason") or ""])
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>edgekit tune report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0;font-size:13px}",
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}",
        "td:nth-last-child(-n+2){text-align:left}.note{color:#555}.chart{display:block;margin:1em 0;max-width:100%}",
        "</style></head><body>",
        f"<h1>edgekit tune</h1><p>{html.escape(str(s.get('model')))} on {html.escape(str(s.get('data')))}, "
        f"{html.escape(str(s.get('quant')))}, profiles {html.escape(', '.join(s.get('profiles') or []))}; "
        f"{s.get('trials')} trials, sampler {html.escape(summary['sampler'])}; study {html.escape(summary['study'])} in "
        f"{html.escape(summary['storage'])}; edgekit {summary['edgekit_version']}; {html.escape(summary['created'])}</p>",
        f"<h2>Pareto front ({len(summary['front'])} of {len(summary['trials'])} trials)</h2>",
        html_img(_plot(summary), "accuracy against latency"),
        html_table(front_columns(summary), front_cells(summary)),
        "<p class=note>" + html.escape(
            "Objectives: " + "; ".join(summary["objectives"].values()) + ". Each front member's run folder and "
            "artifacts are kept in its folder; the others are removed unless --keep-all. " + POOLED_NOTE[0].upper()
            + POOLED_NOTE[1:] + ".") + "</p>",
        "<h2>All trials</h2>",
        html_table(["trial", "state", summary.get("metric", "accuracy"), "latency ms", "size KB", "train / total s", "params",
                    "reason"], all_cells),
        "</body></html>",
    ]
    return "\n".join(parts)


def _lapsed(t) -> str | None:
    """The reason of a failed trial that recorded none: its worker stopped sending heartbeats."""
    if t.state.name != "FAIL":
        return None
    if t.user_attrs.get("retry_of") is not None:
        return (f"its worker ({t.user_attrs.get('worker', '?')}) stopped sending heartbeats, as the worker of trial "
                f"{t.user_attrs['retry_of']} did on the same parameters: out of memory, or a crash in a converter or "
                "runtime; not retried")
    return f"its worker ({t.user_attrs.get('worker', '?')}) stopped sending heartbeats"
