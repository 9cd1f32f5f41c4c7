"""Baselines: what a bench report said about one model, stored for later reports to be held to.

A baseline records the model's identity (task, input shape, labels, number of outputs) and,
per (format, quant, runtime, profile), accuracy, agreement, latency (with the noise its
repeats showed), size and the device estimate. A new version of the same model (new weights,
new architecture, same task and input/output spec) is what a baseline is compared with; a
baseline made for another model is refused.

Example:
    >>> b = make_baseline(json.load(open("runs/demo/bench.json")))   # doctest: +SKIP
    >>> sorted(b["rows"])[0]                                          # doctest: +SKIP
    'onnx/fp32/onnxruntime/host'
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import edgekit
from edgekit.errors import InputError

BASELINE_VERSION = 1


def row_key(r: dict[str, Any]) -> str:
    return f"{r['format']}/{r['quant']}/{r['runtime']}/{r.get('profile', 'host')}"


def load_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"Report {p} does not exist", hint="write one with `edgekit bench ... --json FILE`")
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is not valid JSON ({e})") from None
    if not isinstance(report, dict) or not isinstance(report.get("rows"), list) or "models" not in report:
        raise InputError(f"{p} is not an edgekit bench report", hint="write one with `edgekit bench ... --json FILE`")
    return report


def report_model(report: dict[str, Any], origin: str = "the report") -> dict[str, Any]:
    """The one model a report is about; a report about several cannot be gated as one."""
    models = report.get("models") or {}
    if len(models) != 1:
        raise InputError(f"{origin} covers {len(models)} models; a baseline is about one",
                         hint="bench one model's export folder per report")
    return next(iter(models.values()))


def make_baseline(report: dict[str, Any]) -> dict[str, Any]:
    model = report_model(report)
    rows: dict[str, Any] = {}
    for r in report["rows"]:
        if r.get("is_reference") or r["status"] != "ok":
            continue
        lat = r.get("latency_ms") or {}
        rows[row_key(r)] = {
            "name": r["name"], "format": r["format"], "quant": r["quant"], "runtime": r["runtime"],
            "profile": r.get("profile", "host"), "accuracy": r.get("accuracy"), "agreement": r.get("agreement"),
            "latency_p50_ms": lat.get("p50"), "latency_cv": lat.get("cv"),
            "p50_cv": (r.get("repeats") or {}).get("p50_cv"), "size_bytes": r.get("size_bytes"),
            "estimate_ms": (r.get("estimate") or {}).get("latency_ms"),
            **({"metric": r["metric"]} if r.get("metric") else {}),
        }
        if r.get("outputs"):  # several outputs: each one's accuracy, so the gate compares them one by one
            rows[row_key(r)]["outputs"] = {n: {"accuracy": m.get("accuracy")} for n, m in r["outputs"].items()
                                           if m.get("accuracy") is not None}
    if not rows:
        raise InputError("The report has no row that ran; nothing to make a baseline of")
    return {
        "edgekit_baseline": BASELINE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "edgekit_version": edgekit.__version__,
        "machine": report.get("machine"),
        "settings": {k: report.get("settings", {}).get(k) for k in ("threads", "repeats", "profiles", "data")},
        "model": model,
        "rows": rows,
    }


def load_baseline(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"Baseline {p} does not exist",
                         hint=f"record one with `edgekit baseline REPORT --out {p}` or pass --update-baseline")
    try:
        b = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"Baseline {p} is not valid JSON ({e})") from None
    if not isinstance(b, dict) or b.get("edgekit_baseline") != BASELINE_VERSION or not isinstance(b.get("rows"), dict):
        raise InputError(f"{p} is not an edgekit baseline (version {BASELINE_VERSION})",
                         hint=f"record one with `edgekit baseline REPORT --out {p}`")
    return b


def check_same_model(baseline: dict[str, Any], model: dict[str, Any], origin: str) -> None:
    """Refuse a baseline made for another model: another task, input spec (every input, by name and
    shape: ``inputs``; baselines older than it carry the first input's shape alone), outputs or labels."""
    base = baseline.get("model") or {}
    for key, what in (("task", "task"), ("input_shape", "input shape"), ("inputs", "input spec"),
                      ("outputs", "number of outputs"), ("labels", "labels")):
        a, b = base.get(key), model.get(key)
        if a is not None and b is not None and _norm(a) != _norm(b):
            raise InputError(
                f"Baseline {origin} was made for another model: its {what} is {_show(a)}, this model's is {_show(b)}",
                hint="record a baseline for this model with `edgekit baseline REPORT --out FILE`",
            )


def _norm(v):
    if isinstance(v, dict):  # by tensor name
        return {k: _norm(x) for k, x in v.items()}
    return [(d if d else None) for d in v] if isinstance(v, list) and all(isinstance(x, (int, type(None))) for x in v) else v


def _show(v) -> str:
    if isinstance(v, list) and len(v) > 6:
        return f"[{', '.join(map(str, v[:5]))}, ... ({len(v)} in all)]"
    return str(v)
