"""Where the JavaScript side of edgekit lives: Node, the npm packages in ``js/``, and Chromium.

Nothing is fetched at run time: ``make install`` runs ``npm ci`` in ``js/`` and installs
Debian's ``chromium``. When something is missing, the error says which install command fixes it.

Environment overrides: ``EDGEKIT_JS_DIR`` (the folder with package.json and node_modules),
``EDGEKIT_NODE`` (the node binary), ``EDGEKIT_CHROMIUM`` (the browser binary).

Example:
    >>> js_dir().name                     # doctest: +SKIP
    'js'
    >>> node_binary()                     # doctest: +SKIP
    '/usr/bin/node'
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgekit.errors import RuntimeFailure

_REPO_JS = Path(__file__).resolve().parents[2] / "js"

NPM_PACKAGES = ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class MissingDependency(RuntimeFailure):
    """A program or package the runtime needs is not installed. Exit code 2: fix the setup."""

    exit_code = 2


def js_dir() -> Path:
    """The folder with package.json and node_modules; raise MissingDependency if not installed."""
    d = Path(os.environ.get("EDGEKIT_JS_DIR", _REPO_JS))
    if not (d / "package.json").is_file():
        raise MissingDependency(f"edgekit's JavaScript runner is not at {d}", hint="set EDGEKIT_JS_DIR to the js/ folder of an edgekit checkout")
    for pkg in NPM_PACKAGES:
        if not (d / "node_modules" / pkg / "package.json").is_file():
            raise MissingDependency(f"the npm package {pkg} is not installed in {d}", hint=f"run `make install` (or `npm ci --prefix {d}`)")
    return d


def node_binary() -> str:
    node = os.environ.get("EDGEKIT_NODE") or shutil.which("node")
    if node and not Path(node).is_file():
        raise MissingDependency(f"EDGEKIT_NODE points to {node}, which does not exist")
    if not node:
        raise MissingDependency("Node.js is not installed", hint="install Node.js 18 or newer (apt-get install -y nodejs), then run `make install`")
    return node


def chromium_binary() -> str:
    path = os.environ.get("EDGEKIT_CHROMIUM")
    if path:
        if not Path(path).is_file():
            raise MissingDependency(f"EDGEKIT_CHROMIUM points to {path}, which does not exist")
        return path
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise MissingDependency("Chromium is not installed", hint="run `sudo apt-get install -y chromium` (or set EDGEKIT_CHROMIUM)")


def node_available() -> bool:
    try:
        node_binary()
        js_dir()
        return True
    except MissingDependency:
        return False


def npm_version(package: str) -> str:
    import json

    return json.loads((js_dir() / "node_modules" / package / "package.json").read_text())["version"]
