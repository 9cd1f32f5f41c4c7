"""``edgekit bench``: run every target in its own worker process and build the report.

Each row: size, accuracy (when the data has labels), agreement with the source model
(measured here, on the same inputs), latency p50/p90/p99/mean/std, init and first-run
time, and peak memory of the worker process.

Example:
    >>> report = run_bench(["runs/demo/export"], data="builtin:digits")   # doctest: +SKIP
    >>> report["rows"][0]["runtime"], report["rows"][1]["quant"]          # doctest: +SKIP
    ('keras', 'fp32')
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import edgekit
from edgekit.bench.targets import BenchTarget, resolve_targets, source_target
from edgekit.data import load_data
from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import InputError, ShapeError, UsageError
from edgekit.parity import compare
from edgekit.reports.machine import machine_info
from edgekit.runtimes.isolated import run_isolated
from edgekit.shapes import fits

GENERATED_SAMPLES = 64


def run_bench(
    artifacts: list[str],
    *,
    data: str | None = None,
    runs: int = 100,
    warmup: int = 10,
    min_time_s: float = 0.5,
    threads: int | None = 1,
    samples: int = 1000,
    reference: bool = True,
    timeout_s: float = 300.0,
    runtimes: list[str] | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Benchmark ``artifacts`` on this host; returns the report (see docs/reports.md)."""
    for flag, v in (("--runs", runs), ("--samples", samples)):
        if v < 1:
            raise UsageError(f"{flag} must be at least 1, got {v}")
    if warmup < 0 or min_time_s < 0:
        raise UsageError("--warmup and --min-time must be >= 0")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    targets = resolve_targets(artifacts, runtimes)
    if reference:
        targets = _with_references(targets)
    inputs_cache: dict[str, tuple] = {}
    prepared = [(t, _eval_inputs(t, data, samples, inputs_cache, timeout_s)) for t in targets]
    timing = {"warmup": warmup, "runs": runs, "min_time_s": min_time_s}
    rows: list[dict[str, Any]] = []
    ref_outputs: dict[str, np.ndarray] = {}
    t_start = time.perf_counter()
    for target, (x, y, data_note) in prepared:
        log(f"running {target.name} on {target.runtime}")
        result = run_isolated(target.runtime, target.path, x, threads=threads, timing=timing, timeout_s=timeout_s)
        row = _row(target, result, threads, data_note)
        if result.ok:
            out = result.outputs
            if y is not None:
                if out.ndim == 2 and y.max() >= out.shape[1]:
                    raise InputError(
                        f"Data labels go up to {int(y.max())} but {target.name} has {out.shape[1]} outputs",
                        hint="bench with the data set the model was trained on",
                    )
                row["accuracy"] = round(float((out.argmax(axis=1) == y).mean()), 5)
            if target.is_reference:
                ref_outputs[_key(target.source)] = out
            elif target.source and _key(target.source) in ref_outputs:
                p = compare(ref_outputs[_key(target.source)], out)
                row.update(agreement=p["top1_agreement"], max_abs_diff=p["max_abs_diff"], cosine=p["cosine"])
        rows.append(row)
    _add_ratios(rows)
    return {
        "edgekit_version": edgekit.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": {"threads": threads, "runs": runs, "warmup": warmup, "min_time_s": min_time_s,
                     "samples": samples, "data": data, "profile": "host", "runtimes": runtimes},
        "seconds": round(time.perf_counter() - t_start, 2),
        "rows": rows,
        "notes": _notes(rows),
    }


def _key(path: str | None) -> str:
    return str(Path(path).resolve()) if path else ""


def _with_references(targets: list[BenchTarget]) -> list[BenchTarget]:
    """Put each artifact's source model first, as the reference row, when it is on disk."""
    have = {_key(t.source) for t in targets if t.is_reference}
    out: list[BenchTarget] = [t for t in targets if t.is_reference]
    for t in targets:
        if not t.is_reference and t.source and _key(t.source) not in have and Path(t.source).exists():
            out.append(source_target(Path(t.source)))
            have.add(_key(t.source))
    order = {k: i for i, k in enumerate(_key(t.source) for t in out)}
    rest = sorted((t for t in targets if not t.is_reference), key=lambda t: order.get(_key(t.source), len(order)))
    return out + rest


