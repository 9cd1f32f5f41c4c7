"""tfjs-node: TF.js graph models in Node.js, pure ``@tensorflow/tfjs`` with the wasm backend.

The Node process and its protocol are :mod:`edgekit.runtimes.node`'s; this module adds the TF.js
engine. ``@tensorflow/tfjs-node`` is not used: it downloads a native binary at install.

Example:
    >>> s = TFJSNodeRuntime().load("runs/demo/export/model_uint8_tfjs")   # doctest: +SKIP
    >>> s.describe()["weights"]                                          # doctest: +SKIP
    'uint8'
"""

from __future__ import annotations

from edgekit.runtimes.js_env import node_available, npm_version
from edgekit.runtimes.node import NodeTransport, node_version
from edgekit.runtimes.tfjs_common import TFJSSession


class TFJSNodeRuntime:
    name = "tfjs-node"
    formats = ("tfjs",)
    backend = "wasm"

    def is_available(self) -> bool:
        return node_available()

    def version(self) -> str:
        return f"tfjs {npm_version('@tensorflow/tfjs')} ({self.backend}), node {node_version()}"

    def load(self, artifact: str, *, threads: int | None = None) -> TFJSNodeSession:
        return TFJSNodeSession(artifact, threads=threads, backend=self.backend)


class TFJSNodeCPURuntime(TFJSNodeRuntime):
    """The plain-JS cpu backend: the slow baseline every browser can fall back to."""

    name = "tfjs-node-cpu"
    backend = "cpu"


class TFJSNodeSession(NodeTransport, TFJSSession):
    engine = "tfjs"

    def _model_arg(self) -> str:
        return str(self.model.json_path.resolve())

    def _artifact_label(self) -> str:
        return str(self.model.dir)
