"""Per-operator times from LiteRT itself: its C API's profiler, read through ctypes.

LiteRT's Python packages expose no per-operator times (the ``Interpreter`` has no profiler, and
``benchmark_model --enable_op_profiling`` ships in no wheel), but ``libLiteRt.so`` in the
``ai-edge-litert`` wheel exports the profiler of its CompiledModel API. A compiled model made
with the runtime option ``enable_profiling = true`` records one event per operator: XNNPACK's
own operators (``Convolution (NHWC, QC8) IGEMM``, ...) for what the delegate runs, and the
builtin operator with its node index for the rest. This module builds that compiled model on
the CPU (XNNPACK, ``threads`` threads), runs it ``runs`` times on the sample, and returns each
operator's mean time; :func:`attribute` maps XNNPACK's operators back to the TFLite nodes they
came from.

The signatures come from LiteRT's C headers (``litert/c/*.h``), not from a public Python API,
so :data:`TESTED` pins the versions this was checked on and anything else stops in one line.
Times are whole microseconds (LiteRT's resolution): an operator under 1 us reads 0.

Example:
    >>> prof = profile_tflite("model_int8.tflite", {"input": x[:1]}, threads=1, runs=100)   # doctest: +SKIP
    >>> prof["ops"][0]["kernel"], prof["ops"][0]["ms"]                                      # doctest: +SKIP
    ('XNNPACK Convolution (NHWC, QC8) IGEMM', 0.0031)
"""

from __future__ import annotations

import ctypes as C
import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.profiling.records import ProfilingUnavailable, typical_total

TESTED = ("2.3",)  # ai-edge-litert major.minor versions whose C API this module was checked against
_P = C.c_void_p
_OK = 0
# LiteRtProfilerEventType (litert/c/litert_profiler_event.h)
OPERATOR_INVOKE_EVENT, DELEGATE_OPERATOR_INVOKE_EVENT, DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT = 2, 4, 8
_RUNTIME_OPTIONS = b"runtime_options_string"  # LrtGetRuntimeOptionsIdentifier()
_CPU_OPTIONS = b"xnnpack"  # LrtGetCpuOptionsIdentifier()


class _Memory(C.Structure):
    _fields_ = [("total", C.c_size_t), ("in_use", C.c_size_t), ("private", C.c_size_t)]


class _Event(C.Structure):  # ProfiledEventData
    _fields_ = [("tag", C.c_char_p), ("event_type", C.c_int), ("start_us", C.c_uint64), ("elapsed_us", C.c_uint64),
                ("begin_mem", _Memory), ("end_mem", _Memory), ("metadata1", C.c_int64), ("metadata2", C.c_int64),
                ("source", C.c_int)]


def _library():
    from importlib import metadata

    import ai_edge_litert

    version = metadata.version("ai-edge-litert")
    # EDGEKIT_LITERT_PROFILER_VERSIONS: the tests stand in a LiteRT version edgekit was not checked on
    tested = tuple(os.environ["EDGEKIT_LITERT_PROFILER_VERSIONS"].split(",")) if os.environ.get(
        "EDGEKIT_LITERT_PROFILER_VERSIONS") else TESTED
    if ".".join(version.split(".")[:2]) not in tested:
        raise ProfilingUnavailable(f"LiteRT {version}: per-operator times are read through LiteRT's C API, checked "
                                   f"on ai-edge-litert {', '.join(tested)} only (pin ai-edge-litert to profile)")
    path = Path(ai_edge_litert.__file__).parent / "libLiteRt.so"
    try:
        lib = C.CDLL(str(path))
        lib.LiteRtGetProfilerEvents  # noqa: B018 - the symbol this module exists for
    except (OSError, AttributeError) as e:
        raise ProfilingUnavailable(f"LiteRT {version} has no profiler in {path.name}: {e}") from None
    return lib


