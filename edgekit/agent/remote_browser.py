"""``edgekit bench --remote``: a phone's browser as the device, with no Python on it.

edgekit serves a controller page (``js/page/remote.html``) on the local network; a phone opens its
URL (printed, and shown as a QR code). The page runs each measurement in a fresh frame of the same
page runner the local browser runtimes use (``js/page/index.html``), one engine per frame, and posts
the answers back. On this side a :class:`RemoteTransport` replaces the Playwright transport of the
browser runtimes: the same engine halves (TF.js, LiteRT.js, ONNX Runtime Web), the same requests
(load, run, first, time), only answered by the phone. :class:`RemoteBrowser` has the ``run`` of
:func:`edgekit.runtimes.isolated.run_isolated`, so ``run_bench(device=...)`` takes it as it takes an
agent.

A random key in the URL (then a cookie) keeps other machines on the network from posting results.

Example:
    >>> phone = RemoteBrowser(host="0.0.0.0", port=8766)      # doctest: +SKIP
    >>> print(phone.url); phone.wait_for_phone(300)           # doctest: +SKIP
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError, ModelLoadError, RuntimeFailure
from edgekit.page_headers import PAGE_HEADERS
from edgekit.runtimes.browser import ENGINE_LABELS, engine_files
from edgekit.runtimes.isolated import WorkerResult
from edgekit.runtimes.js_env import js_dir

CALL_TIMEOUT_S = 300.0
POLL_S = 20.0


class RemoteBrowserServer:
    """The controller page, the page runner, every engine's files, the current model and input, and
    the request/answer exchange with the phone."""

    def __init__(self, host: str, port: int):
        import logging

        from waitress.server import create_server

        logging.getLogger("waitress").setLevel(logging.CRITICAL)  # a phone that goes away mid-request is not news
        jsd = js_dir()
        self.key = secrets.token_urlsafe(12)
        self.static: dict[str, Path] = {"/": jsd / "page" / "remote.html", "/runner": jsd / "page" / "index.html"}
        for engine in ("tfjs", "litert", "ort"):
            self.static.update({u: f for u, f in engine_files(engine, jsd).items() if u != "/"})
        self.model: dict[str, Path] = {}
        self.input = b""
        self.phone: dict[str, Any] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, Any] | None = None  # the request the phone has not taken yet
        self._replies: dict[int, dict] = {}
        self._cv = threading.Condition()
        self.server = create_server(self._app, host=host, port=port, threads=4, ident="edgekit-remote")
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    # -- WSGI ------------------------------------------------------------------------------------
    def _app(self, environ, start_response):
        from werkzeug.wrappers import Request, Response

        req = Request(environ)
        path = req.path
        if path == "/" and req.args.get("k") == self.key:
            resp = self._file(self.static["/"])
            resp.set_cookie("edgekit_k", self.key, httponly=True, samesite="Strict")
        elif req.cookies.get("edgekit_k") != self.key:
            resp = Response("open the URL edgekit printed", status=403)
        elif path == "/rpc/hello" and req.method == "POST":
            with self._cv:
                self.phone = json.loads(req.get_data() or b"{}")
                self._cv.notify_all()
            resp = Response("{}", mimetype="application/json")
        elif path == "/rpc/next":
            cmd = self._take()
            resp = Response(status=204) if cmd is None else Response(json.dumps(cmd), mimetype="application/json")
        elif path == "/rpc/reply" and req.method == "POST":
            reply = json.loads(req.get_data() or b"{}")
            with self._cv:
                self._replies[int(reply.get("id", 0))] = reply
                self._cv.notify_all()
            resp = Response("{}", mimetype="application/json")
        elif path == "/data/input.bin":
            resp = Response(self.input, mimetype="application/octet-stream")
        elif path in self.model or path in self.static:
            resp = self._file((self.model | self.static)[path])
        else:
            resp = Response("not found", status=404)
        resp.headers.update(PAGE_HEADERS)  # cross-origin isolation, as locally
        return resp(environ, start_response)

    @staticmethod
    def _file(path: Path):
        from werkzeug.wrappers import Response

        types = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
                 ".wasm": "application/wasm", ".json": "application/json"}
        return Response(path.read_bytes(), mimetype=types.get(path.suffix, "application/octet-stream"))

    def _take(self) -> dict | None:
        with self._cv:
            if self._pending is None:
                self._cv.wait(POLL_S)
            cmd, self._pending = self._pending, None
            return cmd

    # -- this side ---------------------------------------------------------------------------------
    @property
    def url_path(self) -> str:
        return f"/?k={self.key}"

    def wait_for_phone(self, timeout_s: float) -> dict:
        with self._cv:
            if not self._cv.wait_for(lambda: self.phone is not None, timeout_s):
                raise InputError(f"no browser opened the page in {timeout_s:.0f} s",
                                 hint="open the printed URL on the phone (same network), or scan the QR code")
            return self.phone

    def call(self, cmd: str, payload: dict | None = None, *, timeout_s: float = CALL_TIMEOUT_S, **extra) -> dict:
        """Send one request to the phone's page and wait for its answer."""
        with self._cv:
            cid = next(self._ids)
            self._pending = {"id": cid, "cmd": cmd, "payload": payload or {}, **extra}
            self._cv.notify_all()
            if not self._cv.wait_for(lambda: cid in self._replies, timeout_s):
                self._pending = None
                raise RuntimeFailure(f"the phone gave no answer to {cmd} in {timeout_s:.0f} s (is the page still open?)")
            return self._replies.pop(cid)

    def close(self) -> None:
        try:
            self.server.close()
        except Exception:
            pass


