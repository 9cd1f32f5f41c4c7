"""TFLite Micro: a ``.tflite`` file run on the kernels a microcontroller runs (``pip install tflite-micro``).

The interpreter is TFLite Micro's own (its reference kernels, built for this host), so the
answers are a microcontroller's answers, and its recording allocator says how much of the
tensor arena the model needs: the figure that decides whether a model fits a board's SRAM.
No TensorFlow is imported. The arena is found once per load: the recording allocator's total,
checked by allocating exactly that much (:func:`arena_bytes`).

Example:
    >>> s = TFLMRuntime().load("kws_ref_model.tflite")   # doctest: +SKIP
    >>> s.describe()["arena"]                             # doctest: +SKIP
    {'total_bytes': 24272, 'head_bytes': 16000, 'tail_bytes': 8272, 'smallest_bytes': 24272}
    >>> s.run(x)["output"].shape                          # doctest: +SKIP
    (16, 12)
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError
from edgekit.files import captured_stderr_fd
from edgekit.io_spec import interface_names
from edgekit.runtimes.base import PackageRuntime
from edgekit.runtimes.binding import BoundTensor, dims, feeds, io_record, rows_of

PROBE_ARENA = 16 * 1024 * 1024  # the first allocation, large enough for any model a board could hold
_ALLOCATION = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
_SOURCE_PREFIX = re.compile(r"^\S+\.(cc|h|c):?\d*\s+")  # "tensorflow/lite/micro/kernels/conv_common.cc Hybrid..."


class TFLMRuntime(PackageRuntime):
    module = "tflite_micro"
    distribution = "tflite-micro"
    name = "tflm"
    formats = ("tflite",)

    def load(self, artifact: str, *, threads: int | None = None) -> TFLMSession:
        return TFLMSession(artifact)  # one core: a microcontroller runs one thread


class TFLMSession:
    def __init__(self, path: str):
        self.path = Path(path)
        model = _read_model(self.path)
        self.operators = model["operators"]
        arena = arena_bytes(self.path)
        self.arena = arena
        self.interpreter = _interpreter(self.path, arena["smallest_bytes"])
        in_names, out_names = interface_names(model["inputs"], model["outputs"])
        it = self.interpreter
        self.inputs = [_bound(n, a, it.get_input_details(i)) for i, (n, a) in enumerate(zip(in_names, model["inputs"], strict=True))]
        self.outputs = [_bound(n, a, it.get_output_details(i))
                        for i, (n, a) in enumerate(zip(out_names, model["outputs"], strict=True))]

    def run(self, batch) -> dict[str, np.ndarray]:
        x = feeds(batch, self.inputs)
        it, outs = self.interpreter, {t.name: [] for t in self.outputs}
        for r in range(rows_of(x)):
            it.reset()  # variable tensors (a streaming model's state) start from zero for each sample
            for i, t in enumerate(self.inputs):
                it.set_input(t.quantize(x[t.name][r : r + 1]), i)
            it.invoke()
            for i, t in enumerate(self.outputs):
                outs[t.name].append(t.dequantize(it.get_output(i)))
        return {n: np.concatenate(v) for n, v in outs.items()}

    def bind(self, batch) -> Callable[[], Any]:
        x = feeds(batch, self.inputs)
        for i, t in enumerate(self.inputs):
            self.interpreter.set_input(t.quantize(x[t.name][:1]), i)
        return self.interpreter.invoke

    def describe(self) -> dict[str, Any]:
        first = self.inputs[0]
        return {**io_record(self.inputs, self.outputs), "arena": self.arena, "operators": self.operators,
                "quant_guess": "int8" if first.dtype in ("int8", "uint8") else "fp32"}


def arena_bytes(path: Path) -> dict[str, int]:
    """The tensor arena ``path`` needs on TFLite Micro: the recording allocator's total, head (the
    activations, planned) and tail (persistent: tensors, kernels' buffers), and ``smallest_bytes``,
    the smallest arena the model allocates in (to 16 bytes, by bisection above the total). The recorded
    total can be short of it: planning needs temporary memory too (ad01 records 3,984 B and needs more).
    An operator TFLite Micro lacks, or a file it cannot read, is a ModelLoadError naming it."""
    _survives_allocation(path)
    try:
        interpreter, log = _allocate(path, PROBE_ARENA, record=True)
    except _TooSmall as e:  # with room for any model, it is not the arena: a kernel refused the model
        raise ModelLoadError(f"{path.name}: TFLite Micro cannot run it: {e.detail.rstrip('.')} "
                             "(a microcontroller runs full-integer int8 files: export --quant int8)") from None
    found = {k: int(v) for k, v in _ALLOCATION.findall(log)}
    if "total" not in found:
        raise ModelLoadError(f"{path.name}: TFLite Micro allocated the model but reported no arena size")
    del interpreter
    # Searched from the recorded total up: the model cannot fit in less than what it was recorded
    # using, and TFLite Micro can crash (not fail) when given less than its persistent part.
    lo, hi = found["total"] - 16, found["total"]
    while not _fits(path, hi):  # grow by a quarter until it fits
        lo, hi = hi, hi + max(hi // 4, 256)
        if hi > PROBE_ARENA:
            raise ModelLoadError(f"{path.name}: TFLite Micro needs more than {PROBE_ARENA} bytes of arena")
    while hi - lo > 16:  # the smallest that fits lies in (lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _fits(path, mid) else (mid, hi)
    return {"total_bytes": found["total"], "head_bytes": found.get("head", 0), "tail_bytes": found.get("tail", 0),
            "smallest_bytes": hi}


def _survives_allocation(path: Path) -> None:
    """Allocate ``path`` once in a child process: some of TFLite Micro's kernels abort the process
    when a check fails while preparing (an int8 softmax on an input scale of 1e-8), with no message."""
    code = ("import sys; from tflite_micro import runtime; "
            f"runtime.Interpreter.from_file(sys.argv[1], arena_size={PROBE_ARENA})")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    if r.returncode >= 0:
        return  # it allocated, or raised an error the allocation here reports in words
    tiny = sorted(_tiny_scales(path), key=lambda t: t[1])
    why = (f"the input of {tiny[0][0]} has a scale of {tiny[0][1]:.2g}, a range of almost nothing "
           "(an untrained model, or calibration data unlike the real inputs?)" if tiny else
           f"one of its kernels failed a check while preparing the model (signal {-r.returncode})")
    raise ModelLoadError(f"{path.name}: TFLite Micro aborted while preparing it: {why}",
                         hint="re-export with --quant int8 and representative --data, or check the model in "
                              "LiteRT first (edgekit bench --runtime litert)")


def _tiny_scales(path: Path, below: float = 1e-6) -> list[tuple[str, float]]:
    """(operator, scale) for every operator input quantized with a scale under ``below``."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    names = _operator_names(schema, model)
    out = []
    for graph in model.subgraphs:
        for op in graph.operators or []:
            for i in op.inputs if op.inputs is not None else []:
                q = graph.tensors[i].quantization if i >= 0 else None
                scales = list(q.scale) if q is not None and q.scale is not None else []
                if scales and 0 < min(scales) < below:
                    out.append((names[op.opcodeIndex], float(min(scales))))
    return out


def _operator_names(schema, model) -> list[str]:
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [builtin.get(max(c.builtinCode, c.deprecatedBuiltinCode), str(c.builtinCode)) for c in model.operatorCodes]


def _fits(path: Path, arena: int) -> bool:
    try:
        _allocate(path, arena)
        return True
    except _TooSmall:
        return False


class _TooSmall(ModelLoadError):
    """An arena too small for the model (``detail``: TFLite Micro's first message)."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


def _interpreter(path: Path, arena: int):
    return _allocate(path, arena)[0]


def _allocate(path: Path, arena: int, *, record: bool = False):
    from tflite_micro import runtime

    with captured_stderr_fd() as lines:
        try:
            it = runtime.Interpreter.from_file(str(path), arena_size=arena)
            if record:
                it.print_allocations()
        except (RuntimeError, ValueError) as e:
            it, error = None, e
    log = "\n".join(lines)
    if it is None:
        missing = _MISSING_OP.findall(log)
        if missing:
            raise ModelLoadError(f"{path.name}: TFLite Micro has no kernel for {', '.join(sorted(set(missing)))}",
                                 hint="a microcontroller runs only the operators TFLite Micro implements; "
                                      "replace the layer that makes it") from None
        short = next((_SOURCE_PREFIX.sub("", ln).strip() for ln in log.splitlines() if ln.strip()), str(error))
        if "allocate tensors" in str(error):  # the arena: too small for tensors, buffers or planning
            raise _TooSmall(f"{path.name}: TFLite Micro cannot allocate it in {arena} bytes: {short}", short) from None
        raise ModelLoadError(f"{path.name}: TFLite Micro cannot load it: {short}") from None
    return it, log


def _read_model(path: Path) -> dict[str, Any]:
    """The subgraph's input and output names (a signature's names where the file has one, else the
    tensors' own) and its operators by count, read from the flatbuffer with TFLite Micro's schema."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    try:
        model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
        graph = model.subgraphs[0]
    except Exception:
        raise ModelLoadError(f"{path} is not a valid .tflite model") from None

    def name(i: int) -> str:
        n = graph.tensors[i].name
        return n.decode() if isinstance(n, bytes) else str(n)

    by_tensor_in = {i: name(i) for i in graph.inputs}
    by_tensor_out = {i: name(i) for i in graph.outputs}
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex == 0:
            by_tensor_in.update({t.tensorIndex: t.name.decode() for t in sig.inputs or []})
            by_tensor_out.update({t.tensorIndex: t.name.decode() for t in sig.outputs or []})
    codes = _operator_names(schema, model)
    ops: dict[str, int] = {}
    for op in graph.operators or []:
        ops[codes[op.opcodeIndex]] = ops.get(codes[op.opcodeIndex], 0) + 1
    return {"inputs": [by_tensor_in[i] for i in graph.inputs], "outputs": [by_tensor_out[i] for i in graph.outputs],
            "operators": ops}


def _bound(name: str, artifact_name: str, detail: dict) -> BoundTensor:
    q = detail.get("quantization_parameters") or {}
    scales, zeros = q.get("scales", []), q.get("zero_points", [])
    scale = float(scales[0]) if len(scales) else 0.0
    zero = int(zeros[0]) if len(zeros) else 0
    return BoundTensor(name, artifact_name, dims(detail["shape"]), np.dtype(detail["dtype"]).name, scale, zero)
