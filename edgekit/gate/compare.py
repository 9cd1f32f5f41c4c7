"""The gate: hold a bench report to a baseline and to its own float source model, row by row.

Per (format, quant, runtime, profile):

- accuracy against the float source model in the same report (``max_accuracy_drop`` points);
- accuracy against the baseline (``max_accuracy_drop_vs_baseline`` points);
- top-1 agreement with the source (``min_agreement``, else edgekit's parity threshold for the quant);
- latency p50 against the baseline: at most ``max_latency_increase_pct``, widened to
  ``noise_sigmas`` x the combined coefficient of variation of both runs' repeats, so a noisy
  machine does not fail a change that did nothing, but never past :data:`NOISE_CAP` x the slack
  (a run with a coefficient of variation of 0.34 would otherwise let a 2x slowdown through). When both the report and the baseline timed
  the machine yardstick (``bench --yardstick``; ``check MODEL`` always does), latency is
  compared as a ratio to it, so a faster, slower or busier machine does not move the check;
- size against the baseline (``max_size_increase_pct``).

A row that fails on latency alone is a *suspect*: ``check MODEL`` measures it again and counts
the regression only when the rerun fails too (:func:`confirm_latency`), as pyperf and asv
advise: one slow measurement on a shared machine is not a slowdown.

A row in the baseline but not in the report is ``missing`` and fails; a row in the report but
not in the baseline is ``new``: it gets the checks that need no baseline and is reported as new.

Example:
    >>> result = run_check(report, baseline, Thresholds())   # doctest: +SKIP
    >>> result.exit_code                                      # doctest: +SKIP
    0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edgekit import status
from edgekit.gate.baseline import row_key
from edgekit.gate.thresholds import Thresholds
from edgekit.parity import THRESHOLDS

NOISE_CAP = 2.0  # recorded noise widens the latency slack at most to this many times the configured slack


@dataclass
class Check:
    name: str
    ok: bool
    value: str
    limit: str
    message: str = ""


@dataclass
class RowResult:
    key: str
    name: str
    status: str  # pass | fail | new | missing
    checks: list[Check] = field(default_factory=list)
    row: dict[str, Any] | None = None
    base: dict[str, Any] | None = None
    note: str = ""  # what a rerun found, when there was one

    @property
    def failures(self) -> list[str]:
        return [c.message for c in self.checks if not c.ok]


@dataclass
class CheckResult:
    rows: list[RowResult]
    thresholds_source: str
    yardstick_scale: float | None = None  # this machine's yardstick time / the baseline's

    @property
    def passed(self) -> bool:
        return all(r.status in (status.PASS, status.NEW) for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.status] = out.get(r.status, 0) + 1
        return out


def yardstick_scale(report: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    """How much slower this machine ran the yardstick than the baseline's did (2.0: twice as slow), or None."""
    now = ((report.get("machine") or {}).get("yardstick") or {}).get("p50_ms")
    then = ((baseline.get("machine") or {}).get("yardstick") or {}).get("p50_ms")
    return now / then if now and then else None


def run_check(report: dict[str, Any], baseline: dict[str, Any], thresholds: Thresholds) -> CheckResult:
    scale = yardstick_scale(report, baseline)
    refs = {r.get("source"): r for r in report["rows"] if r.get("is_reference") and r["status"] == "ok"}
    seen: set[str] = set()
    results: list[RowResult] = []
    for r in report["rows"]:
        if r.get("is_reference"):
            continue
        key = row_key(r)
        seen.add(key)
        base = baseline["rows"].get(key)
        results.append(_check_row(r, base, refs.get(r.get("source")), thresholds.for_row(r), key, scale))
    for key, base in baseline["rows"].items():
        if key not in seen:
            results.append(RowResult(key, base.get("name", key), status.MISSING, [Check(
                "present", False, "absent", "in the report",
                f"{base.get('name', key)} on {base['runtime']} ({base['profile']}) is in the baseline but not in this report")],
                base=base))
    return CheckResult(results, thresholds.source, scale)