def static_batch_copy(path: str | Path, out: Path) -> Path:
    """A copy of the model whose dynamic sizes (``-1`` in a tensor's signature) are fixed to their
    allocated value (batch 1): LiteRT's CompiledModel cannot make buffers for dynamic tensors."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    buf = Path(path).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    for subgraph in model.subgraphs:
        for t in subgraph.tensors:
            if t.shapeSignature is not None and any(d < 0 for d in t.shapeSignature):
                t.shapeSignature = None
    builder = flatbuffers.Builder(len(buf) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out.write_bytes(builder.Output())
    return out


def profile_tflite(path: str | Path, feeds: dict[str, np.ndarray], *, threads: int | None, runs: int,
                   warmup: int = 5) -> dict[str, Any]:
    """Each operator's mean time (ms) over ``runs`` inferences of one sample, in execution order.

    ``feeds``: the artifact's inputs, as it takes them (int8 values for an int8 input), in the
    order of its serving signature. Returns ``ops`` (``op``, ``kernel``, ``node``, ``ms``) and
    ``invoke_ms`` (LiteRT's own whole-run event)."""
    lib = _library()
    with tempfile.TemporaryDirectory(prefix="edgekit-profile-") as tmp:
        fixed = static_batch_copy(path, Path(tmp) / "model.tflite")
        return _profile(lib, fixed, list(feeds.values()), threads or 1, runs, warmup)


def _call(lib, name: str, *args) -> None:
    status = getattr(lib, name)(*args)
    if status != _OK:
        raise ProfilingUnavailable(f"LiteRT's {name} failed (status {status}): this file cannot be profiled by LiteRT")


def _profile(lib, path: Path, arrays: list[np.ndarray], threads: int, runs: int, warmup: int) -> dict[str, Any]:
    env, model, options, compiled = _P(), _P(), _P(), _P()
    keep: list = []  # option payloads stay alive until the compiled model is gone
    no_destructor = C.CFUNCTYPE(None, _P)(lambda _: None)
    buffers: list[_P] = []
    try:
        _call(lib, "LiteRtCreateEnvironment", 0, None, C.byref(env))
        _call(lib, "LiteRtCreateModelFromFile", env, str(path).encode(), C.byref(model))
        _call(lib, "LiteRtCreateOptions", C.byref(options))
        _call(lib, "LiteRtSetOptionsHardwareAccelerators", options, 1)  # kLiteRtHwAcceleratorCpu
        for identifier, toml in ((_RUNTIME_OPTIONS, b"enable_profiling = true\n"),
                                 (_CPU_OPTIONS, f"num_threads = {threads}\n".encode())):
            payload, opaque = C.create_string_buffer(toml), _P()
            keep.append(payload)
            _call(lib, "LiteRtCreateOpaqueOptions", identifier, C.cast(payload, _P), no_destructor, C.byref(opaque))
            _call(lib, "LiteRtAddOpaqueOptions", options, opaque)
        _call(lib, "LiteRtCreateCompiledModel", env, model, options, C.byref(compiled))
        signature = _P()
        _call(lib, "LiteRtGetModelSignature", model, C.c_size_t(0), C.byref(signature))
        inputs = _buffers(lib, env, compiled, signature, "Input")
        outputs = _buffers(lib, env, compiled, signature, "Output")
        buffers = inputs + outputs
        if len(inputs) != len(arrays):
            raise ProfilingUnavailable(f"LiteRT's signature has {len(inputs)} inputs, the sample {len(arrays)}")
        for buf, a in zip(inputs, arrays, strict=True):
            _write(lib, buf, a)
        in_array, out_array = (_P * len(inputs))(*inputs), (_P * len(outputs))(*outputs)

        def run() -> None:
            _call(lib, "LiteRtRunCompiledModel", compiled, C.c_size_t(0), C.c_size_t(len(inputs)), in_array,
                  C.c_size_t(len(outputs)), out_array)

        profiler = _P()
        _call(lib, "LiteRtCompiledModelGetProfiler", compiled, C.byref(profiler))
        if not profiler.value:
            raise ProfilingUnavailable("LiteRT made no profiler for this model")
        for _ in range(warmup):
            run()
        _call(lib, "LiteRtResetProfiler", profiler)
        _call(lib, "LiteRtStartProfiler", profiler)
        for _ in range(runs):
            run()
        _call(lib, "LiteRtStopProfiler", profiler)
        count = C.c_int()
        _call(lib, "LiteRtGetNumProfilerEvents", profiler, C.byref(count))
        events = (_Event * max(count.value, 1))()
        if count.value:
            _call(lib, "LiteRtGetProfilerEvents", profiler, count, events)
        return _per_operator(list(events)[: count.value], runs)
    finally:
        for buf in buffers:
            lib.LiteRtDestroyTensorBuffer(buf)
        for handle, destroy in ((compiled, "LiteRtDestroyCompiledModel"), (options, "LiteRtDestroyOptions"),
                                (model, "LiteRtDestroyModel"), (env, "LiteRtDestroyEnvironment")):
            if handle.value:
                getattr(lib, destroy)(handle)


def _buffers(lib, env, compiled, signature, side: str) -> list[_P]:
    """One managed buffer per signature input (``side="Input"``) or output, as the compiled model wants it."""
    n = C.c_size_t()
    _call(lib, f"LiteRtGetNumSignature{side}s", signature, C.byref(n))
    out = []
    for i in range(n.value):
        tensor, requirements, buf = _P(), _P(), _P()
        _call(lib, f"LiteRtGetSignature{side}TensorByIndex", signature, C.c_size_t(i), C.byref(tensor))
        tensor_type = C.create_string_buffer(512)  # LiteRtRankedTensorType, passed back as LiteRT filled it
        _call(lib, "LiteRtGetRankedTensorType", tensor, tensor_type)
        _call(lib, f"LiteRtGetCompiledModel{side}BufferRequirements", compiled, C.c_size_t(0), C.c_size_t(i),
              C.byref(requirements))
        _call(lib, "LiteRtCreateManagedTensorBufferFromRequirements", env, tensor_type, requirements, C.byref(buf))
        out.append(buf)
    return out


def _write(lib, buf: _P, a: np.ndarray) -> None:
    size, host = C.c_size_t(), _P()
    _call(lib, "LiteRtGetTensorBufferPackedSize", buf, C.byref(size))
    data = np.ascontiguousarray(a).tobytes()
    if len(data) != size.value:
        raise ProfilingUnavailable(f"LiteRT wants {size.value} bytes for an input, the sample has {len(data)}")
    _call(lib, "LiteRtLockTensorBuffer", buf, C.byref(host), 1)  # kLiteRtTensorBufferLockModeWrite
    try:
        C.memmove(host, data, len(data))
    finally:
        lib.LiteRtUnlockTensorBuffer(buf)


def _per_operator(events: list, runs: int) -> dict[str, Any]:
    """Each operator's time per inference (:func:`records.typical_total`), in execution order.

    XNNPACK numbers its operators within each delegate partition (0, 1, ... again in the next);
    partitions are told apart by their order in a run: a new one starts after a builtin operator
    or where the number does not grow. A run starts at LiteRT's ``Invoke`` event."""
    totals: dict[tuple, list[float]] = defaultdict(list)
    invoke_us = 0.0
    partition, last = 0, None  # last: the previous XNNPACK operator's number in this partition, None after a builtin
    for e in events:
        tag = (e.tag or b"").decode(errors="replace")
        if e.event_type == OPERATOR_INVOKE_EVENT:
            key = ("builtin", tag, int(e.metadata1), None)
            if last is not None:
                partition, last = partition + 1, None
        elif e.event_type in (DELEGATE_OPERATOR_INVOKE_EVENT, DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT):
            index = int(e.metadata1)
            if last is not None and index <= last:
                partition += 1
            key, last = ("xnnpack", tag, index, partition), index
        else:
            if tag == "Invoke" and e.event_type == 1:  # DEFAULT: the interpreter's whole Invoke, one per run
                invoke_us += e.elapsed_us
                partition, last = 0, None
            continue
        totals[key].append(e.elapsed_us)  # dicts keep the order keys were first seen: execution order
    ops = [{"op": tag if kind == "builtin" else _xnnpack_op(tag), "kernel": "builtin" if kind == "builtin" else f"XNNPACK {tag}",
            "node": index if kind == "builtin" else None, "ms": typical_total(times, runs) / 1e3}
           for (kind, tag, index, _), times in totals.items()]
    return {"ops": ops, "invoke_ms": invoke_us / runs / 1e3 if invoke_us else None, "resolution_us": 1}


def _xnnpack_op(tag: str) -> str:
    """XNNPACK's operator name without its layout and data types: ``Convolution (NHWC, QC8) IGEMM`` -> ``Convolution``."""
    return re.sub(r"\s*\(.*$", "", tag).strip() or tag


# XNNPACK operator -> the TFLite builtins it can come from (the first XNNPACK operator made for a node)
_XNNPACK_FROM = {
    "Convolution": {"CONV_2D", "DEPTHWISE_CONV_2D"}, "Deconvolution": {"TRANSPOSE_CONV"},
    "Fully Connected": {"FULLY_CONNECTED", "BATCH_MATMUL"}, "Batch Matrix Multiply": {"BATCH_MATMUL"},
    "Add": {"ADD"}, "Multiply": {"MUL"}, "Subtract": {"SUB"}, "Divide": {"DIV"}, "Max Pooling": {"MAX_POOL_2D"},
    "Average Pooling": {"AVERAGE_POOL_2D"}, "Global Average Pooling": {"MEAN", "AVERAGE_POOL_2D"},
    "Mean": {"MEAN"}, "Sum": {"SUM"}, "Static Reshape": {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"},
    "Softmax": {"SOFTMAX"}, "Sigmoid": {"LOGISTIC"}, "Tanh": {"TANH"}, "Hardswish": {"HARD_SWISH"},
    "Copy": {"RESHAPE"}, "Transpose": {"TRANSPOSE"}, "Concatenate": {"CONCATENATION"}, "Leaky ReLU": {"LEAKY_RELU"},
    "Constant Pad": {"PAD", "PADV2"}, "Clamp": {"RELU", "RELU6", "RELU_N1_TO_1"}, "Maximum": {"MAXIMUM"},
    "Minimum": {"MINIMUM"}, "Convert": {"QUANTIZE", "DEQUANTIZE"}, "Slice": {"SLICE", "STRIDED_SLICE"},
    "Resize Bilinear": {"RESIZE_BILINEAR"}, "ELU": {"ELU"}, "GELU": {"GELU"}, "Square Root": {"SQRT"},
    "Squared Difference": {"SQUARED_DIFFERENCE"}, "Reciprocal Square Root": {"RSQRT"}, "Square": {"SQUARE"},
    "Depth To Space": {"DEPTH_TO_SPACE"}, "Space To Depth": {"SPACE_TO_DEPTH"}, "Exp": {"EXP"}, "Log": {"LOG"},
}


def attribute(ops: list[dict], nodes: list[dict]) -> list[dict]:
    """Give every profiled operator the TFLite node it ran for (``node``), and say whether it is that
    node's own operator (``main``: the one that carries the node's MACs).

    ``nodes``: the interpreter's operators in execution order (``index``, ``op_name``). Builtin
    events carry their node. Each XNNPACK partition replaces the delegated nodes between two
    builtin ones, in order; its operators are walked beside those nodes: an XNNPACK operator that
    the current node can make and has not yet made is that node's, else one that one of the next
    nodes can make starts that node, and any other (a ``Clamp`` for a fused activation, a
    ``Convert``, a ``Static Reshape`` before a ``Fully Connected``) belongs to the node it is in."""
    builtin_nodes = {o["node"] for o in ops if o["kernel"] == "builtin"}
    queue = [n for n in nodes if n["index"] not in builtin_nodes and n["op_name"] != "DELEGATE"]
    current, has_main = None, False  # the node being walked, and whether its own kind of operator was seen
    for o in ops:
        if o["kernel"] == "builtin":
            current, has_main = None, False
            o["main"] = True
            continue
        o["main"] = False
        possible = _XNNPACK_FROM.get(o["op"], set())
        if current is not None and not has_main and current["op_name"] in possible:
            has_main = o["main"] = True
        else:
            ahead = next((k for k, n in enumerate(queue[:4]) if n["op_name"] in possible), None)
            if ahead is not None:  # a node XNNPACK folds away (a RESHAPE) may be skipped
                current, has_main = queue[ahead], True
                o["main"] = True
                del queue[: ahead + 1]
            elif current is None and queue:  # e.g. the Static Reshape XNNPACK puts before a Fully Connected
                current, has_main = queue.pop(0), False
        o["node"] = current["index"] if current else None
    return ops
