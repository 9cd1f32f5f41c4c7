"""ONNX int8 layouts, chosen by measuring: which operators carry the integers, and which integer types.

ONNX Runtime's CPU kernels (MLAS) are fast for some layouts and slow for others, and which ones
depends on the CPU: on x86 with VNNI, uint8 activations with int8 weights (U8S8) use the fast
dot-product instructions, while int8 activations (S8S8) in the QOperator format fall to a slow
path (ONNX Runtime's documentation says to avoid it on x86-64). Measured on MLPerf Tiny ResNet-8
on a 2-core AMD EPYC with AVX512-VNNI, 1 thread: fp32 0.119 ms; QDQ U8S8 0.079 ms; QOperator
U8S8 0.076 ms; QDQ S8S8 0.164 ms; QOperator S8S8 0.781 ms.

``auto`` (the default) quantizes the model in each candidate layout, runs each in ONNX Runtime on
this machine (1 thread, in one worker, interleaved rounds, the best of each), compares each one's outputs with the float
model's on the calibration inputs (edgekit's int8 parity thresholds), and keeps the fastest that
passes (within 3% of the fastest, the one closest to the float model); the manifest records every
candidate. On an x86 CPU without VNNI, U8S8 is quantized with
``reduce_range`` (7-bit weights), which avoids the saturation of the instruction those CPUs use.

Example:
    >>> LAYOUTS["qdq-u8s8"].describe()
    'QDQ, uint8 activations, int8 weights'
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import ExportError
from edgekit.files import captured_stderr_fd
from edgekit.io_spec import rows, take


@dataclass(frozen=True)
class Layout:
    name: str
    fmt: str  # QDQ | QOperator
    activations: str  # uint8 | int8 | int16 (int16x8)

    def describe(self) -> str:
        return f"{self.fmt}, {self.activations} activations, int8 weights"


LAYOUTS = {
    "qdq-u8s8": Layout("qdq-u8s8", "QDQ", "uint8"),
    "qdq-s8s8": Layout("qdq-s8s8", "QDQ", "int8"),
    "qop-u8s8": Layout("qop-u8s8", "QOperator", "uint8"),
    "qop-s8s8": Layout("qop-s8s8", "QOperator", "int8"),
}
# Tried by ``auto``. QOperator S8S8 is left out: slow on x86-64 (ONNX Runtime's docs; 6.6x fp32 above).
AUTO = ("qdq-u8s8", "qdq-s8s8", "qop-u8s8")
CHECK_SAMPLES = 64
TIE = 0.03  # layouts within 3% of the fastest count as equally fast: the closest to the float model wins


def dynamic_batch(value_info) -> bool:
    """True when a graph input's first axis has no fixed size."""
    dims = value_info.type.tensor_type.shape.dim
    return bool(dims) and not dims[0].HasField("dim_value")


CALIBRATION_BATCH = 50  # rows per calibration run where the batch axis is free


def preprocessed(model, tmp: Path, samples: dict):
    """The float model after ONNX Runtime's quantization pre-processing, and a calibration reader factory
    over ``samples`` (arrays by the graph's input names)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre = tmp / "fp32.onnx", tmp / "pre.onnx"
    onnx.save(model, src)
    n = rows(samples)
    # Calibration records each tensor's range (or histogram) over every value it takes, so rows may
    # go through in batches where the batch axis is free: the same ranges, a fraction of the runs.
    step = CALIBRATION_BATCH if all(dynamic_batch(i) for i in model.graph.input) else 1

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(range(0, n, step))

        def get_next(self):
            i = next(self._it, None)
            if i is None:
                return None
            return take(samples, i, i + step)

    try:
        with captured_stderr_fd(), contextlib.redirect_stdout(io.StringIO()):
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    except Exception as e:
        raise ExportError(f"ONNX int8 quantization failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from None
    return pre, Reader


def has_vnni() -> bool:
    """True on an x86 CPU with AVX512-VNNI or AVX-VNNI (and on non-x86 CPUs, where the question does not arise)."""
    try:
        flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), None)
    except OSError:
        return True
    if flags is None:  # not x86 (ARM reports "Features")
        return True
    return "avx512_vnni" in flags or "avx_vnni" in flags


def quantize_best(pre: Path, tmp: Path, reader: Callable, samples, fp32_model, options) -> tuple[object, dict]:
    """The int8 model in ``options.int8_layout`` (or, for ``auto``, the fastest candidate that keeps
    parity with ``fp32_model`` on ``samples``), and the details the manifest records."""
    import onnx

    names = AUTO if options.int8_layout == "auto" else (options.int8_layout,)
    built, failed = {}, []
    for name in names:
        dst = tmp / f"int8-{name}.onnx"
        try:
            quantize_layout(pre, dst, reader(), LAYOUTS[name], options)
        except ExportError as e:  # auto: a layout ONNX Runtime cannot make for this graph is left out, and said
            if len(names) == 1:
                raise
            failed.append({"layout": name, "error": e.message, "parity_ok": False, "p50_ms": None})
            continue
        built[name] = dst
    if not built:  # every layout failed: the first one's reason
        raise ExportError(failed[0]["error"])
    details = {"int8_layout": next(iter(built))}
    if len(names) > 1:
        measured = _measure(built, samples, fp32_model)
        tried = measured + failed
        passing = [t for t in measured if t["parity_ok"]]
        if passing:  # the fastest; among those within timing noise of it, the closest to the float model
            fastest = min(t["p50_ms"] for t in passing)
            best = max((t for t in passing if t["p50_ms"] <= fastest * (1 + TIE)), key=lambda t: t["closeness"])
        else:
            best = max(measured, key=lambda t: t["closeness"])
        details.update(int8_layout=best["layout"], int8_layouts_tried=tried,
                       int8_layout_reason=("the fastest that keeps parity, measured here (1 thread)" if passing else
                                           "none kept parity: the closest to the float model"))
    details["reduce_range"] = reduce_range_for(LAYOUTS[details["int8_layout"]])
    details["compute"] = f"int8 ({LAYOUTS[details['int8_layout']].describe()})"
    return onnx.load(built[details["int8_layout"]]), details


def quantize_int16x8(pre: Path, tmp: Path, reader: Callable, options) -> tuple[object, dict]:
    """QDQ with int16 activations and int8 weights (per channel unless ``--per-tensor``): ONNX's
    16-bit quantization (QuantizeLinear takes int16 from opset 21; ONNX Runtime raises the opset
    to that when it needs to). ONNX Runtime's CPU kernels have no int16 arithmetic, so each
    quantized tensor is dequantized to float around its op: 16 bits of accuracy, not int8's speed."""
    import onnx

    dst = tmp / "int16x8.onnx"
    quantize_layout(pre, dst, reader(), Layout("qdq-s16s8", "QDQ", "int16"), options)
    model = onnx.load(dst)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return model, {"opset": opset, "activations": "int16",
                   "compute": "int8 weights, int16 activations (QDQ); ONNX Runtime computes in float32 between "
                              "each tensor's quantize and dequantize"}


