"""The "which engine for the web" view of a bench report: per browser profile, every web engine's rows
side by side with what a web page pays for each (download, load, first inference, per-inference time)
and whether it still gives the source model's answers.

Download is what the page actually fetched in the run (the engine's JS and wasm, and the model),
gzip-compressed as a web server sends it; load is the engine's own start (wasm compiled, model
parsed) timed in the page; first inference and p50 are measured in the page; est. device ms is the
profile's estimate.

Example:
    >>> tables = web_engine_rows(report)            # doctest: +SKIP
    >>> web_verdict(tables["browser-mobile"])      # doctest: +SKIP
    'fastest (est.): model_int8.tflite on LiteRT.js ...'
"""

from __future__ import annotations

from typing import Any

ENGINES = {"tfjs-browser": "TF.js", "tfjs-browser-webgl": "TF.js (WebGL)", "litert-browser": "LiteRT.js",
           "ort-browser": "ONNX Runtime Web"}
WEB_COLUMNS = ["artifact", "quant", "engine", "download gzip (model + engine)", "load ms", "first ms", "p50 ms",
               "est. device ms", "agreement", "accuracy", "status"]


def web_engine_rows(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows of each browser profile run by a web engine, fastest estimate first."""
    kinds = {name: (p or {}).get("kind") for name, p in (report.get("profiles") or {}).items()}
    out: dict[str, list] = {}
    for r in report["rows"]:
        if r.get("is_reference") or r["runtime"] not in ENGINES or kinds.get(r.get("profile")) != "browser":
            continue
        out.setdefault(r["profile"], []).append(r)
    for rows in out.values():
        rows.sort(key=lambda r: (r["status"] != "ok", _est(r) if _est(r) is not None else float("inf")))
    return out


def _est(r: dict[str, Any]) -> float | None:
    return (r.get("estimate") or {}).get("latency_ms")


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def web_cells(r: dict[str, Any]) -> list[str]:
    d = r.get("download") or {}
    lat = r.get("latency_ms") or {}
    download = (f"{_mb(d.get('total_gzip_bytes'))} MB ({_mb(d.get('model_gzip_bytes'))} + {_mb(d.get('engine_gzip_bytes'))})"
                if d else "-")

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    return [r["name"], r["quant"], ENGINES[r["runtime"]], download, num(r.get("init_ms"), ".1f"), num(r.get("first_ms"), ".2f"),
            num(lat.get("p50"), ".4f"), "-" if _est(r) is None else f"~{_est(r):.3g}", num(r.get("agreement"), ".4f"),
            num(r.get("accuracy"), ".4f"), r["status"] if r["status"] == "ok" else f"failed: {r.get('error') or ''}"[:120]]


def web_verdict(rows: list[dict[str, Any]]) -> str:
    """One line: the fastest estimate, the smallest download, the quickest start, and who disagrees."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return "no web engine ran an artifact"

    def name(r):
        return f"{r['name']} on {ENGINES[r['runtime']]}"

    parts = []
    timed = [r for r in ok if _est(r) is not None]
    if timed:
        r = min(timed, key=_est)
        parts.append(f"fastest (est.): {name(r)} (~{_est(r):.3g} ms)")
    sized = [r for r in ok if (r.get("download") or {}).get("total_gzip_bytes")]
    if sized:
        r = min(sized, key=lambda r: r["download"]["total_gzip_bytes"])
        parts.append(f"smallest download: {name(r)} ({_mb(r['download']['total_gzip_bytes'])} MB gzip)")
    started = [r for r in ok if r.get("init_ms") is not None]
    if started:
        r = min(started, key=lambda r: r["init_ms"])
        parts.append(f"quickest start: {name(r)} ({r['init_ms']:.0f} ms)")
    off = [name(r) for r in ok if r.get("agreement") is not None and r["agreement"] < 0.99]
    if off:
        parts.append(f"below 0.99 agreement with the source: {', '.join(off)}")
    failed = [name(r) for r in rows if r["status"] != "ok"]
    if failed:
        parts.append(f"could not run: {', '.join(failed)}")
    return "; ".join(parts)


WEB_CAPTION = ("download: what the page fetched to run the model, gzip-compressed as a server sends it (model + the "
               "engine's JS and wasm); load: the engine's start in the page (wasm compiled, model parsed); first and "
               "p50: measured in the page on this host; est. device ms: the profile's estimate. int8 computes in int8 on "
               "LiteRT.js and ONNX Runtime Web; TF.js quantizes weights only (float32 compute).")
