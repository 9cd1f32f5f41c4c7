"""Which runtime, with how many threads, runs each artifact for each device profile.

The host profile runs every artifact on each of its format's default runtimes, with
``--threads``. A device profile runs it on the first of the profile's runtimes that can
(its order of preference), with the profile's threads capped at this host's cores; an
artifact no runtime of the profile can run is skipped with a note naming the runtime that
would. Jobs that need the same measurement (artifact, runtime, threads) share one *unit*,
so ``--profile all`` measures each thing once.

Example:
    >>> jobs, units, notes = plan(targets, [load_profile("raspberry-pi-4")], threads=1)   # doctest: +SKIP
    >>> {j.target.runtime for j in jobs}                                                  # doctest: +SKIP
    {'litert', 'onnxruntime'}
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from edgekit.bench.targets import BenchTarget
from edgekit.device_profiles.schema import Profile
from edgekit.runtimes import RUNTIMES, runtimes_for_format

Unit = tuple[str, str, "int | None"]  # (artifact path, runtime, threads)


@dataclass
class Job:
    profile: Profile
    target: BenchTarget  # runtime chosen
    threads: int | None
    calibration: tuple | None = None  # the reference unit its estimate is scaled by (device profiles)

    @property
    def unit(self) -> Unit:
        return (str(self.target.path), self.target.runtime, self.threads)


def host_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Quant modes a microcontroller's TFLite Micro cannot load (it refuses hybrid models; no float16 weights)
MCU_CANNOT_RUN = {"fp16": "float16 weights", "dynamic": "int8 weights, float activations"}


def plan(targets: list[BenchTarget], profiles: list[Profile], *, threads: int | None,
         runtimes: list[str] | None = None, cores: int | None = None) -> tuple[list[Job], list[str]]:
    """Jobs for every (profile, artifact) that can run, and notes for those that cannot.
    ``cores``: of the machine that measures (a remote device), when it is not this host."""
    jobs: list[Job] = []
    notes: list[str] = []
    host = next((p for p in profiles if p.kind == "host"), None)
    for t in targets:
        if t.is_reference:  # the source model: measured once, on this host, as the reference
            jobs.append(Job(host or _host_profile(), t, threads))
    for profile in profiles:
        skipped: list[BenchTarget] = []
        refused: list[str] = []
        for t in targets:
            if t.is_reference:
                continue
            if profile.kind == "host":
                for rt in runtimes_for_format(t.format, runtimes):
                    jobs.append(Job(profile, dataclasses.replace(t, runtime=rt, notes=list(t.notes)), threads))
                continue
            ok = [rt for rt in profile.runtimes if t.format in RUNTIMES[rt][2] and (not runtimes or rt in runtimes)]
            if not ok or t.format not in profile.formats:
                skipped.append(t)
                continue
            if profile.kind == "mcu" and t.quant in MCU_CANNOT_RUN:
                refused.append(f"{t.name} ({MCU_CANNOT_RUN[t.quant]})")
                continue
            if profile.memory_mb and t.size_bytes / 1e6 > profile.memory_mb:
                notes.append(f"{profile.name}: {t.name} ({t.size_bytes / 1e6:.0f} MB) is larger than the device's memory "
                             f"({profile.memory_mb:g} MB): not run for this profile")
                continue
            used = min(profile.threads or threads or 1, cores or host_cores())
            jobs.append(Job(profile, dataclasses.replace(t, runtime=ok[0], notes=list(t.notes)), used))
        if refused:
            notes.append(f"{profile.name}: not run: {', '.join(refused)}: TFLite Micro has no kernels for them; a "
                         "microcontroller runs full-integer files (export --quant int8)")
        if skipped:
            fmts = sorted({t.format for t in skipped})
            would = "; ".join(f"{f} runs on {', '.join(r for r, spec in RUNTIMES.items() if f in spec[2])}" for f in fmts)
            notes.append(f"{profile.name}: skipped {', '.join(t.name for t in skipped)}: the profile runs "
                         f"{', '.join(profile.runtimes)} ({would})")
    return jobs, notes


def _host_profile() -> Profile:
    from edgekit.device_profiles import load_profile

    return load_profile("host")
