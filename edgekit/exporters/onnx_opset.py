"""Which ONNX opset to write: the newest that both tf2onnx and the installed ONNX Runtime support
(probed once), or the one ``--opset`` names when both support it.

Example:
    >>> default_opset()   # doctest: +SKIP
    21
"""

from __future__ import annotations

import functools

from edgekit.errors import UsageError

MIN_OPSET = 13  # QDQ per-channel quantization needs 13


@functools.lru_cache(maxsize=1)
def runtime_max_opset() -> int:
    """The newest default-domain opset the installed ONNX Runtime loads (probed once)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    for opset in range(onnx.defs.onnx_opset_version(), MIN_OPSET - 1, -1):
        node = helper.make_node("Relu", ["x"], ["y"])
        graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = min(model.ir_version, 10)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:
            continue
    return MIN_OPSET


def converter_max_opset() -> int:
    import tf2onnx

    return max(tf2onnx.constants.OPSET_TO_IR_VERSION)


def default_opset() -> int:
    """The newest opset both tf2onnx and the installed ONNX Runtime support."""
    return min(converter_max_opset(), runtime_max_opset())


def check_opset(opset: int) -> int:
    """``opset`` if both tf2onnx and the installed ONNX Runtime support it, else a UsageError."""
    lo, hi = MIN_OPSET, min(converter_max_opset(), runtime_max_opset())
    if not lo <= opset <= hi:
        raise UsageError(f"--opset {opset} is not supported here: tf2onnx and ONNX Runtime share opsets {lo}..{hi}")
    return opset
