"""Multiply-accumulates per inference (batch 1): what device estimates and rooflines are scaled by.

Counted for convolutions (regular, depthwise, transposed), fully connected layers, matrix
multiplications and fused LSTMs: the operators that hold nearly all of a vision, audio or
sequence model's work. Element-wise ops and pooling are not counted, nor the insides of a
recurrent loop that stays a loop (a TFLite WHILE, a SavedModel's GRU), so the figure is a lower
bound there. The recurrent layers of Keras models (Keras 3 or tf_keras) are counted step by
step, traced as the exporters trace them (edgekit.tracing.recurrent).

Example:
    >>> tflite_macs("pretrainedResnet.tflite")   # doctest: +SKIP
    12501632
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path


def tflite_macs(path: str | Path, interpreter=None) -> int | None:
    """MACs of one inference of a .tflite model, from its operators and tensor shapes."""
    if interpreter is None:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
    try:
        ops = interpreter._get_ops_details()
    except Exception:
        return None
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    return int(sum(tflite_op_macs(op, shapes) for op in ops))


def tflite_op_macs(op: dict, shapes: dict[int, list[int]]) -> int:
    """MACs of one operator (``interpreter._get_ops_details()`` entry), given tensor shapes by index."""
    name, ins, outs = op["op_name"], list(op["inputs"]), list(op["outputs"])
    if not outs or outs[0] not in shapes:
        return 0
    out = shapes[outs[0]]
    batch = max(out[0], 1) if out else 1
    per_sample = math.prod(out) // batch if out else 0
    w = shapes.get(ins[1]) if len(ins) > 1 else None
    if name == "CONV_2D" and w:  # filter [out_ch, kh, kw, in_ch]
        return per_sample * w[1] * w[2] * w[3]
    if name == "DEPTHWISE_CONV_2D" and w:  # filter [1, kh, kw, out_ch]
        return per_sample * w[1] * w[2]
    if name == "FULLY_CONNECTED" and w:  # weights [units, in]
        return per_sample * w[1]
    if name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM") and w and len(ins) > 5:
        rec = shapes.get(ins[5])  # input_to_input [units, in], recurrent_to_input [units, out]
        if rec:  # every output step: 4 gates x (in + out) MACs per unit (batch 1: these exports)
            return math.prod(out) * 4 * (w[1] + rec[1])
    if name == "BATCH_MATMUL" and w:
        a = shapes.get(ins[0])
        return per_sample * (a[-1] if a else 0)
    if name == "TRANSPOSE_CONV" and len(ins) > 2:  # inputs: output_shape, filter, input
        f, x = shapes.get(ins[1]), shapes.get(ins[2])
        if f and x:
            return (math.prod(x) // max(x[0], 1)) * f[0] * f[1] * f[2]
    return 0


def graph_macs(source) -> int | None:
    """MACs of one inference of a source model, from its TF graph at batch 1."""
    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    from edgekit.tracing.recurrent import static_recurrent_tracing

    specs = {t.name: tf.TensorSpec([1, *[d or 1 for d in t.shape]], tf.as_dtype(t.dtype)) for t in source.inputs}
    recurrent = source.has_recurrent_layers
    try:
        with static_recurrent_tracing(source.keras_model, unroll_loops=True) if recurrent else contextlib.nullcontext():
            fn = tf.function(source.call).get_concrete_function(specs)
    except Exception:
        return None
    total = sum(_op_macs(op) for op in fn.graph.get_operations())
    if total == 0 or recurrent:  # nested functions (a SavedModel's signature, a fused LSTM): inline them by freezing
        try:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

            frozen = convert_variables_to_constants_v2(fn)
            total = sum(_op_macs(op) for op in frozen.graph.get_operations())
        except Exception:
            return None
    return int(total) or None


def _static(shape) -> list[int] | None:
    try:
        dims = shape.as_list()
    except ValueError:
        return None
    return None if any(d is None for d in dims) else dims


def _op_macs(op) -> int:
    if op.type not in ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "Conv2DBackpropInput", "Conv3D"):
        return 0
    out = _static(op.outputs[0].shape)
    if not out:
        return 0
    if op.type in ("Conv2D", "Conv3D"):
        w = _static(op.inputs[1].shape)  # [kh, kw, in, out]
        return math.prod(out) * math.prod(w[:-1]) if w else 0
    if op.type == "DepthwiseConv2dNative":
        w = _static(op.inputs[1].shape)  # [kh, kw, in, multiplier]
        return math.prod(out) * w[0] * w[1] if w else 0
    if op.type == "Conv2DBackpropInput":
        w, x = _static(op.inputs[1].shape), _static(op.inputs[2].shape)  # filter [kh, kw, out, in], grad
        return math.prod(x) * w[0] * w[1] * w[2] if w and x else 0
    a = _static(op.inputs[0].shape)
    if not a:
        return 0
    transpose_a = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
    k = a[-2] if transpose_a else a[-1]
    return math.prod(out) * k


def onnx_node_macs(model) -> dict[str, int]:
    """MACs of each Conv, Gemm and MatMul node of an ONNX model (batch 1), by node name."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    graph = inferred.graph
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in graph.initializer}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    # a quantized weight reaches its node through DequantizeLinear: the weight's shape is the initializer's
    for n in graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in shapes:
            shapes.setdefault(n.output[0], shapes[n.input[0]])
    out: dict[str, int] = {}
    for n in graph.node:
        y = shapes.get(n.output[0]) if n.output else None
        if not y:
            continue
        per_sample = math.prod(y) // max(y[0], 1)
        if n.op_type in ("Conv", "QLinearConv", "ConvInteger"):
            w = shapes.get(n.input[3] if n.op_type == "QLinearConv" else n.input[1])
            if w:
                out[n.name] = per_sample * math.prod(w[1:])
        elif n.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            w = shapes.get(n.input[3] if n.op_type == "QLinearMatMul" else n.input[1])
            trans_b = any(a.name == "transB" and a.i for a in n.attribute)
            k = (w[-1] if trans_b else w[-2]) if w and len(w) >= 2 else None
            if k is None:
                a = shapes.get(n.input[0])
                k = a[-1] if a else None
            if k:
                out[n.name] = per_sample * k
    return out
