"""The agent's token: from ``EDGEKIT_AGENT_TOKEN``, else generated once and kept with mode 600.

Example:
    >>> token, origin = agent_token(Path("/tmp/edgekit-agent-token"))   # doctest: +SKIP
    >>> same_token(token, token)                                       # doctest: +SKIP
    True
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_ENV = "EDGEKIT_AGENT_TOKEN"


def default_token_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "edgekit" / "agent-token"


def agent_token(path: Path | None = None) -> tuple[str, str]:
    """``(token, where it came from)``: the environment, the stored file, or a new one stored now."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], f"from {TOKEN_ENV}"
    path = Path(path or default_token_path())
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token, f"stored in {path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # readable by its owner only
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, f"generated and stored in {path} (mode 600)"


def same_token(given: str | None, token: str) -> bool:
    """Constant-time comparison: how long it takes says nothing about how much of it was right."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
