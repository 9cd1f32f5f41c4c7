"""What ``edgekit bench --device URL`` speaks to an agent with.

:class:`RemoteDevice` checks the agent and its token once (one clear line if either is wrong),
sends each artifact and input array once (content-addressed by sha256: what the agent already
has is not sent again), and runs measurements there with :meth:`RemoteDevice.run`, which takes
the arguments of :func:`edgekit.runtimes.isolated.run_isolated` and returns its
:class:`WorkerResult`. An agent that stops answering mid-run gives failed results with the reason.

Example:
    >>> device = RemoteDevice("http://pi4.local:8765", token)            # doctest: +SKIP
    >>> r = device.run("litert", "model_int8.tflite", x, threads=4, timing={"runs": 100})   # doctest: +SKIP
    >>> r.ok, device.info["name"]                                        # doctest: +SKIP
    (True, 'pi4')
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edgekit.agent.store import batch_to_npz, npz_to_batch
from edgekit.agent.token import TOKEN_ENV
from edgekit.errors import InputError
from edgekit.io_spec import as_named
from edgekit.runtimes import format_of_path
from edgekit.runtimes.isolated import WorkerResult


class AgentUnreachable(InputError):
    pass


class RemoteDevice:
    def __init__(self, url: str, token: str | None):
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"--device {url} is not an http:// or https:// URL", hint="pass the URL the agent printed")
        if not token:
            raise InputError(f"the agent at {self.url} needs its token",
                             hint=f"pass --token, or set {TOKEN_ENV} to the token `edgekit agent` printed")
        self.token = token
        self.info = self._json("GET", "/v1/info", timeout=30)
        self.uploads = {"sent": 0, "cached": 0, "bytes": 0}
        self._known: dict[str, str] = {}  # local path -> sha256 of an artifact on the agent
        self._inputs: set[str] = set()  # sha256 of input arrays on the agent

    @property
    def label(self) -> str:
        return f"{self.info.get('name')} ({self.info.get('cpu')}, {self.info.get('cores')} cores)"

    # -- HTTP ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, *, timeout: float, headers=None):
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read()
            try:
                err = json.loads(detail)
                msg = err.get("error") or detail.decode(errors="replace")
            except (json.JSONDecodeError, UnicodeDecodeError):
                msg = f"HTTP {e.code}"
            if e.code == 401:
                raise InputError(f"the agent at {self.url} refused the token",
                                 hint=f"pass the token `edgekit agent` printed (--token or {TOKEN_ENV})") from None
            if e.code == 404 and method == "HEAD":
                return 404, b""
            raise InputError(f"the agent at {self.url} refused {path.split('/')[2]}: {msg}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise AgentUnreachable(f"cannot reach the agent at {self.url}: {reason}",
                                   hint="is `edgekit agent` running there, and is the URL the one it printed?") from None

    def _json(self, method: str, path: str, body: dict | None = None, *, timeout: float) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        _, raw = self._request(method, path, data, timeout=timeout, headers={"Content-Type": "application/json"})
        return json.loads(raw)

    # -- content-addressed uploads ---------------------------------------------------------
    def _ensure(self, kind: str, sha: str, payload, query: str = "") -> None:
        status, _ = self._request("HEAD", f"/v1/{kind}/{sha}", timeout=30)
        if status == 200:
            self.uploads["cached"] += 1
            return
        body = payload() if callable(payload) else payload
        self._request("PUT", f"/v1/{kind}/{sha}{query}", body, timeout=600)
        self.uploads["sent"] += 1
        self.uploads["bytes"] += len(body)

    def ensure_artifact(self, path: str | Path) -> str:
        path = Path(path)
        key = str(path.resolve())
        if key not in self._known:
            fmt = format_of_path(path)
            if fmt not in self.info.get("formats", []):
                raise InputError(f"{path.name}: the agent runs {', '.join(self.info.get('formats', []))} files, not {fmt or 'this'}")
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            self._ensure("artifacts", sha, data, f"?format={fmt}")
            self._known[key] = sha
        return self._known[key]

    def ensure_inputs(self, x) -> str:
        data = batch_to_npz(as_named(x))
        sha = hashlib.sha256(data).hexdigest()
        if sha not in self._inputs:
            self._ensure("inputs", sha, data)
            self._inputs.add(sha)
        return sha

    # -- measurements -------------------------------------------------------------------------
    def run(self, runtime: str, artifact: str | Path, inputs, *, threads: int | None = None,
            timing: dict[str, Any] | None = None, want_outputs: bool = True, timeout_s: float = 300.0,
            pin_cpus: bool = False) -> WorkerResult:
        """One measurement on the device, as :func:`run_isolated` makes one here."""
        try:
            job = {"artifact": self.ensure_artifact(artifact), "inputs": self.ensure_inputs(inputs) if inputs is not None else None,
                   "runtime": runtime, "threads": threads, "timing": timing, "want_outputs": want_outputs and inputs is not None,
                   "timeout_s": timeout_s, "pin_cpus": pin_cpus}
            reply = self._json("POST", "/v1/measure", job, timeout=timeout_s + 120)
        except InputError as e:
            return WorkerResult(False, error=f"on {self.info.get('name')}: {e.message}", error_type=type(e).__name__)
        outputs = npz_to_batch(base64.b64decode(reply["outputs"])) if reply.get("outputs") else None
        result = WorkerResult(bool(reply.get("ok")), reply.get("reply") or {}, outputs, reply.get("error"), reply.get("error_type"))
        result.reply["agent_window"] = [reply.get("agent_started"), reply.get("agent_ended")]  # when it ran there
        if not result.ok and result.error:
            result.error = f"on {self.info.get('name')}: {result.error}"
        return result