def _check_row(r: dict, base: dict | None, ref: dict | None, t: dict, key: str, scale: float | None = None) -> RowResult:
    who = f"{r['name']} on {r['runtime']} ({r.get('profile', 'host')})"
    checks: list[Check] = []
    if r["status"] != "ok":
        checks.append(Check("ran", False, "failed", "ok", f"{who} did not run: {r.get('error')}"))
        return RowResult(key, r["name"], status.FAIL, checks, r, base)
    acc = r.get("accuracy")
    what = r.get("metric", "accuracy")  # a detector's row: its mAP@0.5
    if r.get("outputs"):  # several outputs: every labelled output on its own, against the float model and the baseline
        checks += _output_checks(who, r, ref, base, t)
    elif acc is not None and ref is not None and ref.get("accuracy") is not None:
        drop = (ref["accuracy"] - acc) * 100
        checks.append(Check("accuracy vs float", drop <= t["max_accuracy_drop"], f"{round(-drop, 2) + 0.0:+.2f} pt",
                            f">= -{t['max_accuracy_drop']:g} pt",
                            f"{who}: {what} {acc:.4f} is {drop:.2f} points below the float model's {ref['accuracy']:.4f} "
                            f"(allowed {t['max_accuracy_drop']:g})"))
    if r.get("agreement") is not None:
        need = t["min_agreement"] if t["min_agreement"] is not None else THRESHOLDS.get(r["quant"], THRESHOLDS["int8"])["top1_agreement"]
        checks.append(Check("agreement", r["agreement"] >= need, f"{r['agreement']:.4f}", f">= {need:g}",
                            f"{who}: {'detections matched to' if what != 'accuracy' else 'top-1 agreement with'} the source "
                            f"{r['agreement']:.4f} < {need:g}"))
    if base is not None:
        if acc is not None and base.get("accuracy") is not None and not r.get("outputs"):
            drop = (base["accuracy"] - acc) * 100
            checks.append(Check("accuracy vs baseline", drop <= t["max_accuracy_drop_vs_baseline"], f"{round(-drop, 2) + 0.0:+.2f} pt",
                                f">= -{t['max_accuracy_drop_vs_baseline']:g} pt",
                                f"{who}: {what} {acc:.4f} is {drop:.2f} points below the baseline's {base['accuracy']:.4f} "
                                f"(allowed {t['max_accuracy_drop_vs_baseline']:g})"))
        p50 = (r.get("latency_ms") or {}).get("p50")
        if p50 and base.get("latency_p50_ms"):
            cv_new = (r.get("repeats") or {}).get("p50_cv") or 0.0
            cv_base = base.get("p50_cv") or 0.0
            noise = t["noise_sigmas"] * math.hypot(cv_new, cv_base) * 100
            # noise widens the slack, at most to NOISE_CAP x it: however noisy a run, it cannot widen its own
            # allowance until a 2x slowdown passes (unless the configured slack itself allows that)
            allowed = max(t["max_latency_increase_pct"], min(noise, NOISE_CAP * t["max_latency_increase_pct"]))
            change = (p50 / (base["latency_p50_ms"] * (scale or 1.0)) - 1) * 100
            capped = noise > NOISE_CAP * t["max_latency_increase_pct"]
            why = (f" (widened from {t['max_latency_increase_pct']:g}% by the noise both runs recorded"
                   f"{f', capped at {NOISE_CAP:g}x the slack' if capped else ''})") if noise > t["max_latency_increase_pct"] else ""
            against = (f"the baseline's {base['latency_p50_ms']:.4g} ms x {scale:.3g} (this machine ran the yardstick "
                       f"{scale:.3g}x as long)") if scale else f"the baseline's {base['latency_p50_ms']:.4g} ms"
            checks.append(Check("latency vs baseline", change <= allowed, f"{change:+.1f}%", f"<= +{allowed:.1f}%",
                                f"{who}: p50 {p50:.4g} ms is {change:+.1f}% against {against} (allowed +{allowed:.1f}%{why})"))
        size, bsize = r.get("size_bytes"), base.get("size_bytes")
        if size and bsize:
            change = (size / bsize - 1) * 100
            checks.append(Check("size vs baseline", change <= t["max_size_increase_pct"], f"{change:+.1f}%",
                                f"<= +{t['max_size_increase_pct']:g}%",
                                f"{who}: size {size} B is {change:+.1f}% against the baseline's {bsize} B "
                                f"(allowed +{t['max_size_increase_pct']:g}%)"))
    failed = any(not c.ok for c in checks)
    verdict = status.FAIL if failed else (status.NEW if base is None else status.PASS)
    return RowResult(key, r["name"], verdict, checks, r, base)


def _output_checks(who: str, r: dict, ref: dict | None, base: dict | None, t: dict) -> list[Check]:
    """Accuracy of each labelled output against the float source's in the same report and against the baseline."""
    checks = []
    for name, m in r["outputs"].items():
        acc = m.get("accuracy")
        if acc is None:
            continue
        for label, other, limit in (("float", ((ref or {}).get("outputs") or {}).get(name), t["max_accuracy_drop"]),
                                    ("baseline", ((base or {}).get("outputs") or {}).get(name),
                                     t["max_accuracy_drop_vs_baseline"])):
            if not other or other.get("accuracy") is None:
                continue
            drop = (other["accuracy"] - acc) * 100
            whose = "the float model's" if label == "float" else "the baseline's"
            checks.append(Check(f"accuracy of '{name}' vs {label}", drop <= limit, f"{round(-drop, 2) + 0.0:+.2f} pt",
                                f">= -{limit:g} pt",
                                f"{who}: output '{name}' accuracy {acc:.4f} is {drop:.2f} points below {whose} "
                                f"{other['accuracy']:.4f} (allowed {limit:g})"))
    return checks


def latency_suspects(result: CheckResult) -> list[RowResult]:
    """The rows that failed on latency and on nothing else: worth measuring again before calling it a regression."""
    return [r for r in result.rows if r.status == status.FAIL and r.row is not None and r.checks
            and all(c.ok or c.name == "latency vs baseline" for c in r.checks)]


def confirm_latency(result: CheckResult, rerun: dict[str, Any], baseline: dict[str, Any],
                    thresholds: Thresholds) -> CheckResult:
    """Hold every latency suspect to a second, independent measurement (``rerun``, a bench report of
    the same artifacts with its own yardstick): a regression both runs show stays one; one the rerun
    does not show passes, with the rerun's row and a note saying what happened."""
    suspects = {r.key for r in latency_suspects(result)}
    again = {r.key: r for r in run_check(rerun, baseline, thresholds).rows if r.row is not None}
    rows = []
    for r in result.rows:
        second = again.get(r.key) if r.key in suspects else None
        if second is None:
            rows.append(r)
            continue
        first, then = _latency_change(r), _latency_change(second)
        if second.status == status.FAIL:
            r.note = f"confirmed by a rerun: {first} then {then}"
            for c in r.checks:
                if c.name == "latency vs baseline" and not c.ok:
                    c.message += f"; a rerun measured {then} (confirmed)"
            rows.append(r)
        else:
            second.note = f"latency {first} on the first run, {then} on a rerun: not a regression"
            rows.append(second)
    return CheckResult(rows, result.thresholds_source, result.yardstick_scale)


def _latency_change(r: RowResult) -> str:
    return next((c.value for c in r.checks if c.name == "latency vs baseline"), "?")
