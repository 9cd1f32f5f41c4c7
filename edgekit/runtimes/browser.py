"""The Chromium transport of the browser runtimes: a local page server and one headless page.

edgekit serves ``js/page/index.html``, one engine's files from ``js/node_modules`` and the one
model being run from 127.0.0.1 on a port the OS picks (a busy port is never a problem), with the
cross-origin isolation headers that let wasm use SIMD and threads. Playwright drives the page
through ``window.edgekit``; each inference is timed in the page with ``performance.now()`` (5 us
resolution once cross-origin isolated); outputs come back for parity. The browser is Debian's
``chromium`` (``make install``). The engines are adapters in ``js/src/engines/``; a runtime picks
one with ``engine`` and lists its files in ``engine_files``.

Example:
    >>> files = engine_files("litert", js_dir())                 # doctest: +SKIP
    >>> "/litertjs/core/index.js" in files                       # doctest: +SKIP
    True
"""

from __future__ import annotations

import base64
import functools
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError, RuntimeFailure, first_line
from edgekit.page_headers import PAGE_HEADERS
from edgekit.runtimes.js_env import MissingDependency, chromium_binary, js_dir, node_available
from edgekit.runtimes.process_tree import cmdline, descendants, status_kb

PAGE_TIMEOUT_S = 120.0

# Flags for a headless Chromium on a machine with a closed network, possibly as root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--disable-quic", "--disable-default-apps", "--disable-extensions", "--mute-audio",
]

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
          ".wasm": "application/wasm", ".json": "application/json", ".bin": "application/octet-stream"}


ENGINE_LABELS = {"tfjs": "TF.js", "litert": "LiteRT.js", "ort": "ONNX Runtime Web"}


def browser_available() -> bool:
    try:
        chromium_binary()
        import playwright  # noqa: F401
    except (MissingDependency, ImportError):
        return False
    return node_available()


_BROWSER_VERSION: list[str] = []


def browser_version() -> str:
    return _BROWSER_VERSION[0] if _BROWSER_VERSION else "chromium"


def engine_files(engine: str, jsd: Path) -> dict[str, Path]:
    """URL path -> file for everything the page needs besides the model: a fixed list, no directory walking."""
    nm = jsd / "node_modules"
    files = {"/": jsd / "page" / "index.html", "/src/runner-core.mjs": jsd / "src" / "runner-core.mjs",
             f"/src/engines/{engine}.mjs": jsd / "src" / "engines" / f"{engine}.mjs"}
    if engine == "tfjs":
        tfjs, wasm = nm / "@tensorflow" / "tfjs" / "dist", nm / "@tensorflow" / "tfjs-backend-wasm" / "dist"
        files["/tfjs/tf.min.js"] = tfjs / "tf.min.js"
        files["/tfjs/tf-backend-wasm.min.js"] = wasm / "tf-backend-wasm.min.js"
        for w in sorted(wasm.glob("*.wasm")):
            files[f"/tfjs/{w.name}"] = w
    elif engine == "litert":
        core, utils = nm / "@litertjs" / "core", nm / "@litertjs" / "wasm-utils" / "dist"
        files["/litertjs/core/index.js"] = core / "dist" / "index.js"
        files["/litertjs/wasm-utils/index.js"] = utils / "index.js"
        for w in sorted((core / "wasm").glob("litert_wasm_*")):
            files[f"/litertjs/core/wasm/{w.name}"] = w
    elif engine == "ort":
        dist = nm / "onnxruntime-web" / "dist"
        files["/ort/ort.wasm.min.mjs"] = dist / "ort.wasm.min.mjs"
        for name in ("ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"):
            files[f"/ort/{name}"] = dist / name
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return files


class PageServer:
    """Serves the page, the TF.js files, one model's files and the current input; nothing else."""

    def __init__(self, files: dict[str, Path]):
        self.files = dict(files)
        self.input = b""
        self.served: dict[str, Path] = {}  # what the page fetched: its download, measured
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
                    server.served[path] = f
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for header, value in PAGE_HEADERS.items():  # cross-origin isolation, no caching
                    self.send_header(header, value)
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