class RemoteTransport:
    """The transport half of a session whose page runs on the phone (mixed in before an engine half)."""

    server: RemoteBrowserServer
    engine: str

    def _start(self) -> None:
        self.server.model = self._model_files()
        reply = self.server.call("open", engine=self.engine, artifact=Path(str(getattr(self, "path", "model"))).name)
        if not reply.get("ok"):
            raise ModelLoadError(f"{ENGINE_LABELS[self.engine]} on the phone: {reply.get('error')}")
        self.environment = reply["result"]

    def _call(self, cmd: str, payload: dict[str, Any], data: np.ndarray | None = None):
        if data is not None:
            self.server.input = data.astype("<f4", copy=False).tobytes()
        reply = self.server.call(cmd, payload)
        label = ENGINE_LABELS[self.engine]
        if not reply.get("ok"):
            if cmd == "load":
                raise ModelLoadError(f"{label} on the phone: {reply.get('error')}")
            raise RuntimeFailure(f"{label} on the phone, {cmd} failed: {reply.get('error')}")
        result = reply["result"]
        out = np.frombuffer(base64.b64decode(result.pop("output_b64")), dtype="<f4") if cmd == "run" else None
        return result, out

    def peak_rss_mb(self) -> float | None:
        return None  # a web page cannot see its process's memory

    def close(self) -> None:
        try:
            self.server.call("close", timeout_s=30)
        except RuntimeFailure:
            pass


def _session_class(runtime: str):
    from edgekit.runtimes.litert_browser import LiteRTWebSession
    from edgekit.runtimes.ort_web import ORTWebSession
    from edgekit.runtimes.tfjs_browser import tfjs_model_files
    from edgekit.runtimes.tfjs_common import TFJSSession

    class RemoteTFJS(RemoteTransport, TFJSSession):
        engine = "tfjs"

        def _model_files(self):
            return tfjs_model_files(self.model)

    classes = {"tfjs-browser": RemoteTFJS, "litert-browser": type("RemoteLiteRT", (RemoteTransport, LiteRTWebSession), {}),
               "ort-browser": type("RemoteORT", (RemoteTransport, ORTWebSession), {})}
    return classes.get(runtime)


