"""The machine a measurement was taken on, recorded in every report.

Example:
    >>> sorted(machine_info())[:3]
    ['cores', 'cpu', 'load_avg']
"""

from __future__ import annotations

import os
import platform


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and cpu in ("", platform.machine(), "x86_64"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "avx512_vnni": "avx512_vnni" in flags,
    }
