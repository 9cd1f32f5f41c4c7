"""The Node transport of the JS runtimes: one long-lived ``node js/node-runner.mjs`` per session.

Spoken to in JSON lines over its stdin/stdout; inputs and outputs travel as raw float32 files in
a private temp folder. The engine (TF.js, ONNX Runtime Web's wasm) is an adapter in
``js/src/engines/``; a runtime picks one with ``engine``.

Example:
    >>> s = ORTNodeRuntime().load("runs/demo/export/model_int8.onnx")   # doctest: +SKIP
    >>> s.describe()["engine"]                                           # doctest: +SKIP
    'ort'
"""

from __future__ import annotations

import json
import selectors
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError, RuntimeFailure
from edgekit.runtimes.browser import ENGINE_LABELS
from edgekit.runtimes.js_env import js_dir, node_binary
from edgekit.runtimes.process_tree import status_kb

REPLY_TIMEOUT_S = 300.0


def node_version() -> str:
    out = subprocess.run([node_binary(), "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip().lstrip("v")


class NodeTransport:
    """The transport half of a Node session: mixed into a :class:`JSSession` that sets ``engine`` and
    gives the model's path on disk with :meth:`_model_arg`."""

    engine: str  # set by the engine half (JSSession subclass)

    def _model_arg(self) -> str:
        raise NotImplementedError

    def _artifact_label(self) -> str:
        return str(getattr(self, "path", "the model"))

    def _start(self) -> None:
        node, jsd = node_binary(), js_dir()
        self._tmp = Path(tempfile.mkdtemp(prefix="edgekit-node-"))
        self._stderr = open(self._tmp / "stderr.txt", "w+")
        self._id = 0
        self.proc = subprocess.Popen(
            [node, str(jsd / "node-runner.mjs"), "--engine", self.engine, self._model_arg()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=jsd, text=True, bufsize=1,
        )
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def _call(self, cmd: str, payload: dict[str, Any], data: np.ndarray | None = None):
        self._id += 1
        req: dict[str, Any] = {"id": self._id, "cmd": cmd, **payload}
        if data is not None:
            req["input"] = str(self._tmp / "input.bin")
            data.astype("<f4", copy=False).tofile(req["input"])
        if cmd == "run":
            req["output"] = str(self._tmp / "output.bin")
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died() from None
        reply = self._read_reply()
        if not reply.get("ok"):
            msg = reply.get("error", "unknown error")
            label = ENGINE_LABELS[self.engine]
            if cmd == "load":
                raise ModelLoadError(f"{label} in Node cannot load {self._artifact_label()}: {msg}")
            raise RuntimeFailure(f"{label} in Node, {cmd} failed: {msg}")
        out = np.fromfile(req["output"], dtype="<f4") if cmd == "run" else None
        return reply, out

    def _read_reply(self) -> dict:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise RuntimeFailure(f"the Node runner gave no answer in {REPLY_TIMEOUT_S:.0f} s and was stopped")
            if not self._sel.select(timeout=min(left, 1.0)):
                if self.proc.poll() is not None:
                    raise self._died()
                continue
            line = self.proc.stdout.readline()
            if not line:
                raise self._died()
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue  # not a protocol line

    def _died(self) -> RuntimeFailure:
        code = self.proc.wait(timeout=10)
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().splitlines() if ln.strip()]
        tail = lines[-1][:300] if lines else f"exit code {code}"
        return RuntimeFailure(f"the Node runner stopped (exit code {code}): {tail}")

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory of the Node process (VmHWM), where the model runs."""
        kb = status_kb(self.proc.pid, "VmHWM")
        return kb / 1024 if kb else None

    def close(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except Exception:
                proc.kill()
                proc.wait()
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
            self._stderr = None
        if getattr(self, "_tmp", None) is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