class RemoteBrowser:
    """A phone's browser as the device ``run_bench`` measures on (``device=``)."""

    def __init__(self, host: str = "0.0.0.0", port: int = 8766):
        self.server = RemoteBrowserServer(host, port)
        shown = host
        if host in ("0.0.0.0", "::"):
            from edgekit.agent.network import lan_address

            shown = lan_address()
        self.base_url = f"http://{shown}:{self.server.server.effective_port}"
        self.url = self.base_url + self.server.url_path  # what the phone opens (with its key)
        self.info: dict[str, Any] = {}
        self.uploads = {"sent": 0, "cached": 0, "bytes": 0}

    def wait_for_phone(self, timeout_s: float = 600.0) -> None:
        phone = self.server.wait_for_phone(timeout_s)
        ua = str(phone.get("userAgent", "a browser"))
        self.info = {"name": _short_agent(ua), "cpu": "a phone's browser", "cores": phone.get("hardwareConcurrency"),
                     "platform": ua, "user_agent": ua, "runtimes": {}, "served_from": self.base_url,
                     "cross_origin_isolated": phone.get("crossOriginIsolated")}

    @property
    def label(self) -> str:
        return f"{self.info.get('name')} ({self.info.get('cores')} cores)"

    def run(self, runtime: str, artifact, inputs, *, threads: int | None = None, timing: dict | None = None,
            want_outputs: bool = True, timeout_s: float = CALL_TIMEOUT_S, pin_cpus: bool = False) -> WorkerResult:
        """One measurement in the phone's page, as :func:`run_isolated` makes one here."""
        from edgekit.errors import EdgekitError, first_line
        from edgekit.io_spec import as_named, load_batch
        from edgekit.runtimes.worker import measure

        cls = _session_class(runtime)
        if cls is None:
            return WorkerResult(False, error=f"a phone's browser runs tfjs-browser, litert-browser and ort-browser, not {runtime}",
                                error_type="UsageError")
        cls.server = self.server
        try:
            t0 = time.perf_counter()
            session = cls(str(artifact), threads=threads)
            reply: dict[str, Any] = {"ok": True, "runtime": runtime, "init_ms": round((time.perf_counter() - t0) * 1e3, 3),
                                     "runtime_version": f"{ENGINE_LABELS[session.engine]} in {self.info.get('name')}"}
            try:
                reply["artifact_info"] = session.describe()
                reply["startup_ms"], reply["init_ms"] = reply["init_ms"], session.info.get("init_ms")
                with tempfile.TemporaryDirectory(prefix="edgekit-remote-") as tmp:
                    out = Path(tmp) / "outputs"
                    measure(session, as_named(inputs) if inputs is not None else None, {"timing": timing, "outputs": str(out) if want_outputs and inputs is not None
                                               else None}, reply)
                    outputs = load_batch(out) if want_outputs and inputs is not None else None
            finally:
                session.close()
            reply["peak_rss_mb"] = None
            return WorkerResult(True, reply, outputs)
        except EdgekitError as e:
            return WorkerResult(False, error=f"on {self.info.get('name')}: {e.message}", error_type=type(e).__name__)
        except Exception as e:  # the phone's page sent something unexpected
            return WorkerResult(False, error=f"on {self.info.get('name')}: {first_line(e, with_type=True)}",
                                error_type=type(e).__name__)

    def close(self) -> None:
        try:
            self.server.call("done", timeout_s=10)
        except RuntimeFailure:
            pass
        time.sleep(0.3)  # let the page's last request finish before the server goes
        self.server.close()


def _short_agent(ua: str) -> str:
    """``Chrome 156 on Android 11; Pixel 5`` from a user agent string."""
    import re

    browser = next((f"{n} {m.group(1)}" for n, p in (("Edge", r"Edg/(\d+)"), ("Chrome", r"Chrome/(\d+)"),
                                                     ("Firefox", r"Firefox/(\d+)"), ("Safari", r"Version/(\d+).*Safari"))
                    if (m := re.search(p, ua))), "a browser")
    m = re.search(r"\(([^)]*)\)", ua)
    system = m.group(1).replace("Linux; ", "") if m else ""
    return f"{browser} on {system}" if system else browser
