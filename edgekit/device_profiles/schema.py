"""The device profile schema: what a profile file may say, checked with messages a user can act on.

A profile names a device, the runtimes and formats it runs (in order of preference), its
threads, memory and storage limits, an optional latency budget, and the throughput figures
that device estimates use, each with its source.

Example:
    >>> p = parse_profile({"name": "my-host", "kind": "host", "runtimes": ["litert"],
    ...                    "formats": ["tflite"], "threads": 2}, "my-host.yaml")
    >>> p.threads, p.estimates
    (2, False)
    >>> parse_profile({"name": "x", "thread": 2}, "x.yaml")
    Traceback (most recent call last):
    edgekit.errors.InputError: x.yaml: unknown key 'thread'. Did you mean 'threads'? (valid keys: name, description, kind, cpu, runtimes, formats, threads, memory_mb, storage_mb, latency_budget_ms, throughput, sram_kb, flash_kb)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import InputError, suggest

KINDS = ("host", "phone", "board", "browser", "mcu")
# reference workloads calibration can build; mobilenet_v1_025_96 is MLPerf Tiny's visual wake words network
WORKLOADS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v1_025_96", "person_detection")


@dataclass
class Reference:
    """A published latency of a reference workload on the device: what ties host to device."""

    workload: str
    runtime: str
    latency_ms: float
    threads: int
    source: str
    quant: str = "fp32"  # what the published figure ran: fp32, or int8 (a microcontroller's MLPerf Tiny result)


@dataclass
class Throughput:
    peak_gmacs_fp32: float
    peak_gmacs_int8: float
    reference: Reference
    int8_gain: float = 1.0  # device int8 speed-up over fp32 on the reference workload
    int8_gain_source: str = ""


@dataclass
class Profile:
    name: str
    kind: str
    runtimes: list[str]
    formats: list[str]
    description: str = ""
    cpu: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    memory_mb: float | None = None
    storage_mb: float | None = None
    latency_budget_ms: float | None = None
    throughput: Throughput | None = None
    sram_kb: float | None = None  # a microcontroller: the SRAM the tensor arena must fit in
    flash_kb: float | None = None  # and the flash the model must fit in
    path: str = ""  # the file it came from

    @property
    def estimates(self) -> bool:
        """True when latency on this device is estimated (any profile but the host)."""
        return self.kind != "host" and self.throughput is not None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# key -> (type(s), required)
_PROFILE_KEYS: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), True), "description": ((str,), False), "kind": ((str,), True), "cpu": ((dict,), False),
    "runtimes": ((list,), True), "formats": ((list,), True), "threads": ((int, type(None)), False),
    "memory_mb": ((int, float, type(None)), False), "storage_mb": ((int, float, type(None)), False),
    "latency_budget_ms": ((int, float, type(None)), False), "throughput": ((dict, type(None)), False),
    "sram_kb": ((int, float, type(None)), False), "flash_kb": ((int, float, type(None)), False),
}
_THROUGHPUT_KEYS = {"peak_gmacs_fp32": ((int, float), True), "peak_gmacs_int8": ((int, float), True),
                    "reference": ((dict,), True), "int8_gain": ((int, float), False), "int8_gain_source": ((str,), False)}
_REFERENCE_KEYS = {"workload": ((str,), True), "runtime": ((str,), True), "latency_ms": ((int, float), True),
                   "threads": ((int,), True), "source": ((str,), True), "quant": ((str,), False)}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping", type(None): "null"}


def _check(d: Any, keys: dict, where: str, origin: str) -> dict:
    if not isinstance(d, dict):
        raise InputError(f"{origin}: {where or 'the profile'} must be a mapping of keys to values, got {type(d).__name__}")
    for k in d:
        if k not in keys:
            raise InputError(f"{origin}: unknown key '{where}{k}'.{suggest(str(k), keys)} "
                             f"(valid keys: {', '.join(keys)})")
    for k, (types, required) in keys.items():
        if k not in d:
            if required:
                raise InputError(f"{origin}: missing key '{where}{k}'", hint="see docs/profiles.md for the schema")
            continue
        v = d[k]
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        if not ok:
            want = " or ".join(dict.fromkeys(_TYPE_NAMES.get(t, t.__name__) for t in types))
            raise InputError(f"{origin}: '{where}{k}' must be {want}, got {v!r}")
    return d


def parse_profile(d: Any, origin: str) -> Profile:
    """Check a profile mapping (from YAML) and build a Profile; raise InputError naming the bad key."""
    from edgekit.exporters import EXPORTERS
    from edgekit.runtimes import RUNTIMES

    _check(d, _PROFILE_KEYS, "", origin)
    if d["kind"] not in KINDS:
        raise InputError(f"{origin}: 'kind' must be one of {', '.join(KINDS)}, got '{d['kind']}'.{suggest(d['kind'], KINDS)}")
    for rt in d["runtimes"]:
        if rt not in RUNTIMES:
            raise InputError(f"{origin}: unknown runtime '{rt}' in 'runtimes'.{suggest(str(rt), RUNTIMES)} "
                             f"Runtimes: {', '.join(RUNTIMES)}")
    formats = [*EXPORTERS, "keras"]
    for f in d["formats"]:
        if f not in formats:
            raise InputError(f"{origin}: unknown format '{f}' in 'formats'.{suggest(str(f), formats)} Formats: {', '.join(formats)}")
    for k in ("threads", "memory_mb", "storage_mb", "latency_budget_ms", "sram_kb", "flash_kb"):
        if d.get(k) is not None and d[k] <= 0:
            raise InputError(f"{origin}: '{k}' must be positive, got {d[k]}")
    throughput = None
    if d.get("throughput") is not None:
        t = _check(d["throughput"], _THROUGHPUT_KEYS, "throughput.", origin)
        r = _check(t["reference"], _REFERENCE_KEYS, "throughput.reference.", origin)
        if r["workload"] not in WORKLOADS:
            raise InputError(f"{origin}: 'throughput.reference.workload' must be one of {', '.join(WORKLOADS)}, "
                             f"got '{r['workload']}'.{suggest(r['workload'], WORKLOADS)}")
        if r["runtime"] not in d["runtimes"]:
            raise InputError(f"{origin}: 'throughput.reference.runtime' ({r['runtime']}) must be one of the profile's runtimes")
        for k in ("peak_gmacs_fp32", "peak_gmacs_int8"):
            if t[k] <= 0:
                raise InputError(f"{origin}: 'throughput.{k}' must be positive, got {t[k]}")
        if r["latency_ms"] <= 0 or r["threads"] <= 0:
            raise InputError(f"{origin}: 'throughput.reference' latency_ms and threads must be positive")
        if r.get("quant", "fp32") not in ("fp32", "int8"):
            raise InputError(f"{origin}: 'throughput.reference.quant' must be fp32 or int8, got '{r['quant']}'")
        throughput = Throughput(
            peak_gmacs_fp32=float(t["peak_gmacs_fp32"]), peak_gmacs_int8=float(t["peak_gmacs_int8"]),
            reference=Reference(**{k: r[k] for k in _REFERENCE_KEYS if k in r}),
            int8_gain=float(t.get("int8_gain", 1.0)), int8_gain_source=t.get("int8_gain_source", ""),
        )
    if d["kind"] != "host" and throughput is None:
        raise InputError(f"{origin}: a {d['kind']} profile needs 'throughput' (peak figures and a published reference "
                         "latency) for its estimates", hint="see docs/profiles.md")
    return Profile(
        name=d["name"], kind=d["kind"], runtimes=list(d["runtimes"]), formats=list(d["formats"]),
        description=d.get("description", ""), cpu=d.get("cpu") or {}, threads=d.get("threads"),
        memory_mb=d.get("memory_mb"), storage_mb=d.get("storage_mb"), latency_budget_ms=d.get("latency_budget_ms"),
        throughput=throughput, sram_kb=d.get("sram_kb"), flash_kb=d.get("flash_kb"), path=origin,
    )