def _eval_inputs(target: BenchTarget, data: str | None, samples: int, cache: dict, timeout_s: float):
    """Prepared inputs (and labels) for a target: DATA, else the run's own data, else generated."""
    run = target.run or {}
    spec = data or (run.get("data") or {}).get("spec")
    shape = target.input_shape
    if shape is None:
        shape = _describe_shape(target, timeout_s)
        target.input_shape = shape
    shape = tuple(shape)
    prep_dict = run.get("preprocessing")
    key = json.dumps([spec, prep_dict, list(shape)], default=str)
    if key in cache:
        return cache[key]
    if spec is None:
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, size=(GENERATED_SAMPLES, *[d or 1 for d in shape])).astype(np.float32)
        cache[key] = (x, None, f"generated uniform(0,1), {GENERATED_SAMPLES} samples")
        return cache[key]
    image_size = (prep_dict or {}).get("image_size")
    ds = load_data(spec, image_size=image_size[0] if image_size else None)
    prep = Preprocessing.from_dict(prep_dict) if prep_dict else ds.preprocessing
    x = ds.prepared("test", prep)[:samples]
    got = tuple(x.shape[1:])
    if not fits(shape, got):
        raise ShapeError(f"Data {spec} has samples of shape {got}, but {target.name} takes {shape}",
                         hint="pass data shaped like the model's input")
    y = ds.y_test[:samples] if ds.has_labels else None
    cache[key] = (x, y, f"{spec} (test split, {len(x)} samples)")
    return cache[key]


def _describe_shape(target: BenchTarget, timeout_s: float) -> list:
    r = run_isolated(target.runtime, target.path, None, timeout_s=timeout_s)
    if not r.ok:
        raise InputError(f"{target.path} cannot be loaded: {r.error}")
    info = r.reply.get("artifact_info", {})
    if target.quant == "?":
        target.quant = info.get("quant_guess", "?")
    return [d if d and d > 0 else None for d in info["input_shape"][1:]]


def _row(target: BenchTarget, result, threads, data_note) -> dict[str, Any]:
    reply = result.reply or {}
    info = reply.get("artifact_info", {})
    row: dict[str, Any] = {
        "name": target.name,
        "artifact": str(target.path),
        "format": target.format,
        "quant": target.quant,
        "runtime": target.runtime,
        "runtime_version": reply.get("runtime_version"),
        "profile": "host",
        "threads": threads,
        "size_bytes": target.size_bytes,
        "status": "ok" if result.ok else "failed",
        "error": result.error,
        "data": data_note,
        "input_dtype": info.get("input_dtype"),
        "backend": info.get("backend"),
        "gpu": info.get("gpu"),
        "accuracy": None,
        "agreement": None,
        "max_abs_diff": None,
        "cosine": None,
        "latency_ms": reply.get("latency_ms"),
        "init_ms": reply.get("init_ms"),
        "first_ms": reply.get("first_ms"),
        "peak_rss_mb": reply.get("peak_rss_mb"),
        "is_reference": target.is_reference,
        "source": target.source,
    }
    return row


def _add_ratios(rows: list[dict]) -> None:
    """size_ratio and speedup against the fp32 artifact of the same source, format and runtime."""
    base = {(r["source"], r["format"], r["runtime"]): r for r in rows
            if r["quant"] == "fp32" and r["status"] == "ok" and not r["is_reference"]}
    for r in rows:
        b = base.get((r["source"], r["format"], r["runtime"]))
        r["size_ratio"] = round(r["size_bytes"] / b["size_bytes"], 3) if b and b["size_bytes"] else None
        if b and r["status"] == "ok" and r["latency_ms"] and b["latency_ms"]:
            r["speedup"] = round(b["latency_ms"]["p50"] / r["latency_ms"]["p50"], 3)
        else:
            r["speedup"] = None


WEIGHT_ONLY = {("tfjs", "fp16"), ("tfjs", "uint8")}


def _notes(rows: list[dict]) -> list[str]:
    notes = []
    if any((r["format"], r["quant"]) in WEIGHT_ONLY for r in rows):
        notes.append("TF.js fp16 and uint8 quantize weights only: they are dequantized to float32 at load and compute "
                     "stays float32, so they gain download size, not speed; check their accuracy and agreement.")
    for r in rows:
        if r["status"] != "ok":
            notes.append(f"{r['name']} ({r['runtime']}) failed: {r['error']}")
        elif (r.get("gpu") or "").startswith("software"):
            notes.append(f"{r['name']} ({r['runtime']}): WebGL ran on {r['gpu']}; its latency is a software "
                         "renderer's, not a GPU's.")
        elif (r["format"], r["quant"]) in WEIGHT_ONLY:
            continue
        elif r["quant"] != "fp32" and r.get("speedup") is not None and r["speedup"] < 0.95:
            notes.append(
                f"{r['name']}: {r['quant']} is slower than fp32 on this machine with {r['runtime']} "
                f"({r['latency_ms']['p50']:.4g} ms vs {r['latency_ms']['p50'] * r['speedup']:.4g} ms p50); "
                "its gain here is size, not speed."
            )
    return notes
