"""``bench --device`` through a local agent against a local bench, on the same artifacts.

Targets:
- per-inference latency measured through an agent on 127.0.0.1 (the same worker, started by the
  agent) against the same artifact benched locally: within 2% either way (median of interleaved
  repeats; the digits CNN int8 and MLPerf Tiny ResNet-8 fp32 and int8, LiteRT, 1 thread);
- informational: the wall time of the whole bench through the agent, first with an empty cache
  (artifacts and inputs uploaded) and then with them cached.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, Results, need_fixture, within_band

from edgekit.agent.client import RemoteDevice
from edgekit.bench.runner import run_bench
from edgekit.exporters.pipeline import export_model
from edgekit.trainer.fit import train

TOKEN = "bench-token"


def main() -> bool:
    res = Results("agent_overhead")
    print("edgekit agent: bench --device through a local agent vs local bench")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train("cnn", "builtin:digits", tmp / "run", epochs=10, verbose=0, log=lambda s: None)
        export_model(tmp / "run", ["tflite"], ["int8"], tmp / "exp", log=lambda s: None)
        arts = [str(tmp / "exp" / "model_int8.tflite")]
        arts += [str(p) for f in ("pretrainedResnet.tflite", "pretrainedResnet_quant.tflite")
                 if (p := need_fixture(res, f)) is not None]
        proc = subprocess.Popen([sys.executable, "-m", "edgekit", "agent", "--port", "0", "--name", "local-agent",
                                 "--cache", str(tmp / "cache")], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "EDGEKIT_AGENT_TOKEN": TOKEN})
        try:
            url = re.search(r"on (http://\S+) ", proc.stdout.readline()).group(1)
            settings = {"repeats": 1, "runs": 2000, "min_time_s": 1.0, "reference": False}
            walls, local, remote = [], {}, {}
            for i in range(5):  # interleaved: local, agent, agent, local, ...
                for where in (("local", "agent") if i % 2 == 0 else ("agent", "local")):
                    t0 = time.perf_counter()
                    device = RemoteDevice(url, TOKEN) if where == "agent" else None
                    report = run_bench(arts, device=device, **settings)
                    if where == "agent":
                        walls.append((time.perf_counter() - t0, device.uploads["sent"]))
                    for r in report["rows"]:
                        (remote if where == "agent" else local).setdefault(r["name"], []).append(r["latency_ms"]["p50"])
            for name in local:
                within_band(res, f"through the agent vs local, {name} (litert, 1 thread)", statistics.median(remote[name]),
                            statistics.median(local[name]), pct=2.0)
            cold, warm = walls[0], min(w for w, sent in walls if sent == 0)
            res.add("whole bench through the agent: empty cache vs cached", f"{cold[0]:.1f} s ({cold[1]} uploads) vs "
                    f"{warm:.1f} s (0 uploads)", "informational", None, cold_s=cold[0], cached_s=warm)
        finally:
            proc.kill()
            proc.wait()
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