class BrowserTransport:
    """The transport half of a browser session: mixed into a :class:`JSSession` that sets ``engine``
    and returns its model's files from :meth:`_model_files`."""

    engine: str  # set by the engine half (JSSession subclass)
    backend: str = "wasm"

    def _start(self) -> None:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        files = engine_files(self.engine, js_dir())
        files.update(self._model_files())
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
            self.page.goto(f"{self.server.url}?engine={self.engine}")
            self.page.wait_for_function("window.edgekit !== undefined")
        except PlaywrightError as e:
            self.close()
            raise RuntimeFailure(f"Chromium could not open edgekit's page: {first_line(e)}") from None
        self.environment = self.page.evaluate("window.edgekit.environment()")

    def _call(self, cmd: str, payload: dict[str, Any], data: np.ndarray | None = None):
        from playwright.sync_api import Error as PlaywrightError

        label = ENGINE_LABELS[self.engine]
        if data is not None:
            self.server.input = data.astype("<f4", copy=False).tobytes()
        self._console.clear()
        try:
            reply = self.page.evaluate(f"req => window.edgekit.{cmd}(req)", payload)
        except PlaywrightError as e:
            msg = _page_error(e)
            said = _engine_errors(self._console)
            if said and said not in msg:
                msg = f"{msg} (the engine's log: {said})"
            if cmd == "load":
                if "backend could not start" in msg:
                    raise RuntimeFailure(f"{label} in Chromium: {msg}") from None
                raise ModelLoadError(f"{label} in Chromium: {msg}") from None
            raise RuntimeFailure(f"{label} in Chromium, {cmd} failed: {msg}") from None
        out = None
        if cmd == "run":
            out = np.frombuffer(base64.b64decode(reply.pop("output_b64")), dtype="<f4")
        return reply, out

    def _artifact_label(self) -> str:
        return str(getattr(self, "path", "the model"))

    def _browser_facts(self) -> dict[str, Any]:
        served = self.server.served if self.server else {}
        engine = sorted(str(f) for u, f in served.items() if not u.startswith(("/model/", "/src/")) and u != "/")
        model = sorted(str(f) for u, f in served.items() if u.startswith("/model/"))
        return {"cross_origin_isolated": self.info.get("crossOriginIsolated"),
                "user_agent": self.environment.get("userAgent"),
                "downloads": {"engine": engine, "model": model}}

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory (VmHWM) of the page's renderer process, where the model runs."""
        return renderer_peak_mb()

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


def download_sizes(downloads: dict[str, list[str]] | None) -> dict[str, int] | None:
    """Bytes a page downloads to run a model, raw and gzip-compressed (as a web server sends them):
    the engine's files the page fetched and the model's. ``downloads`` is a session's
    ``describe()["downloads"]``."""
    if not downloads:
        return None
    out = {}
    for part in ("engine", "model"):
        files = [Path(f) for f in downloads.get(part) or [] if Path(f).is_file()]
        out[f"{part}_bytes"] = sum(f.stat().st_size for f in files)
        out[f"{part}_gzip_bytes"] = sum(_gzip_size(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    out["total_gzip_bytes"] = out["engine_gzip_bytes"] + out["model_gzip_bytes"]
    return out


@functools.lru_cache(maxsize=256)
def _gzip_size(path: str, size: int, mtime_ns: int) -> int:
    import zlib

    return len(zlib.compress(Path(path).read_bytes(), 6))


def _page_error(e: Exception) -> str:
    """The page's own message, without Playwright's wrapping ("Error: page.evaluate: Error: ...")."""
    msg = first_line(e)
    return msg.split("Error: ")[-1] if "Error: " in msg else msg


def _engine_errors(console: list[str], most: int = 2) -> str:
    """The last error lines an engine logged (LiteRT.js logs its reason there and throws a bare
    ``ERROR: [file:line]``): ``ERROR: third_party/.../util.cc BytesRequired ...`` -> ``BytesRequired ...``."""
    import re

    lines = []
    for text in console:
        for line in text.splitlines():
            m = re.match(r"\s*(?:ERROR|Error|error):\s*(?:\[?[\w./-]+\.(?:cc|h|cpp|c)(?::\d+)?\]?\s*)?(.*)", line)
            if m and m.group(1).strip():
                lines.append(m.group(1).strip().rstrip("."))
    return "; ".join(lines[-most:])


def renderer_peak_mb() -> float | None:
    """The largest VmHWM among this process's descendant Chromium renderer processes."""
    peaks = [status_kb(p, "VmHWM") for p in descendants(os.getpid()) if b"--type=renderer" in cmdline(p)]
    peaks = [p for p in peaks if p]
    return max(peaks) / 1024 if peaks else None
