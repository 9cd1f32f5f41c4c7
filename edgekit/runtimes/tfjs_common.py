"""The TF.js side of the JS runtimes: a session over a TF.js graph model (model.json + shards).

Example:
    >>> s = TFJSNodeRuntime().load("model_fp32_tfjs", threads=1)   # doctest: +SKIP
    >>> s.run(x)["output"].shape, s.describe()["backend"]          # doctest: +SKIP
    ((64, 10), 'wasm')
"""

from __future__ import annotations

from typing import Any

from edgekit.runtimes.js_session import JSSession
from edgekit.tfjs_model import TFJSModel, read_tfjs_model

QUANT_OF_WEIGHTS = {"float32": "fp32", "float16": "fp16", "uint8": "uint8", "uint16": "uint16"}


class TFJSSession(JSSession):
    """One TF.js graph model loaded on one backend in a JS host."""

    backend: str = "wasm"
    engine = "tfjs"

    def __init__(self, path: str, *, threads: int | None = None, backend: str | None = None):
        self.backend = backend or self.backend
        super().__init__(path, threads=threads)

    def _open(self, path: str) -> None:
        self.model: TFJSModel = read_tfjs_model(path)

    def _load_request(self) -> dict[str, Any]:
        return {"backend": self.backend, "threads": self.threads}

    def profile_ops(self, batch, runs: int) -> dict[str, Any]:
        """Each kernel's time per inference over ``runs`` inferences of the first sample: ``tf.profile``
        in the JS runner (Node or Chromium), each kernel matched to the graph node it ran for
        (edgekit.profiling.tfjs_ops), and the graph executor's cost per node, measured on chains in the same engine."""
        from edgekit.io_spec import take
        from edgekit.profiling.tfjs_ops import chain_topologies, per_kernel
        from edgekit.runtimes.binding import feeds

        payload, data = self._message(take(feeds(batch, self.inputs), 0, 1))
        reply, _ = self._call("profile", {**payload, "runs": runs, "warmup": 5, "chains": chain_topologies()}, data)
        return per_kernel(reply, self.model.json_path, runs)

    def describe(self) -> dict[str, Any]:
        info = self.info
        return {
            **self._io(),
            "engine": "tfjs",
            "backend": info.get("backend"),
            "threads": info.get("threads"),
            "tfjs_version": info.get("tfjs_version"),
            "weights": self.model.weight_dtype,
            "weight_dtypes": info.get("weight_dtypes", {}),
            "compute": "float32",
            "ops": info.get("ops", {}),
            "quant_guess": QUANT_OF_WEIGHTS.get(self.model.weight_dtype, "?"),
            "js_init_ms": info.get("init_ms"),
        }

