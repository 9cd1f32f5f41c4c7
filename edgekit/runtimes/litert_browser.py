"""litert-browser: ``.tflite`` files in LiteRT.js (``@litertjs/core``) in a real headless Chromium.

The same file that runs on Android and the Raspberry Pi, on LiteRT's WebAssembly CPU path
(XNNPACK; the threaded build when the session asks for more than one thread). The page and its
transport are :mod:`edgekit.runtimes.browser`'s; the engine adapter is ``js/src/engines/litert.mjs``.
LiteRT.js does not expose a tensor's int8 scale and zero point, so this side reads them from the
file with ai-edge-litert and quantizes inputs and dequantizes outputs, as the ``litert`` runtime does;
the values travel to the page already quantized and the timed call is the engine's alone.

Example:
    >>> s = LiteRTBrowserRuntime().load("runs/demo/export/model_int8.tflite", threads=1)   # doctest: +SKIP
    >>> s.describe()["input_dtype"], s.describe()["engine"]                                # doctest: +SKIP
    ('int8', 'litert')
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from edgekit.runtimes.binding import BoundTensor
from edgekit.runtimes.browser import BrowserTransport, browser_available, browser_version
from edgekit.runtimes.js_env import npm_version
from edgekit.runtimes.js_session import JSSession
from edgekit.runtimes.litert import LiteRTSession


class LiteRTBrowserRuntime:
    name = "litert-browser"
    formats = ("tflite",)

    def is_available(self) -> bool:
        return browser_available()

    def version(self) -> str:
        return f"litert.js {npm_version('@litertjs/core')} (wasm), {browser_version()}"

    def load(self, artifact: str, *, threads: int | None = None) -> LiteRTBrowserSession:
        return LiteRTBrowserSession(artifact, threads=threads)


class LiteRTWebSession(JSSession):
    """The engine half (LiteRT.js), shared by the transports: the file read here for its int8 boundary."""

    engine = "litert"

    def _open(self, path: str) -> None:
        self.path = Path(path)
        self.ref = LiteRTSession(str(path), threads=1)  # the file checked, its boundary's int8 parameters read

    def _model_files(self) -> dict[str, Path]:
        return {"/model/model": self.path}

    def _boundary(self, tensors: list[BoundTensor], side: str) -> list[BoundTensor]:
        mine = {t.name: t for t in getattr(self.ref, side)}  # the same names: both bind by the signature
        return [replace(t, scale=mine[t.name].scale, zero_point=mine[t.name].zero_point) if t.name in mine else t
                for t in tensors]

    def describe(self) -> dict[str, Any]:
        info = {**self.ref.describe(), **self._io()}
        info.update({"engine": "litert", "backend": "wasm", "threads": self.info.get("threads"),
                     "litert_js_version": npm_version("@litertjs/core"), "wasm_build": self.info.get("build"),
                     "signature": self.info.get("signature"), "js_init_ms": self.info.get("init_ms")})
        return info


class LiteRTBrowserSession(BrowserTransport, LiteRTWebSession):
    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self._browser_facts()}

    def close(self) -> None:
        BrowserTransport.close(self)
