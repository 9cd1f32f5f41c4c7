"""``edgekit inspect MODEL``: layers, operators, parameters, MACs, and which formats can take each operator.

The ``tflm`` column says whether a microcontroller's TFLite Micro has a kernel for the TFLite
operator each TF operator becomes (``TF_TO_TFLITE``, checked against TFLite Micro's resolver).

Before any conversion: the model's TF graph (frozen, batch 1) is read, and each operator is
looked up in what each converter declares it handles: the TF.js converter's op lists (shipped in
``tensorflowjs/op_list``), tf2onnx's handler registry, and for TFLite a list of TF operators that
legalize to TFLite builtin ops (curated here: the converter publishes no list; conversion is
the proof, and `edgekit export` runs it).

Example:
    >>> info = inspect_model("runs/demo")                 # doctest: +SKIP
    >>> info["macs"], info["operators"]["Conv2D"]["tflite"]   # doctest: +SKIP
    (1503232, True)
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from edgekit.layer_names import keras_layer
from edgekit.runtimes import RUNTIMES

# TF operators the TFLite converter legalizes to builtin ops (TF 2.21), for the common layers.
TFLITE_BUILTIN_TF_OPS = frozenset("""
Abs Add AddV2 AvgPool BatchMatMul BatchMatMulV2 BatchMatMulV3 BiasAdd Cast Ceil ConcatV2 Conv2D Conv2DBackpropInput Conv3D
Cos Cumsum DepthToSpace DepthwiseConv2dNative Einsum Elu Equal Erf Erfc Exp ExpandDims Fill Floor FloorDiv FloorMod
FusedBatchNormV3 GatherV2 Gelu Greater GreaterEqual Identity IdentityN LeakyRelu Less LessEqual Log LogSoftmax LogicalAnd
LogicalNot LogicalOr MatMul Max MaxPool Maximum Mean Min Minimum MirrorPad Mul Neg NotEqual Pack Pad PadV2 Pow Prod
RandomUniform Range Rank RealDiv Relu Relu6 Reshape ResizeBilinear ResizeNearestNeighbor ReverseV2 Round Rsqrt Select
SelectV2 Selu Shape Sigmoid Sign Sin Slice Softmax Softplus SpaceToDepth Split SplitV Sqrt Square SquaredDifference Squeeze
StopGradient StridedSlice Sub Sum Tanh Tile TopKV2 Transpose Unpack Where While ZerosLike OnesLike
TensorListReserve TensorListFromTensor TensorListGetItem TensorListSetItem TensorListStack TensorListLength
TensorListElementShape Enter Exit Merge Switch NextIteration LoopCond StatelessWhile PartitionedCall
StatefulPartitionedCall Placeholder Const NoOp ReadVariableOp
""".split())
# The TFLite builtin each TF operator becomes, to ask whether TFLite Micro has its kernel
# (edgekit.runtimes.tflm_ops). None: folded into the operator before it (a bias, a batch norm, an
# activation) or graph plumbing. Operators absent here are taken to have no TFLite Micro kernel.
# Erf and Erfc come from an exact GELU, which the converter fuses into GELU.
TF_TO_TFLITE = {
    "Abs": "ABS", "Add": "ADD", "AddV2": "ADD", "AvgPool": "AVERAGE_POOL_2D", "BatchMatMul": "BATCH_MATMUL",
    "BatchMatMulV2": "BATCH_MATMUL", "BatchMatMulV3": "BATCH_MATMUL", "BiasAdd": None, "Cast": "CAST",
    "Ceil": "CEIL", "ConcatV2": "CONCATENATION", "Conv2D": "CONV_2D", "Conv2DBackpropInput": "TRANSPOSE_CONV",
    "Conv3D": "CONV_3D", "Cos": "COS", "Cumsum": "CUMSUM", "DepthToSpace": "DEPTH_TO_SPACE",
    "DepthwiseConv2dNative": "DEPTHWISE_CONV_2D", "Einsum": "BATCH_MATMUL", "Elu": "ELU", "Equal": "EQUAL",
    "Erf": "GELU", "Erfc": "GELU", "Exp": "EXP", "ExpandDims": "EXPAND_DIMS", "Fill": "FILL", "Floor": "FLOOR",
    "FloorDiv": "FLOOR_DIV", "FloorMod": "FLOOR_MOD", "FusedBatchNormV3": None, "GatherV2": "GATHER",
    "Gelu": "GELU", "Greater": "GREATER", "GreaterEqual": "GREATER_EQUAL", "LeakyRelu": "LEAKY_RELU",
    "Less": "LESS", "LessEqual": "LESS_EQUAL", "Log": "LOG", "LogSoftmax": "LOG_SOFTMAX",
    "LogicalAnd": "LOGICAL_AND", "LogicalNot": "LOGICAL_NOT", "LogicalOr": "LOGICAL_OR", "MatMul": "FULLY_CONNECTED",
    "Max": "REDUCE_MAX", "MaxPool": "MAX_POOL_2D", "Maximum": "MAXIMUM", "Mean": "MEAN", "Min": "REDUCE_MIN",
    "Minimum": "MINIMUM", "MirrorPad": "MIRROR_PAD", "Mul": "MUL", "Neg": "NEG", "NotEqual": "NOT_EQUAL",
    "Pack": "PACK", "Pad": "PAD", "PadV2": "PADV2", "Pow": "POW", "Prod": "REDUCE_PROD", "RandomUniform": "RANDOM_UNIFORM",
    "Range": "RANGE", "Rank": "RANK", "RealDiv": "DIV", "Relu": None, "Relu6": None, "Reshape": "RESHAPE",
    "ResizeBilinear": "RESIZE_BILINEAR", "ResizeNearestNeighbor": "RESIZE_NEAREST_NEIGHBOR", "ReverseV2": "REVERSE_V2",
    "Round": "ROUND", "Rsqrt": "RSQRT", "Select": "SELECT_V2", "SelectV2": "SELECT_V2", "Selu": "ELU",
    "Shape": "SHAPE", "Sigmoid": "LOGISTIC", "Sign": "SIGN", "Sin": "SIN", "Slice": "SLICE", "Softmax": "SOFTMAX",
    "Softplus": "SOFTPLUS", "SpaceToDepth": "SPACE_TO_DEPTH", "Split": "SPLIT", "SplitV": "SPLIT_V", "Sqrt": "SQRT",
    "Square": "SQUARE", "SquaredDifference": "SQUARED_DIFFERENCE", "Squeeze": "SQUEEZE", "StopGradient": None,
    "StridedSlice": "STRIDED_SLICE", "Sub": "SUB", "Sum": "SUM", "Tanh": "TANH", "Tile": "TILE", "TopKV2": "TOPK_V2",
    "Transpose": "TRANSPOSE", "Unpack": "UNPACK", "Where": "WHERE", "While": "WHILE", "StatelessWhile": "WHILE",
    "ZerosLike": "ZEROS_LIKE", "OnesLike": "FILL", "PartitionedCall": None, "StatefulPartitionedCall": None,
    **dict.fromkeys(("TensorListReserve", "TensorListFromTensor", "TensorListGetItem", "TensorListSetItem",
                     "TensorListStack", "TensorListLength", "TensorListElementShape", "Enter", "Exit", "Merge",
                     "Switch", "NextIteration", "LoopCond"), None),  # a loop's parts: WHILE, or unrolled
}


def tflm_kernel(tf_op: str) -> bool:
    """Whether the TFLite operator ``tf_op`` becomes has a TFLite Micro kernel.

    >>> tflm_kernel("DepthwiseConv2dNative"), tflm_kernel("TopKV2"), tflm_kernel("BiasAdd")
    (True, False, True)
    """
    from edgekit.runtimes.tflm_ops import RESOLVER_METHODS

    if tf_op not in TFLITE_BUILTIN_TF_OPS:
        return False
    if tf_op in _PLUMBING:
        return True
    builtin = TF_TO_TFLITE.get(tf_op, "")
    return builtin is None or builtin in RESOLVER_METHODS


# Operators a converter accepts but whose result does not run, as found here (format -> op -> why).
KNOWN_FAILURES = {
    "tfjs": {op: "converts, but TF.js 4.22 cannot run a converted while loop (seen with recurrent layers "
                   "of SavedModels; those of Keras files are unrolled)"
             for op in ("While", "StatelessWhile")},
}
# Operators a format lacks that edgekit replaces with an exact equivalent (format -> op -> how).
REWRITES = {
    "onnx": {"Erfc": "rewritten as 1 - Erf (exact GELU)"},
    "tfjs": {"Erfc": "traced as Erf (exact GELU)", "Einsum": "traced as transposes and batched matmuls (TF.js wasm has no Einsum)"},
}
# Operators that are graph plumbing, not computation: not listed.
_PLUMBING = {"Placeholder", "Const", "NoOp", "Identity", "IdentityN", "ReadVariableOp"}


def _tfjs_ops() -> set[str]:
    import importlib.util

    spec = importlib.util.find_spec("tensorflowjs")
    if spec is None or not spec.submodule_search_locations:
        return set()
    ops: set[str] = set()
    for f in (Path(next(iter(spec.submodule_search_locations))) / "op_list").glob("*.json"):
        ops.update(e["tfOpName"] for e in json.loads(f.read_text()))
    return ops


def _onnx_ops() -> set[str]:
    try:
        import tf2onnx.onnx_opset  # noqa: F401  (registers the handlers)
        from tf2onnx.handler import tf_op
    except ImportError:
        return set()
    ops: set[str] = set()
    for opset in tf_op.get_opsets().get("", []):
        ops.update(opset.keys())
    return ops


def _frozen_ops(source) -> tuple[Counter, dict[str, list[str]]]:
    """Operator counts of the frozen batch-1 graph, and for each op type the layers (name scopes) using it."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from edgekit.tf_env import import_tensorflow
    from edgekit.tracing.recurrent import static_recurrent_tracing

    tf = import_tensorflow()
    specs = {t.name: tf.TensorSpec([1, *[d or 1 for d in t.shape]], tf.as_dtype(t.dtype)) for t in source.inputs}
    # Keras recurrent layers are traced as the exporters trace them (fused LSTMs, unrolled loops);
    # lower_control_flow=False keeps any other recurrent loop as the While op the converters see.
    with static_recurrent_tracing(source.keras_model, unroll_loops=True) if source.has_recurrent_layers else contextlib.nullcontext():
        fn = tf.function(source.call).get_concrete_function(specs)
    graph_def = convert_variables_to_constants_v2(fn, lower_control_flow=False).graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    counts: Counter = Counter()
    where: dict[str, list[str]] = {}
    retraced = source.framework == "keras3"
    names = {layer.name for layer in getattr(source.keras_model, "layers", None) or []} if source.framework in (
        "keras3", "tf_keras") else set()
    for n in nodes:
        if n.op in _PLUMBING:
            continue
        counts[n.op] += 1
        scope = n.name.split("/")
        layer = scope[1] if len(scope) > 2 else scope[0]
        layer = keras_layer(layer, names, retraced=retraced) or layer
        if layer not in where.setdefault(n.op, []) and len(where[n.op]) < 5:
            where[n.op].append(layer)
    return counts, where


