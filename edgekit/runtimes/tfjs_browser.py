"""tfjs-browser: TF.js graph models in a real headless Chromium, driven by Playwright.

edgekit serves ``js/page/index.html``, the TF.js files from ``js/node_modules`` and the one
model being run from 127.0.0.1 on a port the OS picks (a busy port is never a problem),
with the cross-origin isolation headers that let wasm use SIMD and threads. Each inference
is timed in the page with ``performance.now()`` (5 us resolution once cross-origin isolated);
outputs come back for parity. The browser is Debian's ``chromium`` (``make install``).

``tfjs-browser`` runs the wasm backend; ``tfjs-browser-webgl`` tries WebGL, which on a
machine without a GPU fails to start and is reported as such.

Example:
    >>> s = TFJSBrowserRuntime().load("runs/demo/export/model_fp32_tfjs", threads=1)   # doctest: +SKIP
    >>> s.describe()["cross_origin_isolated"]                                         # doctest: +SKIP
    True
"""

from __future__ import annotations

import base64
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError, RuntimeFailure, first_line
from edgekit.runtimes.js_env import MissingDependency, chromium_binary, js_dir, node_available, npm_version
from edgekit.runtimes.process_tree import cmdline, descendants, status_kb
from edgekit.runtimes.tfjs_common import TFJSSession

PAGE_TIMEOUT_S = 120.0

# Flags for a headless Chromium on a machine with a closed network, possibly as root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--disable-quic", "--disable-default-apps", "--disable-extensions", "--mute-audio",
]

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
          ".wasm": "application/wasm", ".json": "application/json", ".bin": "application/octet-stream"}


class TFJSBrowserRuntime:
    name = "tfjs-browser"
    formats = ("tfjs",)
    backend = "wasm"

    def is_available(self) -> bool:
        try:
            chromium_binary()
            import playwright  # noqa: F401
        except (MissingDependency, ImportError):
            return False
        return node_available()

    def version(self) -> str:
        return f"tfjs {npm_version('@tensorflow/tfjs')} ({self.backend}), {_browser_version()}"

    def load(self, artifact: str, *, threads: int | None = None) -> TFJSBrowserSession:
        return TFJSBrowserSession(artifact, threads=threads, backend=self.backend)


class TFJSBrowserWebGLRuntime(TFJSBrowserRuntime):
    name = "tfjs-browser-webgl"
    backend = "webgl"


_BROWSER_VERSION: list[str] = []


def _browser_version() -> str:
    return _BROWSER_VERSION[0] if _BROWSER_VERSION else "chromium"


def static_files(jsd: Path) -> dict[str, Path]:
    """URL path -> file for everything the page needs besides the model: a fixed list, no directory walking."""
    tfjs = jsd / "node_modules" / "@tensorflow" / "tfjs" / "dist"
    wasm = jsd / "node_modules" / "@tensorflow" / "tfjs-backend-wasm" / "dist"
    files = {"/": jsd / "page" / "index.html", "/src/runner-core.mjs": jsd / "src" / "runner-core.mjs",
             "/tfjs/tf.min.js": tfjs / "tf.min.js", "/tfjs/tf-backend-wasm.min.js": wasm / "tf-backend-wasm.min.js"}
    for w in sorted(wasm.glob("*.wasm")):
        files[f"/tfjs/{w.name}"] = w
    return files


class PageServer:
    """Serves the page, the TF.js files, one model's files and the current input; nothing else."""

    def __init__(self, files: dict[str, Path]):
        self.files = dict(files)
        self.input = b""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path == "/favicon.ico":
                    self.send_response(204)
                    self.end_headers()
                    return
                if path == "/data/input.bin":
                    body, ctype = server.input, _TYPES[".bin"]
                elif path in server.files and server.files[path].is_file():
                    f = server.files[path]
                    body, ctype = f.read_bytes(), _TYPES.get(f.suffix, "application/octet-stream")
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                # Cross-origin isolation: SharedArrayBuffer (wasm threads) and precise timers.
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
                self.send_header("Cross-Origin-Resource-Policy", "same-origin")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: the OS picks a free one
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TFJSBrowserSession(TFJSSession):
    def _start(self) -> None:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        files = static_files(js_dir())
        folder = self.model.dir.resolve()
        for shard in self.model.shards:  # already checked to lie inside the folder
            files[f"/model/{shard.relative_to(folder).as_posix()}"] = shard
        files["/model/model.json"] = self.model.json_path
        self.server = PageServer(files)
        self._pw = sync_playwright().start()
        args = list(CHROMIUM_ARGS)
        if self.backend != "webgl":
            args.append("--disable-gpu")
        try:
            self.browser = self._pw.chromium.launch(executable_path=chromium_binary(), headless=True, args=args,
                                                    timeout=PAGE_TIMEOUT_S * 1000)
            _BROWSER_VERSION[:] = [f"chromium {self.browser.version}"]
            self.page = self.browser.new_page()
            self.page.set_default_timeout(PAGE_TIMEOUT_S * 1000)
            self._console: list[str] = []
            self.page.on("console", lambda m: self._console.append(m.text))
            self.page.on("pageerror", lambda e: self._console.append(str(e)))
            self.page.goto(self.server.url)
            self.page.wait_for_function("window.edgekit !== undefined")
        except PlaywrightError as e:
            self.close()
            raise RuntimeFailure(f"Chromium could not open edgekit's page: {first_line(e)}") from None
        self.environment = self.page.evaluate("window.edgekit.environment()")

    def _call(self, cmd: str, payload: dict[str, Any], data: np.ndarray | None = None):
        from playwright.sync_api import Error as PlaywrightError

        if data is not None:
            self.server.input = data.astype("<f4", copy=False).tobytes()
        try:
            reply = self.page.evaluate(f"req => window.edgekit.{cmd}(req)", payload)
        except PlaywrightError as e:
            msg = first_line(e)
            if cmd == "load":
                if "backend could not start" in msg:
                    raise RuntimeFailure(f"TF.js in Chromium: {msg.split('Error: ')[-1]}") from None
                raise ModelLoadError(f"TF.js in Chromium cannot load {self.model.dir}: {msg}") from None
            raise RuntimeFailure(f"tfjs-browser {cmd} failed: {msg}") from None
        out = None
        if cmd == "run":
            out = np.frombuffer(base64.b64decode(reply.pop("output_b64")), dtype="<f4")
        return reply, out

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["cross_origin_isolated"] = self.info.get("crossOriginIsolated")
        info["user_agent"] = self.environment.get("userAgent")
        if self.backend == "webgl":
            renderer = self.environment.get("webglRenderer") or "unknown"
            info["webgl_renderer"] = renderer
            info["gpu"] = "software (SwiftShader), no GPU" if "swiftshader" in renderer.lower() else renderer
        return info

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory (VmHWM) of the page's renderer process, where the model runs."""
        return _renderer_peak_mb()

    def close(self) -> None:
        for name in ("browser", "_pw", "server"):
            obj = getattr(self, name, None)
            if obj is None:
                continue
            try:
                obj.stop() if name == "_pw" else obj.close()
            except Exception:
                pass
            setattr(self, name, None)


def _renderer_peak_mb() -> float | None:
    """The largest VmHWM among this process's descendant Chromium renderer processes."""
    peaks = [status_kb(p, "VmHWM") for p in descendants(os.getpid()) if b"--type=renderer" in cmdline(p)]
    peaks = [p for p in peaks if p]
    return max(peaks) / 1024 if peaks else None
