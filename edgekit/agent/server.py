"""The agent's HTTP API, served by waitress (a production WSGI server) with Werkzeug's routing.

Every request carries ``Authorization: Bearer TOKEN``; a wrong or missing token gets 401 and
nothing else. Endpoints (JSON unless said):

- ``GET /v1/info``: the device (name, CPU, cores, memory), edgekit's version, the runtimes it can
  run with their versions, the upload limit.
- ``HEAD /v1/artifacts/SHA`` (200 cached, 404 not) and ``PUT /v1/artifacts/SHA?format=tflite|onnx``
  (the file's bytes). The same for ``/v1/inputs/SHA`` (an ``.npz`` of arrays).
- ``POST /v1/measure``: ``{artifact, inputs, runtime, threads, timing, want_outputs, timeout_s}``
  -> the worker's result (``ok``, ``reply``, ``error``, ``error_type``) and its outputs as a
  base64 ``.npz``. One measurement at a time: concurrent clients wait their turn, so no
  measurement disturbs another's timing.

Example:
    >>> app = AgentApp(Store(cache, max_bytes=256 << 20), token="...", name="pi4")   # doctest: +SKIP
    >>> serve(app, host="127.0.0.1", port=8765)                                     # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

import edgekit
from edgekit.agent.store import FORMATS, Store, TooLarge, batch_to_npz, npz_to_batch
from edgekit.agent.token import same_token
from edgekit.errors import EdgekitError

MAX_TIMEOUT_S = 3600.0


def device_info(name: str, store: Store) -> dict[str, Any]:
    """What this device is and what it can run (runtimes for the formats the agent takes)."""
    from edgekit.reports.machine import machine_info
    from edgekit.runtimes import RUNTIMES, get_runtime

    runtimes = {}
    for rt, (_, _, formats) in RUNTIMES.items():
        if not set(formats) & set(FORMATS) or rt.endswith("-browser"):
            continue
        r = get_runtime(rt)
        try:
            if r.is_available():
                runtimes[rt] = {"version": r.version(), "formats": list(formats)}
        except Exception:
            continue
    memory_mb = None
    try:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 20)
    except (ValueError, OSError, AttributeError):
        pass
    m = machine_info()
    return {"name": name, "edgekit_version": edgekit.__version__, "cpu": m["cpu"], "cores": m["cores"],
            "platform": m["platform"], "memory_mb": round(memory_mb) if memory_mb else None, "runtimes": runtimes,
            "formats": sorted(FORMATS), "max_upload_mb": store.max_bytes / 1e6}


class AgentApp:
    def __init__(self, store: Store, *, token: str, name: str):
        self.store, self.token, self.name = store, token, name
        self.info = device_info(name, store)
        self.measure_lock = threading.Lock()
        self.url_map = Map([
            Rule("/v1/info", endpoint="info", methods=["GET"]),
            Rule("/v1/artifacts/<sha>", endpoint="artifact", methods=["HEAD", "GET", "PUT"]),
            Rule("/v1/inputs/<sha>", endpoint="inputs", methods=["HEAD", "GET", "PUT"]),
            Rule("/v1/measure", endpoint="measure", methods=["POST"]),
        ])

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            auth = request.headers.get("Authorization", "")
            given = auth[7:] if auth.startswith("Bearer ") else None
            if not same_token(given, self.token):
                response = _json({"error": "this agent needs its token (Authorization: Bearer TOKEN)"}, 401)
            else:
                endpoint, args = self.url_map.bind_to_environ(environ).match()
                response = getattr(self, f"on_{endpoint}")(request, **args)
        except TooLarge as e:
            response = _json({"error": e.message, "hint": e.hint}, 413)
        except EdgekitError as e:
            response = _json({"error": e.message, "hint": e.hint}, 400)
        except HTTPException as e:
            response = _json({"error": e.description}, e.code or 500)
        return response(environ, start_response)

    def on_info(self, request: Request) -> Response:
        return _json(self.info)

    def _upload(self, request: Request, sha: str, kind: str) -> Response:
        found = self.store.artifact(sha) if kind == "artifact" else self.store.inputs(sha)
        if request.method in ("HEAD", "GET"):
            if found is None:
                raise NotFound(f"no {kind} {sha[:12]}... here")
            return _json({"sha256": sha, "bytes": found.stat().st_size})
        if kind == "artifact":
            self.store.put_artifact(sha, request.args.get("format", ""), request.stream, request.content_length)
        else:
            self.store.put_inputs(sha, request.stream, request.content_length)
        return _json({"sha256": sha, "stored": True}, 201)

    def on_artifact(self, request: Request, sha: str) -> Response:
        return self._upload(request, sha, "artifact")

    def on_inputs(self, request: Request, sha: str) -> Response:
        return self._upload(request, sha, "inputs")

    def on_measure(self, request: Request) -> Response:
        from edgekit.errors import InputError
        from edgekit.runtimes.isolated import run_isolated

        try:
            job = json.loads(request.get_data(cache=False) or b"{}")
        except json.JSONDecodeError:
            raise InputError("the measurement request is not JSON") from None
        artifact = self.store.artifact(str(job.get("artifact", "")))
        if artifact is None:
            raise InputError("the artifact is not in this agent's cache: upload it first")
        runtime = job.get("runtime")
        if runtime not in self.info["runtimes"]:
            raise InputError(f"this agent cannot run {runtime!r}; it runs {', '.join(self.info['runtimes']) or 'nothing'}")
        x = None
        if job.get("inputs"):
            path = self.store.inputs(str(job["inputs"]))
            if path is None:
                raise InputError("the inputs are not in this agent's cache: upload them first")
            x = npz_to_batch(path)
        threads = job.get("threads")
        timeout_s = min(float(job.get("timeout_s") or 300.0), MAX_TIMEOUT_S)
        with self.measure_lock:  # one measurement at a time: they would disturb each other's timings
            started = time.time()
            r = run_isolated(runtime, artifact, x, threads=int(threads) if threads else None, timing=job.get("timing"),
                             want_outputs=bool(job.get("want_outputs", True)), timeout_s=timeout_s,
                             pin_cpus=bool(job.get("pin_cpus")))
            ended = time.time()
        outputs = base64.b64encode(batch_to_npz(r.outputs)).decode() if r.outputs is not None else None
        return _json({"ok": r.ok, "reply": r.reply, "error": r.error, "error_type": r.error_type, "outputs": outputs,
                      "agent_started": started, "agent_ended": ended})


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def make_server(app: AgentApp, host: str, port: int):
    """A waitress server for ``app`` (port 0: the OS picks one; ``server.effective_port`` says which)."""
    from waitress.server import create_server

    # Uploads are limited by the store as they stream in; waitress's own cap is set above it.
    return create_server(app, host=host, port=port, threads=4, max_request_body_size=app.store.max_bytes + (1 << 20),
                         ident="edgekit-agent")
