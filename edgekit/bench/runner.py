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

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import edgekit
from edgekit import status
from edgekit.bench.inputs import ArtifactLoadError, eval_inputs
from edgekit.bench.metrics import detection_metrics, output_metrics
from edgekit.bench.notes import add_ratios, row_notes
from edgekit.bench.paired import paired_ratio
from edgekit.bench.plan import Job, Unit, plan
from edgekit.bench.targets import BenchTarget, resolve_targets, runtime_hint, source_target
from edgekit.errors import InputError, RuntimeFailure, UsageError
from edgekit.io_spec import as_named, take
from edgekit.parity import compare, is_detections
from edgekit.reports.machine import machine_info
from edgekit.runtimes.isolated import WorkerResult, run_isolated


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
    profiles: str | list = "host",
    repeats: int = 3,
    yardstick: bool = False,
    device=None,
    ops: int = 0,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Benchmark ``artifacts`` on this host for each device profile; returns the report (docs/reports.md).

    Every (artifact, runtime, threads) is measured ``repeats`` times, interleaved with the
    others so that machine noise shows as spread; each repeat is a fresh worker process.
    ``yardstick``: also time the machine yardstick (a fixed small network, LiteRT, 1 thread) in
    every repeat, into ``machine.yardstick``, so that the gate can compare latency across machines.
    ``device``: a :class:`edgekit.agent.client.RemoteDevice`: every artifact is measured there by its
    agent (the source model's reference row stays here), rows are labelled ``measured_on`` it, and
    where a profile estimates, the same artifacts are also measured here for the estimate, which the
    device row shows beside its measurement with ``estimate_error_pct``.
    ``ops``: also profile every artifact per operator over this many runs (edgekit.profiling), each
    in a worker of its own after the measurements, into ``row["ops"]``; 0: no profiles.
    """
    from edgekit.device_profiles import load_profiles

    for flag, v in (("--runs", runs), ("--samples", samples), ("--repeats", repeats)):
        if v < 1:
            raise UsageError(f"{flag} must be at least 1, got {v}")
    if warmup < 0 or min_time_s < 0:
        raise UsageError("--warmup and --min-time must be >= 0")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    profile_list = load_profiles(profiles) if isinstance(profiles, str) else list(profiles)
    targets = resolve_targets(artifacts, runtimes, expand=False)
    if reference:
        targets = _with_references(targets)
    jobs, plan_notes = plan(targets, profile_list, threads=threads, runtimes=runtimes,
                            cores=device.info.get("cores") if device else None)
    if not any(not j.target.is_reference for j in jobs):
        if runtimes:
            raise InputError(f"None of the artifacts runs on {', '.join(runtimes)}", hint=runtime_hint(targets))
        raise InputError(f"No artifact can run on {', '.join(p.name for p in profile_list)}", hint="; ".join(plan_notes))
    inputs_cache: dict[str, tuple] = {}
    prepared, unloadable = {}, {}
    for j in jobs:
        if id(j.target) in prepared or id(j.target) in unloadable:
            continue
        try:
            prepared[id(j.target)] = eval_inputs(j.target, data, samples, inputs_cache, timeout_s)
        except ArtifactLoadError as e:  # a corrupt file among good ones: its row fails, the others are measured
            unloadable[id(j.target)] = e
    if unloadable and all(id(j.target) in unloadable for j in jobs if not j.target.is_reference):
        raise next(iter(unloadable.values()))  # nothing to measure: bad input, one line
    for key in unloadable:
        prepared[key] = (None, None, "not loaded")
    per_repeat = {"warmup": warmup, "runs": runs, "min_time_s": min_time_s / repeats}
    units: dict[Unit, Job] = {}
    for j in jobs:
        units.setdefault(j.unit, j)
    calibration = _calibration_units(jobs, timeout_s, log) if device is None else {}
    stick = _yardstick_unit(log) if yardstick and device is None else None
    if stick:
        calibration[stick[0]] = stick[1]
    t_start = time.perf_counter()
    results: dict[Unit, list] = {u: [] for u in [*units, *calibration]}
    for u, job in units.items():
        if id(job.target) in unloadable:
            results[u].append(WorkerResult(ok=False, error=str(unloadable[id(job.target)].message),
                                           error_type="ModelLoadError"))
    def measured(r: int, job: Job) -> bool:  # the reference row is measured once: it is not what is being compared
        return not ((job.target.is_reference and r > 0) or id(job.target) in unloadable)

    total, done = sum(measured(r, job) for r in range(repeats) for job in units.values()), 0
    for r in range(repeats):
        for u, job in units.items():
            if not measured(r, job):
                continue
            x = prepared[id(job.target)][0]
            remote = device is not None and not job.target.is_reference
            where = f" on {device.info.get('name')}" if remote else ""
            left = _time_left(time.perf_counter() - t_start, done, total)
            done += 1
            log(f"[{done}/{total}] running {job.target.name} on {job.target.runtime}{where} ({_threads(job.threads)}, "
                f"repeat {r + 1}/{repeats}){left}")
            measure = device.run if remote else run_isolated
            results[u].append(measure(job.target.runtime, job.target.path, x, threads=job.threads, timing=per_repeat,
                                      want_outputs=(r == 0), timeout_s=timeout_s, pin_cpus=job.profile.kind != "host"))
        for u, (x, calib_timing) in calibration.items():
            results[u].append(run_isolated(u[1], u[0], x, threads=u[2], timing=calib_timing, want_outputs=False,
                                           timeout_s=timeout_s, pin_cpus=not stick or u != stick[0]))  # as host rows
    rows = _rows(jobs, results, prepared, calibration, device=device)
    if ops:
        _profile_rows(jobs, rows, prepared, ops, timeout_s, device, log)
    add_ratios(rows)
    notes = plan_notes + row_notes(rows)
    if device is not None:
        notes += _estimates_beside_measurements(rows, profile_list, artifacts, dict(
            data=data, runs=runs, warmup=warmup, min_time_s=min_time_s, threads=threads, samples=samples,
            timeout_s=timeout_s, runtimes=runtimes, repeats=repeats, reference=False, log=log))
    machine = machine_info()
    if stick:
        p50s = [r.reply["latency_ms"]["p50"] for r in results[stick[0]] if r.ok and r.reply.get("latency_ms")]
        if p50s:
            machine["yardstick"] = {"workload": stick[2], "runtime": "litert", "threads": 1,
                                    "p50_ms": float(np.median(p50s)), "p50s_ms": p50s}
    return {
        "edgekit_version": edgekit.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "settings": {"threads": threads, "runs": runs, "warmup": warmup, "min_time_s": min_time_s, "repeats": repeats,
                     "samples": samples, "data": data, "profiles": [p.name for p in profile_list], "runtimes": runtimes},
        "profiles": {p.name: p.to_dict() for p in profile_list},
        "seconds": round(time.perf_counter() - t_start, 2),
        "rows": rows,
        "models": _models(jobs, results),
        "notes": notes,
        **({"device": {**device.info, "url": getattr(device, "base_url", device.url), "uploads": device.uploads}}
           if device is not None else {}),
    }


def _models(jobs: list[Job], results: dict) -> dict[str, dict[str, Any]]:
    """What each source model is (task, input spec, labels, outputs): what a baseline must match."""
    out: dict[str, dict[str, Any]] = {}
    for j in jobs:
        key = str(j.target.source or j.target.path)
        run = j.target.run or {}
        first = results[j.unit][0]
        outs = first.outputs if first.ok else None
        if outs is not None and len(outs) > 1:
            n_out = {k: list(v.shape[1:]) for k, v in outs.items()}
        else:
            one = next(iter(outs.values())) if outs else None
            n_out = int(one.shape[-1]) if one is not None and one.ndim >= 2 else None
        io = (first.reply.get("artifact_info") or {}).get("io") if first.ok else None
        inputs = {t["name"]: [d or None for d in t["shape"][1:]] for t in io["inputs"]} if io else None
        info = out.setdefault(key, {"task": run.get("task"), "input_shape": j.target.input_shape, "inputs": inputs,
                                    "labels": run.get("labels"), "outputs": n_out})
        for k, v in (("outputs", n_out), ("inputs", inputs)):
            if info[k] is None:
                info[k] = v
    return out


def _calibration_units(jobs: list[Job], timeout_s: float, log) -> dict[Unit, tuple]:
    """The reference workloads each estimating profile needs, measured in this run on this host.
    Sets ``job.calibration`` to the unit its estimate divides by."""
    from edgekit.device_profiles.calibration import (
        REFERENCE_TIMING,
        SHAPES,
        reference_artifact,
        reference_format,
        reference_quant,
    )

    units: dict[Unit, tuple] = {}
    timing = REFERENCE_TIMING
    built: dict[tuple, str] = {}
    for j in jobs:
        p = j.profile
        if not p.estimates or j.target.is_reference:
            continue
        ref = p.throughput.reference
        fmt = reference_format(p)
        quant = reference_quant(j.target.format, j.target.quant, p)
        if (ref.workload, fmt, quant) not in built:
            log(f"calibrating: {ref.workload} {quant} ({fmt}) for {p.name}")
            built[(ref.workload, fmt, quant)] = str(reference_artifact(ref.workload, fmt, quant))
        j.calibration = (built[(ref.workload, fmt, quant)], ref.runtime, j.threads)
        x = np.random.default_rng(0).uniform(-1, 1, size=(1, *SHAPES[ref.workload])).astype(np.float32)
        units[j.calibration] = (x, timing)
    return units


def _yardstick_unit(log) -> tuple:
    """The machine yardstick as a measurement unit: (unit, (input, timing), workload name)."""
    from edgekit.device_profiles.calibration import SHAPES, YARDSTICK, reference_artifact

    log(f"yardstick: {YARDSTICK} (LiteRT, 1 thread)")
    path = str(reference_artifact(YARDSTICK, "tflite", "fp32"))
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, *SHAPES[YARDSTICK])).astype(np.float32)
    return (path, "litert", 1), (x, {"warmup": 5, "runs": 50, "min_time_s": 0.2}), YARDSTICK


def _median_result(results: list):
    ok = [r for r in results if r.ok and r.reply.get("latency_ms")]
    if not ok:
        return results[0] if results else None
    return sorted(ok, key=lambda r: r.reply["latency_ms"]["p50"])[len(ok) // 2]


def _rows(jobs: list[Job], results: dict, prepared: dict, calibration: dict, device=None) -> list[dict[str, Any]]:
    from edgekit.bench.estimate import checks, estimate_row, verdict

    rows: list[dict[str, Any]] = []
    ref_outputs: dict[str, np.ndarray] = {}
    for j in jobs:
        reps = results[j.unit]
        first = reps[0]
        x, labels, data_note = prepared[id(j.target)]
        shown = _median_result(reps) if first.ok else first
        row = _row(j.target, shown, j.threads, data_note)
        row["profile"] = j.profile.name
        p50s = [r.reply["latency_ms"]["p50"] for r in reps if r.ok and r.reply.get("latency_ms")]
        row["repeats"] = {"p50_ms": p50s, "p50_cv": _cv(p50s)} if len(p50s) > 1 else None
        row["peak_rss_mb"] = max((r.reply.get("peak_rss_mb") or 0 for r in reps if r.ok), default=None) or row["peak_rss_mb"]
        row["macs"] = (shown.reply or {}).get("artifact_info", {}).get("macs") or j.target.macs
        if first.ok and is_detections(first.outputs):  # a detector: mAP where a classifier has accuracy
            out = first.outputs
            ref = None if j.target.is_reference else ref_outputs.get(_key(j.target.source))
            if j.target.is_reference:
                ref_outputs[_key(j.target.source)] = out
            row.update(detection_metrics(out, labels, ref))
        elif first.ok and len(first.outputs) > 1:  # several outputs: metrics per output, the worst on the row
            out = first.outputs
            ref = None if j.target.is_reference else ref_outputs.get(_key(j.target.source))
            if j.target.is_reference:
                ref_outputs[_key(j.target.source)] = out
            row["outputs"] = output_metrics(out, labels, ref)
            accs = [m["accuracy"] for m in row["outputs"].values() if "accuracy" in m]
            row["accuracy"] = min(accs) if accs else None
            if ref is not None:
                p = compare(ref, out)
                row.update(agreement=p["top1_agreement"], max_abs_diff=p["max_abs_diff"], cosine=p["cosine"],
                           worst_output=p["worst_output"])
        elif first.ok:
            out, y = first.output, (labels or {}).get("y")
            if y is not None:
                if out.ndim == 2 and y.max() >= out.shape[1]:
                    raise InputError(
                        f"Data labels go up to {int(y.max())} but {j.target.name} has {out.shape[1]} outputs",
                        hint="bench with the data set the model was trained on",
                    )
                row["accuracy"] = round(float((out.argmax(axis=1) == y).mean()), 5)
            if j.target.is_reference:
                ref_outputs[_key(j.target.source)] = out
            elif j.target.source and _key(j.target.source) in ref_outputs:
                p = compare(ref_outputs[_key(j.target.source)], out)
                row.update(agreement=p["top1_agreement"], max_abs_diff=p["max_abs_diff"], cosine=p["cosine"])
        if device is not None and not j.target.is_reference:
            row["measured_on"] = {"device": device.info.get("name"), "cpu": device.info.get("cpu"),
                                  "cores": device.info.get("cores"), "url": getattr(device, "base_url", device.url)}
        elif j.profile.estimates and not j.target.is_reference and row["status"] == "ok":
            cal_results = results.get(j.calibration, [])
            cal = [r for r in cal_results if r.ok]
            if cal:
                host, host_ref = row["latency_ms"]["p50"], float(np.median([r.reply["latency_ms"]["p50"] for r in cal]))
                paired = None
                if j.profile.kind == "mcu" and j.target.quant == "int8":  # timed against the reference in pairs
                    try:
                        paired = paired_ratio(j.target.path, j.calibration[0], take(x, 0, 1),
                                              as_named(calibration[j.calibration][0]))
                        host, host_ref = paired["ratio"] * paired["reference_ms"], paired["reference_ms"]
                    except RuntimeFailure as e:
                        paired = {"error": e.message}
                row["estimate"] = estimate_row(host, macs=row["macs"], quant=j.target.quant,
                                               fmt=j.target.format, profile=j.profile, host_ref_ms=host_ref,
                                               runtime=j.target.runtime)
                if paired is not None:
                    row["estimate"]["paired"] = paired
            else:
                err = next((r.error for r in cal_results if not r.ok), "not measured")
                row["estimate"] = {"kind": "estimate", "latency_ms": None, "error": f"calibration failed: {err}"}
        if j.profile.kind != "host" or j.profile.memory_mb or j.profile.latency_budget_ms:
            row["checks"] = checks(row, j.profile)
            row["verdict"] = verdict(row)
        rows.append(row)
    return rows


def _time_left(elapsed_s: float, done: int, total: int) -> str:
    """``", about 3 min left"`` once a measurement has finished (the mean so far times those left)."""
    if done < 1:
        return ""
    left = elapsed_s / done * (total - done)
    return f", about {left:.0f} s left" if left < 90 else f", about {left / 60:.0f} min left"


def _profile_rows(jobs: list[Job], rows: list[dict], prepared: dict, runs: int, timeout_s: float, device, log) -> None:
    """``row["ops"]`` for every artifact row: its per-operator profile, one worker per (artifact, runtime,
    threads), never the workers whose timings the row reports."""
    from edgekit.profiling import profile_isolated
    from edgekit.profiling.table import op_table

    done: dict = {}
    # a row that failed to run is profiled too: up to where its model stops (TF.js), or the reason in one line
    todo = [(j, row) for j, row in zip(jobs, rows, strict=True) if not j.target.is_reference]
    for k, (j, row) in enumerate(todo, 1):
        if device is not None:
            row["ops"] = {"status": "unavailable", "error": "per-operator profiles are made on this host, not through an agent"}
            continue
        if j.unit not in done:
            log(f"[{k}/{len(todo)}] profiling {j.target.name} on {j.target.runtime} ({_threads(j.threads)})")
            done[j.unit] = profile_isolated(j.target.runtime, j.target.path, prepared[id(j.target)][0],
                                            threads=j.threads, runs=runs, timeout_s=timeout_s)
        prof = done[j.unit]
        if prof["status"] != "ok":
            row["ops"] = prof
            continue
        est = row.get("estimate") or {}
        row["ops"] = op_table({**prof, "runs": runs}, whole_ms=(row.get("latency_ms") or {}).get("p50"), layers=j.target.layers,
                              factor=est.get("factor") if est.get("latency_ms") else None)


def _estimates_beside_measurements(rows: list[dict], profiles, artifacts, settings: dict) -> list[str]:
    """For device rows of a profile that estimates: the same artifacts measured here, the profile's
    estimate put beside the device's measurement, and how far off it was (percent of the measurement)."""
    estimating = [p for p in profiles if p.estimates]
    if not estimating or not any(r.get("measured_on") for r in rows):
        return []
    local = run_bench(artifacts, profiles=estimating, **settings)
    by = {(r["artifact"], r["runtime"], r["profile"]): r for r in local["rows"]}
    notes = []
    for r in rows:
        mine = by.get((r["artifact"], r["runtime"], r["profile"]))
        est = ((mine or {}).get("estimate") or {}).get("latency_ms")
        measured = (r.get("latency_ms") or {}).get("p50")
        if r.get("measured_on") and est is not None and measured:
            r["estimate"] = mine["estimate"]
            r["estimate_error_pct"] = round((est - measured) / measured * 100, 1)
    errs = [abs(r["estimate_error_pct"]) for r in rows if r.get("estimate_error_pct") is not None]
    if errs:
        spread = f"{min(errs):.0f}%" if round(min(errs)) == round(max(errs)) else f"{min(errs):.0f}-{max(errs):.0f}%"
        who = next(r["measured_on"]["device"] for r in rows if r.get("measured_on"))
        notes.append(f"the profile's estimates were off by {spread} from what {who} measured "
                     f"(median {float(np.median(errs)):.0f}%; `edgekit profiles calibrate` measures the reference there)")
    return notes


def _cv(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    a = np.asarray(values, dtype=np.float64)
    return float(f"{a.std(ddof=1) / a.mean():.4g}") if a.mean() > 0 else None


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
        "status": status.OK if result.ok else status.FAILED,
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
        "latency_histogram": reply.get("latency_histogram"),
        "init_ms": reply.get("init_ms"),
        "first_ms": reply.get("first_ms"),
        "peak_rss_mb": reply.get("peak_rss_mb"),
        "download": _download(info),
        "arena": info.get("arena"),  # TFLite Micro: the tensor arena the model needs
        "is_reference": target.is_reference,
        "source": target.source,
    }
    return row


def _download(info: dict[str, Any]) -> dict[str, int] | None:
    """What a browser page downloaded to run the artifact (engine + model, raw and gzip)."""
    if not info.get("downloads"):
        return None
    from edgekit.runtimes.browser import download_sizes

    return download_sizes(info["downloads"])


def _threads(n: int | None) -> str:
    return "1 thread" if (n or 1) == 1 else f"{n} threads"