def inspect_model(model: str | Path, *, safe_mode: bool = True) -> dict[str, Any]:
    from edgekit.macs import graph_macs
    from edgekit.model_loading import load_source

    source = load_source(model, safe_mode=safe_mode)
    try:
        layers = []
        km = source.keras_model if source.framework in ("keras3", "tf_keras") else None
        for layer in getattr(km, "layers", []) or []:
            try:
                out = layer.output.shape
                out_shape = [d for d in (out.as_list() if hasattr(out, "as_list") else out)]
            except Exception:
                out_shape = None
            layers.append({"name": layer.name, "type": type(layer).__name__, "output_shape": out_shape,
                           "params": int(layer.count_params())})
        counts, where = _frozen_ops(source)
        tfjs, onnx = _tfjs_ops(), _onnx_ops()
        operators = {op: {"count": n, "layers": where.get(op, []), "tflite": op in TFLITE_BUILTIN_TF_OPS,
                          "onnx": op in onnx or op in REWRITES["onnx"],
                          "tfjs": (op in tfjs or op in REWRITES["tfjs"]) and op not in KNOWN_FAILURES["tfjs"],
                          "tflm": tflm_kernel(op)}
                     for op, n in counts.most_common()}
        rewrites = {f: [f"{op} (in {', '.join(where.get(op, [])) or 'the graph'}): {how}"
                        for op, how in REWRITES[f].items() if op in counts] for f in REWRITES}
        params = sum(layer["params"] for layer in layers) if layers else None
        recurrent = {}
        if source.has_recurrent_layers:
            from edgekit.tracing.recurrent import fused_lstm_beside_loop, plan

            km = source.keras_model
            tflite_plan, tfjs_plan = plan(km, unroll_loops=fused_lstm_beside_loop(km)), plan(km)
            recurrent = {name: {"tflite": "fused UNIDIRECTIONAL_SEQUENCE_LSTM" if how == "fused LSTM"
                                else "WHILE loop (int8: unrolled)" if how == "loop" else how,
                                "tfjs": tfjs_plan[name], "onnx": "tf2onnx: an ONNX LSTM/GRU/RNN op, or a Loop"}
                         for name, how in tflite_plan.items()}
        formats = {f: all(o[f] for o in operators.values()) for f in ("tflite", "onnx", "tfjs")}
        return {
            "model": str(model), "kind": source.kind, "framework": source.framework,
            "input_shape": [None, *source.input_shape], "output_shape": [None, *source.output_shape],
            "inputs": [t.to_dict() for t in source.inputs], "outputs": [t.to_dict() for t in source.outputs],
            "params": params, "macs": graph_macs(source), "layers": layers, "operators": operators,
            "formats": formats, "tflm_kernels": all(o["tflm"] for o in operators.values()), "recurrent": recurrent, "rewrites": {f: r for f, r in rewrites.items() if r},
            "runtimes": {**{f: [r for r, spec in RUNTIMES.items() if f in spec[2] and r != "tflm"]
                            for f in ("tflite", "onnx", "tfjs")}, "tflm": ["tflm"]},
            "blockers": {f: [f"{op} (in {', '.join(o['layers']) or 'the graph'})"
                             + (f": {KNOWN_FAILURES[f][op]}" if op in KNOWN_FAILURES.get(f, {}) else "")
                             + (f": {TF_TO_TFLITE[op]} has no TFLite Micro kernel" if f == "tflm" and TF_TO_TFLITE.get(op)
                                else "")
                             for op, o in operators.items() if not o[f]] for f in ("tflite", "onnx", "tfjs", "tflm")},
        }
    finally:
        source.close()
