"""Device estimates, rooflines and pass/fail for one bench row on one device profile.

Every estimate is labelled as one and carries its factor and where the factor came from
(see :mod:`edgekit.device_profiles.calibration` and docs/profiles.md)::

    factor   = published latency of the reference workload on the device
               / latency of the same workload measured on this host, same runtime, same run
    estimate = latency of the artifact measured on this host x factor
    roofline = (MACs / estimate) / the device's peak GMAC/s; below 20% is flagged LOW, above 100%
               (faster than the device can compute: the estimate is too low) flagged PEAK?

Example:
    >>> e = estimate_row(4.0, macs=300e6, quant="fp32", fmt="tflite", profile=p, host_ref_ms=5.6)   # doctest: +SKIP
    >>> round(e["latency_ms"], 1), e["kind"]                                                      # doctest: +SKIP
    (53.6, 'estimate')
"""

from __future__ import annotations

from typing import Any

from edgekit.device_profiles.calibration import reference_quant
from edgekit.device_profiles.schema import Profile

LOW_UTILISATION = 0.20


def device_reference_ms(profile: Profile, ref_quant: str) -> float:
    """The device's latency for the reference in ``ref_quant``: the published figure when it ran that
    quant, else the other one through ``int8_gain`` (int8 = fp32 / gain)."""
    t = profile.throughput
    ms, published = t.reference.latency_ms, t.reference.quant
    if ref_quant == published:
        return ms
    return ms / t.int8_gain if ref_quant == "int8" else ms * t.int8_gain


def estimate_row(host_p50_ms: float, *, macs: int | None, quant: str, fmt: str, profile: Profile,
                 host_ref_ms: float, runtime: str | None = None) -> dict[str, Any]:
    """The estimated device latency of an artifact measured at ``host_p50_ms`` on this host.

    An artifact run by another engine than the profile's reference (LiteRT.js on a browser
    profile whose reference is TF.js) takes the same device/host factor: both are wasm on the same
    CPU, so the device is taken to be as much slower than this host for one engine as for the other.
    """
    t = profile.throughput
    if profile.kind == "mcu" and quant != "int8":
        why = ("the board's figure is for int8 kernels" if quant == "int16x8" else
               f"a microcontroller runs full-integer int8 files, not {quant}: export --quant int8")
        return {"kind": "estimate", "latency_ms": None, "error": why}
    ref_quant = reference_quant(fmt, quant, profile)
    device_ms = device_reference_ms(profile, ref_quant)
    factor = device_ms / host_ref_ms
    est = host_p50_ms * factor
    peak = t.peak_gmacs_int8 if ref_quant == "int8" else t.peak_gmacs_fp32
    out: dict[str, Any] = {
        "kind": "estimate",
        "latency_ms": float(f"{est:.4g}"),
        "factor": float(f"{factor:.4g}"),
        "reference": {
            "workload": t.reference.workload, "quant": ref_quant, "runtime": t.reference.runtime,
            "device_ms": float(f"{device_ms:.4g}"), "host_ms": float(f"{host_ref_ms:.4g}"),
            "source": t.reference.source if ref_quant == t.reference.quant else
            f"{t.reference.source}; {ref_quant}: {'/' if ref_quant == 'int8' else 'x'} {t.int8_gain:g} ({t.int8_gain_source})",
        },
        "macs": macs,
        "peak_gmacs": peak,
    }
    if runtime and runtime != t.reference.runtime:
        out["reference"]["applied_to"] = (f"{runtime}: the {t.reference.runtime} device/host factor, times {runtime}'s "
                                          f"{quant} latency measured here")
    if macs:
        achieved = macs / (est * 1e6)
        out["achieved_gmacs"] = float(f"{achieved:.4g}")
        out["roofline"] = float(f"{achieved / peak:.4g}")
        out["low_utilisation"] = achieved / peak < LOW_UTILISATION
        # faster than the device can compute: the factor does not fit this artifact (its kernels gain more
        # here, against the reference, than on the device), so the estimate is too low
        out["above_peak"] = achieved > peak
    return out


def checks(row: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Fits memory, fits storage, meets the latency budget: each with the figures compared."""
    out: dict[str, Any] = {}
    if profile.memory_mb and row.get("peak_rss_mb") is not None:
        out["memory"] = {"ok": row["peak_rss_mb"] <= profile.memory_mb, "value_mb": row["peak_rss_mb"],
                         "limit_mb": profile.memory_mb}
    if profile.storage_mb and row.get("size_bytes") is not None:
        mb = row["size_bytes"] / 1e6
        out["storage"] = {"ok": mb <= profile.storage_mb, "value_mb": round(mb, 3), "limit_mb": profile.storage_mb}
    arena = (row.get("arena") or {}).get("smallest_bytes")
    if profile.sram_kb and arena is not None:  # a microcontroller: TFLite Micro's tensor arena in SRAM
        out["sram"] = {"ok": arena / 1024 <= profile.sram_kb, "value_kb": round(arena / 1024, 1), "limit_kb": profile.sram_kb}
    if profile.kind == "mcu":  # TFLite Micro's kernels for a board: int8 (a float file runs here, slowly, if at all)
        out["full_integer"] = {"ok": row.get("quant") in ("int8", "int16x8"), "value": row.get("quant"),
                               "limit": "int8 or int16x8"}
    if profile.flash_kb and row.get("size_bytes") is not None:  # and the model in flash (code not counted)
        kb = row["size_bytes"] / 1024
        out["flash"] = {"ok": kb <= profile.flash_kb, "value_kb": round(kb, 1), "limit_kb": profile.flash_kb}
    measured = (row.get("latency_ms") or {}).get("p50")
    # a row measured on the device is judged on its measurement, not on the estimate beside it
    latency = measured if row.get("measured_on") else (row.get("estimate") or {}).get("latency_ms") or measured
    if profile.latency_budget_ms and latency is not None:
        out["latency_budget"] = {"ok": latency <= profile.latency_budget_ms, "value_ms": latency,
                                 "limit_ms": profile.latency_budget_ms}
    return out


def verdict(row: dict[str, Any]) -> str:
    """``pass``, or ``fail: <what>`` naming every check that failed."""
    if row["status"] != "ok":
        return "fail: TFLite Micro cannot run it" if row.get("runtime") == "tflm" else "fail: did not run"
    failed = [k.replace("_", " ") for k, c in (row.get("checks") or {}).items() if not c["ok"]]
    return "fail: " + ", ".join(failed) if failed else "pass"
