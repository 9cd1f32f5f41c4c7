"""ONNX Runtime Web (``onnxruntime-web``) for ``.onnx`` files, in a real headless Chromium and in Node.

- ``ort-browser``: the page runner in Chromium, ONNX Runtime's WebAssembly execution provider
  (SIMD; threads in a cross-origin isolated page), from the package's wasm-only build
  (``dist/ort.wasm.min.mjs``: a smaller download and a faster start than the default
  WebGPU-capable build). The transport is :mod:`edgekit.runtimes.browser`'s.
- ``ort-web-node``: the same package and engine adapter in a Node process (the package runs in
  Node as is), for a server or a build step that runs ONNX in JS. The transport is
  :mod:`edgekit.runtimes.node`'s.

The engine adapter is ``js/src/engines/ort.mjs``. The file is checked, and its facts (ops, opset,
quantization) read, by onnxruntime on this side first.

Example:
    >>> s = ORTBrowserRuntime().load("runs/demo/export/model_int8.onnx", threads=1)   # doctest: +SKIP
    >>> s.describe()["engine"]                                                        # doctest: +SKIP
    'ort'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.runtimes.browser import BrowserTransport, browser_available, browser_version
from edgekit.runtimes.js_env import node_available, npm_version
from edgekit.runtimes.js_session import JSSession
from edgekit.runtimes.node import NodeTransport, node_version
from edgekit.runtimes.onnxruntime import ONNXSession


class ORTWebSession(JSSession):
    """The engine half, shared by both transports."""

    engine = "ort"

    def _open(self, path: str) -> None:
        self.path = Path(path)
        self.ref = ONNXSession(str(path), threads=1)

    def _model_files(self) -> dict[str, Path]:
        return {"/model/model": self.path}

    def profile_ops(self, batch, runs: int) -> dict[str, Any]:
        """Each node's time per inference over ``runs`` inferences of the first sample: ONNX Runtime
        Web's own profiler (its trace, printed to the JS console, caught by the runner), read as
        ONNX Runtime's (edgekit.profiling.onnx_ops)."""
        from edgekit.io_spec import take
        from edgekit.profiling.onnx_ops import (
            attach_origins,
            chain_models_b64,
            compensate,
            cost_per_event_us,
            per_node,
            trace_from_lines,
        )
        from edgekit.profiling.records import ProfilingUnavailable
        from edgekit.runtimes.binding import feeds

        payload, data = self._message(take(feeds(batch, self.inputs), 0, 1))
        reply, _ = self._call("profile", {**payload, "runs": runs, "warmup": 5, "chains": chain_models_b64()}, data)
        events = trace_from_lines(reply["trace_lines"])
        if not events:
            raise ProfilingUnavailable("ONNX Runtime Web printed no profile (its WebAssembly build may not profile)")
        prof = per_node(events, reply.get("warmup", 5), runs)
        chain = per_node(trace_from_lines(reply.get("chain_trace_lines") or []), 5, runs)["ops"]
        if chain and reply.get("chain_plain_us"):  # the profiler's own cost, measured in the same engine
            plain = reply["chain_plain_us"]
            compensate(prof, cost_per_event_us(chain, plain["40"], plain["80"]))
        return attach_origins(prof, self.path)

    def describe(self) -> dict[str, Any]:
        info = {**self.ref.describe(), **self._io()}
        info.update({"engine": "ort", "backend": "wasm", "threads": self.info.get("threads"),
                     "ort_web_version": npm_version("onnxruntime-web"), "js_init_ms": self.info.get("init_ms")})
        return info


class ORTBrowserRuntime:
    name = "ort-browser"
    formats = ("onnx",)

    def is_available(self) -> bool:
        return browser_available()

    def version(self) -> str:
        return f"onnxruntime-web {npm_version('onnxruntime-web')} (wasm), {browser_version()}"

    def load(self, artifact: str, *, threads: int | None = None) -> ORTBrowserSession:
        return ORTBrowserSession(artifact, threads=threads)


class ORTBrowserSession(BrowserTransport, ORTWebSession):
    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self._browser_facts()}

    def close(self) -> None:
        BrowserTransport.close(self)


class ORTNodeRuntime:
    name = "ort-web-node"
    formats = ("onnx",)

    def is_available(self) -> bool:
        return node_available()

    def version(self) -> str:
        return f"onnxruntime-web {npm_version('onnxruntime-web')} (wasm), node {node_version()}"

    def load(self, artifact: str, *, threads: int | None = None) -> ORTNodeSession:
        return ORTNodeSession(artifact, threads=threads)


class ORTNodeSession(NodeTransport, ORTWebSession):
    def _model_arg(self) -> str:
        return str(self.path.resolve())

    def close(self) -> None:
        NodeTransport.close(self)
