"""Run an artifact in a child worker process: crashes and hangs become failed results.

Example:
    >>> r = run_isolated("litert", "model_fp32.tflite", x, threads=2,
    ...                  timing={"warmup": 10, "runs": 100, "min_time_s": 0.5})   # doctest: +SKIP
    >>> r.ok, r.reply["latency_ms"]["p50"]                                        # doctest: +SKIP
    (True, 0.061)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.io_spec import Batch, as_named, load_batch, save_batch
from edgekit.runtimes.process_tree import child_env, kill_tree

DEFAULT_TIMEOUT_S = 300.0


@dataclass
class WorkerResult:
    """What a worker measured: ``reply`` (timings, memory, ``artifact_info``), ``outputs`` by output
    name, or the ``error`` that stopped it."""

    ok: bool
    reply: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None

    @property
    def output(self):
        """The one output of a single-output model, as an array (``r.output.argmax(1)``)."""
        from edgekit.runtimes.binding import only

        return only(self.outputs)


def run_isolated(
    runtime: str,
    artifact: str | Path,
    inputs: Batch | None,
    *,
    threads: int | None = None,
    timing: dict[str, Any] | None = None,
    want_outputs: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    safe_mode: bool = True,
    pin_cpus: bool = False,
    profile: dict[str, Any] | None = None,
) -> WorkerResult:
    """Load ``artifact`` in ``runtime`` in a fresh process, run ``inputs``, and time it (or, with
    ``profile={"runs": N}``, only profile it per operator: ``reply["profile"]``, edgekit.profiling)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-worker-") as tmp:
        tmp = Path(tmp)
        if inputs is not None:  # a folder of one .npy per named input
            save_batch(tmp / "inputs", as_named(inputs))
        want_outputs = want_outputs and inputs is not None
        request = {
            "runtime": runtime,
            "artifact": str(Path(artifact).resolve()),
            "threads": threads,
            "inputs": str(tmp / "inputs") if inputs is not None else None,
            "outputs": str(tmp / "outputs") if want_outputs else None,
            "timing": timing,
            "safe_mode": safe_mode,
            "cpus": _cpus(threads) if pin_cpus else None,
            "profile": profile,
        }
        reply = _serve(request, tmp, runtime, Path(artifact).name, timeout_s)
        if isinstance(reply, WorkerResult):
            return reply
        outputs = load_batch(tmp / "outputs") if want_outputs else None
        return WorkerResult(True, reply, outputs)


def time_together(runtime: str, artifacts: list[str | Path], inputs: Batch, *, threads: int | None = 1,
                  timing: dict[str, Any], rounds: int = 3, timeout_s: float = DEFAULT_TIMEOUT_S) -> WorkerResult:
    """Time ``artifacts`` in one fresh ``runtime`` process, in ``rounds`` interleaved rounds, on the
    first row of ``inputs``: ``reply["p50_ms_rounds"]`` maps each artifact's path to a p50 per round.

    Example:
        >>> r = time_together("litert", ["a.tflite", "b.tflite"], x, timing={"runs": 100})  # doctest: +SKIP
        >>> {Path(k).name: min(v) for k, v in r.reply["p50_ms_rounds"].items()}          # doctest: +SKIP
        {'a.tflite': 0.0152, 'b.tflite': 0.0167}
    """
    with tempfile.TemporaryDirectory(prefix="edgekit-worker-") as tmp:
        tmp = Path(tmp)
        save_batch(tmp / "inputs", as_named(inputs))
        paths = [str(Path(a).resolve()) for a in artifacts]
        request = {"runtime": runtime, "together": paths, "threads": threads, "inputs": str(tmp / "inputs"),
                   "timing": timing, "rounds": rounds}
        reply = _serve(request, tmp, runtime, ", ".join(Path(a).name for a in artifacts), timeout_s)
        if isinstance(reply, WorkerResult):
            return reply
        reply["p50_ms_rounds"] = {a: reply["p50_ms_rounds"][p] for a, p in zip(map(str, artifacts), paths, strict=True)}
        return WorkerResult(True, reply)


SHORT_ROUNDS = {"warmup": 10, "runs": 100, "min_time_s": 0.03}


def p50_together(runtime: str, files: dict[str, str | Path], inputs: Batch, *, rounds: int = 10,
                 threads: int | None = 1, timing: dict[str, Any] = SHORT_ROUNDS) -> dict[str, float]:
    """Each file's p50 (ms), the files timed together in one fresh ``runtime`` worker, in ``rounds``
    interleaved rounds (by default of 30 ms; the order reversed every other round), the best round of each: a
    shared machine's slow spells only ever slow a file down, and fall on every file alike.

    This is how a choice edgekit made (an int8 layout, a ``--quant mixed`` file) is judged apart
    from the measurement that made it. Raises :class:`edgekit.errors.RuntimeFailure` if a file does not run.

    Example:
        >>> p50_together("litert", {"fp32": "m_fp32.tflite", "mixed": "m_mixed.tflite"}, x)  # doctest: +SKIP
        {'fp32': 0.152, 'mixed': 0.118}
    """
    from edgekit.errors import RuntimeFailure

    r = time_together(runtime, list(files.values()), inputs, threads=threads, rounds=rounds, timing=timing)
    if not r.ok:
        raise RuntimeFailure(r.error)
    return {name: min(r.reply["p50_ms_rounds"][str(path)]) for name, path in files.items()}


def _serve(request: dict, tmp: Path, runtime: str, what: str, timeout_s: float) -> dict | WorkerResult:
    """Run the worker on ``request`` (written to ``tmp``): its reply, or the failed result."""
    (tmp / "request.json").write_text(json.dumps(request))
    env = child_env(TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "edgekit.runtimes.worker", str(tmp / "request.json")]
    # Its own process group, so a timeout also stops what the worker started (Node, Chromium).
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return WorkerResult(False, error=f"{runtime} hung and was killed after {timeout_s:.0f} s", error_type="Timeout")
    except BaseException:  # Ctrl-C: take the worker and its children down too
        _kill_group(proc)
        raise
    _kill_group(proc)  # anything the worker left behind (a crashed worker's browser)
    result_file = tmp / "result.json"
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return WorkerResult(False, error=f"{runtime} crashed ({name}) while running {what}", error_type="Crash")
    if not result_file.is_file():
        tail = (stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return WorkerResult(False, error=f"{runtime} worker failed: {tail[0][:300]}", error_type="Crash")
    reply = json.loads(result_file.read_text())
    if not reply.get("ok"):
        return WorkerResult(False, reply, error=reply.get("error"), error_type=reply.get("error_type"))
    return reply


def _cpus(threads: int | None) -> list[int] | None:
    """The first ``threads`` CPUs this process may use: the worker is pinned to them."""
    if not threads or not hasattr(os, "sched_getaffinity"):
        return None
    return sorted(os.sched_getaffinity(0))[:threads]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker, its process group and its descendants (Chromium has a group of its own);
    harmless when everything has already exited."""
    if proc.poll() is None:
        kill_tree(proc.pid)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()
