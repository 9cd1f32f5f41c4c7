"""A session whose model runs in a JS engine: the Session interface over ``js/src/runner-core.mjs``.

The engine (TF.js, LiteRT.js, ONNX Runtime Web) lives in another program (a Node process, a
Chromium page), so latency is measured there, in JS, by the runner's ``time`` request;
:meth:`JSSession.time_calls` returns those samples in nanoseconds, in the same form as
:func:`harness.time_calls`. Subclasses supply the transport (:meth:`_start`, :meth:`_call`: one
request with an optional float32 array, the reply and an optional output array) and the engine's
load request; :meth:`_encode` and :meth:`_decode` turn edgekit's float32 arrays into the values the
artifact takes at its boundary (int8 for a full-integer model) and back.

Example:
    >>> s = LiteRTBrowserRuntime().load("model_int8.tflite", threads=1)   # doctest: +SKIP
    >>> s.run(x).shape, s.describe()["engine"]                           # doctest: +SKIP
    ((64, 10), 'litert')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.errors import ShapeError
from edgekit.io_spec import concat, rows, take
from edgekit.shapes import fits

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
        shape = self.info["input"]["shape"]
        self.input_shape = tuple(d if isinstance(d, int) and d > 0 else None for d in shape[1:])
        self._ins = self.info.get("inputs") or [self.info["input"]]
        self._outs = self.info.get("outputs") or [self.info["output"]]
        self.multi = len(self._ins) > 1 or len(self._outs) > 1  # bound by the signature's names

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

    def _encode(self, k: int, x: np.ndarray) -> np.ndarray:
        """Input ``k`` (float32) as the float32 values the engine's input tensor takes."""
        return x

    def _decode(self, k: int, y: np.ndarray) -> np.ndarray:
        """Output ``k`` as the engine gave it (float32 values) back as float32 results."""
        return y

    def close(self) -> None:
        pass

    # -- the Session interface --------------------------------------------------------------
    def _check(self, x: np.ndarray) -> np.ndarray:
        if not fits(self.input_shape, x.shape[1:]):
            raise ShapeError(f"input shape {tuple(x.shape[1:])} does not fit the model's {self.input_shape}")
        return np.ascontiguousarray(self._encode(0, np.asarray(x, dtype=np.float32)), dtype="<f4")

    def _named(self, x) -> tuple[list[list[int]], np.ndarray]:
        """Several inputs: their shapes (in the model's order) and one float32 buffer holding them in turn."""
        if not isinstance(x, dict):
            x = {self._ins[0]["name"]: x}
        missing = [t["name"] for t in self._ins if t["name"] not in x]
        if missing:
            raise ShapeError(f"no data for input {', '.join(missing)}; the model takes {', '.join(t['name'] for t in self._ins)}")
        arrays = [np.ascontiguousarray(self._encode(k, np.asarray(x[t["name"]], dtype=np.float32)), dtype="<f4")
                  for k, t in enumerate(self._ins)]
        for t, a in zip(self._ins, arrays, strict=True):
            want = tuple(d if isinstance(d, int) and d > 0 else None for d in t["shape"][1:])
            if not fits(want, a.shape[1:]):
                raise ShapeError(f"input '{t['name']}' has shape {tuple(a.shape[1:])}, the model's is {want}")
        return [list(a.shape) for a in arrays], np.concatenate([a.reshape(-1) for a in arrays])

    def _run_named(self, x):
        blocks: list[dict] = []
        for i in range(0, max(rows(x), 1), RUN_BLOCK_ROWS):
            shapes, data = self._named(take(x, i, i + RUN_BLOCK_ROWS))
            reply, y = self._call("run", {"shape": shapes[0], "shapes": shapes}, data)
            out, offset = {}, 0
            for k, (name, shape) in enumerate(zip(reply["names"], reply["shapes"], strict=True)):
                n = int(np.prod(shape))
                out[name] = self._decode(k, y[offset : offset + n].reshape(shape))
                offset += n
            blocks.append(out)
        joined = concat(blocks)
        return joined if len(joined) > 1 else next(iter(joined.values()))

    def run(self, x):
        if self.multi:
            return self._run_named(x)
        outs = []
        for i in range(0, max(len(x), 1), RUN_BLOCK_ROWS):  # a block at a time: x may be memory-mapped
            block = self._check(x[i : i + RUN_BLOCK_ROWS])
            reply, y = self._call("run", {"shape": list(block.shape)}, block)
            outs.append(self._decode(0, y.reshape(reply["shape"])))
        return np.concatenate(outs)

    def first_ms(self, x) -> float:
        if self.multi:
            shapes, data = self._named(take(x, 0, 1))
            return float(self._call("first", {"shape": shapes[0], "shapes": shapes}, data)[0]["first_ms"])
        x = self._check(x[:1])
        return float(self._call("first", {"shape": list(x.shape)}, x)[0]["first_ms"])

    def time_calls(self, x: np.ndarray, *, warmup: int = 10, runs: int = 100, min_time_s: float = 0.5,
                   max_time_s: float = 30.0) -> list[int]:
        """Per-inference times (ns), measured in JS around the engine's call and reading its outputs."""
        settings = {"warmup": warmup, "runs": runs, "min_time_s": min_time_s, "max_time_s": max_time_s}
        if self.multi:
            shapes, data = self._named(take(x, 0, 1))
            reply, _ = self._call("time", {"shape": shapes[0], "shapes": shapes, **settings}, data)
            return [int(round(ms * 1e6)) for ms in reply["samples_ms"]]
        x = self._check(x[:1])
        reply, _ = self._call("time", {"shape": list(x.shape), **settings}, x)
        return [int(round(ms * 1e6)) for ms in reply["samples_ms"]]

    def bind(self, x) -> Callable[[], Any]:
        """One inference per call, through the transport: for checks, not for timing."""
        first = take(x, 0, 1) if self.multi else x[:1]
        return lambda: self.run(first)

    def _io(self, default_in: str = "input", default_out: str = "output") -> dict[str, list[dict]]:
        def entry(t: dict, default: str) -> dict:
            return {"name": t["name"] if self.multi else default, "artifact_name": t["name"],
                    "shape": [d if isinstance(d, int) and d > 0 else None for d in t.get("shape") or []],
                    "dtype": t.get("dtype", "float32")}

        return {"inputs": [entry(t, default_in) for t in self._ins], "outputs": [entry(t, default_out) for t in self._outs]}

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