def reduce_range_for(layout: Layout) -> bool:
    """The one rule for 7-bit weights, for every int8 file edgekit makes (plain, each layout, repair
    candidates, mixes): uint8 activations on an x86 CPU without VNNI, whose instruction saturates."""
    return layout.activations == "uint8" and not has_vnni()


def quantize_layout(pre: Path, dst: Path, reader, layout: Layout, options) -> None:
    """``quantize_static`` on the pre-processed model ``pre``, weights reduced to 7 bits by
    :func:`reduce_range_for`. Its calibration ranges are cached beside
    ``pre`` (ONNX Runtime's ``calibration_cache_path``): every quantization of one ``pre`` reads the
    same calibration rows, so the layouts, repair candidates and mixes after the first skip the
    calibration runs. The first call quantizes every operator type (nothing excluded), so the cache
    holds every tensor a later call can ask for."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[options.calib_method]
    try:
        with captured_stderr_fd(), contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(pre), str(dst), reader, quant_format=getattr(QuantFormat, layout.fmt),
                per_channel=not options.per_tensor,
                activation_type={"uint8": QuantType.QUInt8, "int8": QuantType.QInt8,
                                 "int16": QuantType.QInt16}[layout.activations],
                weight_type=QuantType.QInt8, calibrate_method=method,
                reduce_range=reduce_range_for(layout),
                nodes_to_exclude=list(getattr(options, "nodes_to_exclude", None) or []),
                op_types_to_quantize=list(getattr(options, "op_types_to_quantize", None) or []) or None,
                calibration_cache_path=pre.parent / f"{pre.stem}-ranges-{options.calib_method}.json",
            )
    except Exception as e:
        raise ExportError(f"ONNX int8 quantization ({layout.name}) failed: {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:300]}") from None


def quantizable_op_types(model) -> list[str]:
    """The operator types of ``model`` (an ONNX model) that ``quantize_static`` quantizes by default
    (ONNX Runtime's QOperator and QDQ registries together, whatever the layout), most frequent first."""
    from collections import Counter

    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    counts = Counter(n.op_type for n in model.graph.node if n.op_type in QDQRegistry or n.op_type in QLinearOpsRegistry)
    return [op for op, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


class WithOverrides:
    """``options`` as :func:`quantize_layout` reads them, with some attributes replaced
    (``nodes_to_exclude``, ``op_types_to_quantize``)."""

    def __init__(self, options, **overrides):
        self._options, self._overrides = options, overrides

    def __getattr__(self, name):
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._options, name)


def _session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    data = model if isinstance(model, (str, Path)) else model.SerializeToString()
    return ort.InferenceSession(str(data) if isinstance(data, Path) else data, sess_options=opts,
                                providers=["CPUExecutionProvider"])


def _feeds(session, batch: dict) -> dict:
    return {i.name: batch[i.name] for i in session.get_inputs()}


def _outputs(session, samples):
    names = [o.name for o in session.get_outputs()]
    outs = [session.run(None, _feeds(session, take(samples, i, i + 1))) for i in range(rows(samples))]
    return {n: np.concatenate([o[k] for o in outs]) for k, n in enumerate(names)}


def _measure(built: dict[str, Path], samples, fp32_model) -> list[dict]:
    """Per layout: p50 latency and parity with the float model. Timed by the one rule every choice
    between files follows (:func:`edgekit.runtimes.isolated.p50_together`: one fresh worker, the files
    interleaved in 10 rounds of 30 ms, each file's best round); parity checked here."""
    from edgekit.parity import check, closeness, compare, is_classifier
    from edgekit.runtimes.isolated import p50_together

    check_rows = take(samples, 0, min(CHECK_SAMPLES, rows(samples)))
    reference = _outputs(_session(fp32_model), check_rows)
    sessions = {name: _session(path) for name, path in built.items()}
    p50 = p50_together("onnxruntime", built, take(samples, 0, 1))
    tried = []
    for name, s in sessions.items():
        p = compare(reference, _outputs(s, check_rows))
        problems = check(p, "int8", classifier=is_classifier(reference))
        tried.append({"layout": name, "p50_ms": round(p50[name], 5),
                      "agreement": p["top1_agreement"], "cosine": p["cosine"], "closeness": closeness(p),
                      "parity_ok": not problems})
    return tried
