"""A session whose model runs in a JS engine: the Session interface over ``js/src/runner-core.mjs``.

The engine (TF.js, LiteRT.js, ONNX Runtime Web) lives in another program (a Node process, a
Chromium page), so latency is measured there, in JS, by the runner's ``time`` request;
:meth:`JSSession.time_calls` returns those samples in nanoseconds, in the same form as
:func:`harness.time_calls`. Subclasses supply the transport (:meth:`_start`, :meth:`_call`: one
request with an optional float32 array, the reply and an optional output array) and the engine's
load request; each tensor's :class:`~edgekit.runtimes.binding.BoundTensor` turns edgekit's float32
arrays into the values the artifact takes at its boundary (int8 for a full-integer model) and back.

Example:
    >>> s = LiteRTBrowserRuntime().load("model_int8.tflite", threads=1)   # doctest: +SKIP
    >>> s.run(x)["output"].shape, s.describe()["engine"]                 # doctest: +SKIP
    ((64, 10), 'litert')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.io_spec import concat, interface_names, take
from edgekit.runtimes.binding import BoundTensor, dims, feeds, io_record, rows_of

RUN_BLOCK_ROWS = 256  # rows sent to the JS runner per message by run()


class JSSession:
    """One model loaded in one JS engine, behind one transport."""

    def __init__(self, path: str, *, threads: int | None = None):
        self.threads = threads
        self._open(path)
        self._start()
        try:
            self.info = self._call("load", self._load_request())[0]
        except BaseException:
            self.close()
            raise
        ins, outs = self.info["inputs"], self.info["outputs"]
        in_names, out_names = interface_names([t["name"] for t in ins], [t["name"] for t in outs])
        self.inputs = self._boundary([_bound(n, t) for n, t in zip(in_names, ins, strict=True)], "inputs")
        self.outputs = self._boundary([_bound(n, t) for n, t in zip(out_names, outs, strict=True)], "outputs")

    # -- supplied by subclasses ------------------------------------------------------------
    def _open(self, path: str) -> None:
        """Read and check the artifact on this side before any engine sees it."""
        raise NotImplementedError

    def _load_request(self) -> dict[str, Any]:
        return {"threads": self.threads}

    def _start(self) -> None:
        raise NotImplementedError

    def _call(self, cmd: str, payload: dict[str, Any], data: np.ndarray | None = None) -> tuple[dict, np.ndarray | None]:
        raise NotImplementedError

    def _boundary(self, tensors: list[BoundTensor], side: str) -> list[BoundTensor]:
        """The tensors as the engine reported them, with what it does not report added (LiteRT.js: the
        int8 scale and zero point, read from the file)."""
        return tensors

    def close(self) -> None:
        pass

    # -- the Session interface --------------------------------------------------------------
    def _message(self, batch) -> tuple[dict[str, Any], np.ndarray]:
        """The inputs as the runner takes them: their shapes (in the model's order) and one float32
        buffer holding them in turn, each already as its tensor takes it (int8 values at an int8 boundary)."""
        x = feeds(batch, self.inputs)
        arrays = [np.ascontiguousarray(t.quantize(np.asarray(x[t.name], np.float32)) if t.quantized else x[t.name],
                                       dtype="<f4") for t in self.inputs]
        return {"shapes": [list(a.shape) for a in arrays]}, np.concatenate([a.reshape(-1) for a in arrays])

    def run(self, batch) -> dict[str, np.ndarray]:
        x = feeds(batch, self.inputs)
        blocks: list[dict] = []
        for i in range(0, max(rows_of(x), 1), RUN_BLOCK_ROWS):  # a block at a time: x may be memory-mapped
            payload, data = self._message(take(x, i, i + RUN_BLOCK_ROWS))
            reply, y = self._call("run", payload, data)
            out, offset = {}, 0
            for t, shape in zip(self.outputs, reply["shapes"], strict=True):
                n = int(np.prod(shape))
                out[t.name] = t.dequantize(y[offset : offset + n].reshape(shape))
                offset += n
            blocks.append(out)
        return concat(blocks)

    def first_ms(self, batch) -> float:
        payload, data = self._message(take(feeds(batch, self.inputs), 0, 1))
        return float(self._call("first", payload, data)[0]["first_ms"])

    def time_calls(self, batch, *, warmup: int = 10, runs: int = 100, min_time_s: float = 0.5,
                   max_time_s: float = 30.0) -> list[int]:
        """Per-inference times (ns), measured in JS around the engine's call and reading its outputs."""
        payload, data = self._message(take(feeds(batch, self.inputs), 0, 1))
        settings = {"warmup": warmup, "runs": runs, "min_time_s": min_time_s, "max_time_s": max_time_s}
        reply, _ = self._call("time", {**payload, **settings}, data)
        return [int(round(ms * 1e6)) for ms in reply["samples_ms"]]

    def bind(self, batch) -> Callable[[], Any]:
        """One inference per call, through the transport: for checks, not for timing."""
        first = take(feeds(batch, self.inputs), 0, 1)
        return lambda: self.run(first)

    def _io(self) -> dict[str, Any]:
        """This session's part of ``describe()``: every tensor, and the first input's and output's summary."""
        return io_record(self.inputs, self.outputs)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _bound(name: str, t: dict) -> BoundTensor:
    """A tensor as a JS engine's load reply lists it (``{name, shape, dtype}``)."""
    return BoundTensor(name, t["name"], dims(t.get("shape") or []), t.get("dtype") or "float32")
