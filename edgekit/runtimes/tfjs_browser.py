"""tfjs-browser: TF.js graph models in a real headless Chromium, driven by Playwright.

The page, its server and Chromium are :mod:`edgekit.runtimes.browser`'s; this module adds the
TF.js engine. ``tfjs-browser`` runs the wasm backend; ``tfjs-browser-webgl`` tries WebGL, which on
a machine without a GPU fails to start and is reported as such.

Example:
    >>> s = TFJSBrowserRuntime().load("runs/demo/export/model_fp32_tfjs", threads=1)   # doctest: +SKIP
    >>> s.describe()["cross_origin_isolated"]                                         # doctest: +SKIP
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.runtimes.browser import CHROMIUM_ARGS, BrowserTransport, browser_available, browser_version, engine_files
from edgekit.runtimes.js_env import npm_version
from edgekit.runtimes.tfjs_common import TFJSSession

__all__ = ["CHROMIUM_ARGS", "TFJSBrowserRuntime", "TFJSBrowserWebGLRuntime", "static_files"]


class TFJSBrowserRuntime:
    name = "tfjs-browser"
    formats = ("tfjs",)
    backend = "wasm"

    def is_available(self) -> bool:
        return browser_available()

    def version(self) -> str:
        return f"tfjs {npm_version('@tensorflow/tfjs')} ({self.backend}), {browser_version()}"

    def load(self, artifact: str, *, threads: int | None = None) -> TFJSBrowserSession:
        return TFJSBrowserSession(artifact, threads=threads, backend=self.backend)


class TFJSBrowserWebGLRuntime(TFJSBrowserRuntime):
    name = "tfjs-browser-webgl"
    backend = "webgl"


def static_files(jsd: Path) -> dict[str, Path]:
    """The TF.js page's files besides the model (the web package ships the same ones)."""
    return engine_files("tfjs", jsd)


def tfjs_model_files(model) -> dict[str, Path]:
    """URL path -> file for a TF.js model folder: model.json and its shards (checked to lie inside it)."""
    files = {}
    folder = model.dir.resolve()
    for shard in model.shards:
        files[f"/model/{shard.relative_to(folder).as_posix()}"] = shard
    files["/model/model.json"] = model.json_path
    return files


class TFJSBrowserSession(BrowserTransport, TFJSSession):
    engine = "tfjs"

    def _model_files(self) -> dict[str, Path]:
        return tfjs_model_files(self.model)

    def _artifact_label(self) -> str:
        return str(self.model.dir)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(self._browser_facts())
        if self.backend == "webgl":
            renderer = self.environment.get("webglRenderer") or "unknown"
            info["webgl_renderer"] = renderer
            info["gpu"] = "software (SwiftShader), no GPU" if "swiftshader" in renderer.lower() else renderer
        return info
