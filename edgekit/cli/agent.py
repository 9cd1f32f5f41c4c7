"""``edgekit agent [--host H] [--port P] [--name NAME]``: serve this device's measurements."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Run edgekit's measurement worker as a server on this device (a Raspberry Pi, a board).

On your own machine, `edgekit bench ARTIFACTS --device URL` then measures every artifact here,
with the same worker and the same fields as a local bench, labelled measured on this device.
Needs no TensorFlow: `pip install "edgekit\\[agent]"` (ai-edge-litert, onnxruntime, NumPy, waitress).

It binds 127.0.0.1 unless --host is given (--host 0.0.0.0: every interface of a trusted LAN; put
TLS in front of it beyond that, see docs/devices.md). Every request needs the token: from
EDGEKIT_AGENT_TOKEN when set, else generated on first start and kept (mode 600). Artifacts
(.tflite, .onnx) and input arrays are cached here by sha256 and checked before anything runs them.

Example: edgekit agent --host 0.0.0.0 --port 8765 --name pi4
"""


def agent(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: every interface)."),
    port: int = typer.Option(8765, "--port", "-p", help="Port (0: any free one)."),
    name: str = typer.Option(None, "--name", help="This device's name in reports (default: the host name)."),
    cache: Path = typer.Option(None, "--cache", help="Where artifacts are cached (default: ~/.cache/edgekit/agent)."),
    max_upload_mb: float = typer.Option(256.0, "--max-upload-mb", help="Largest artifact or input upload accepted."),
    token_file: Path = typer.Option(None, "--token-file", help="Where a generated token is kept (default: ~/.config/edgekit/agent-token)."),
) -> int:
    import os
    import socket

    from edgekit.agent.network import lan_address
    from edgekit.agent.server import AgentApp, make_server
    from edgekit.agent.store import Store
    from edgekit.agent.token import TOKEN_ENV, agent_token
    from edgekit.errors import UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port number (0 to 65535)")
    if max_upload_mb <= 0:
        raise UsageError("--max-upload-mb must be positive")
    name = name or socket.gethostname()
    cache = Path(cache or Path(os.environ.get("EDGEKIT_CACHE", Path.home() / ".cache" / "edgekit")) / "agent")
    store = Store(cache, max_bytes=int(max_upload_mb * 1e6))
    token, origin = agent_token(token_file)
    app = AgentApp(store, token=token, name=name)
    try:
        server = make_server(app, host, port)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}", hint="pick another --port, or 0 for any free one") from None
    shown = host if host not in ("0.0.0.0", "::") else lan_address()
    url = f"http://{shown}:{server.effective_port}"
    runtimes = ", ".join(f"{k} {v['version']}" for k, v in app.info["runtimes"].items()) or "none"
    print(f"edgekit agent '{name}' on {url} ({app.info['cpu']}, {app.info['cores']} cores; runtimes: {runtimes})", flush=True)
    print(f"token: {origin}", flush=True)
    print(f"on your machine: {TOKEN_ENV}={token} edgekit bench ARTIFACTS --device {url}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
