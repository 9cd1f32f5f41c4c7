"""ONNX export: fp32, fp16, dynamic int8, static int8 and int16x8 (QDQ), checked with ``onnx.checker``.

The graph comes from ``tf2onnx.convert.from_function`` on a ``tf.function`` of the source's
forward pass; that works for Keras 3, tf_keras and SavedModels alike (``from_keras`` fails on
Keras 3). The batch axis stays dynamic unless ``--batch`` fixes it. Quantization is ONNX
Runtime's: ``quantize_dynamic`` for ``dynamic``; graph pre-processing, then ``quantize_static``
with calibration data for ``int8``, in the layout (QDQ or QOperator, uint8 or int8 activations)
measured fastest here among those that keep parity (:mod:`edgekit.quantize.onnx_layouts`);
``int16x8`` (on request) is QDQ with 16-bit activations and int8 weights.

Example:
    >>> art = ONNXExporter().export(src, out, quant="int8", calibration=x)   # doctest: +SKIP
    >>> art.details["opset"], art.details["per_channel"]                    # doctest: +SKIP
    (18, True)
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from edgekit.artifact import Artifact
from edgekit.errors import ExportError, UsageError
from edgekit.exporters import CALIBRATED, EXPORTERS
from edgekit.exporters.base import ExportOptions, artifact_name
from edgekit.exporters.onnx_fusions import fuse_hard_activations
from edgekit.exporters.onnx_opset import check_opset, default_opset
from edgekit.files import atomic_write_bytes, captured_stderr_fd
from edgekit.generated_inputs import is_integer
from edgekit.io_spec import rows, take
from edgekit.layer_names import scope_of
from edgekit.quantize.backends import FloatModel
from edgekit.quantize.onnx_layouts import AUTO, preprocessed
from edgekit.source_model import SourceModel

LAYERS_KEY = "edgekit.layers"  # metadata: {node name: layer scope}


class ONNXExporter:
    name = "onnx"
    suffix = ".onnx"
    quant_modes = EXPORTERS["onnx"][2]
    needs_calibration = CALIBRATED
    runtime = "onnxruntime"

    def export(
        self,
        source: SourceModel,
        out_dir: Path,
        *,
        quant: str,
        calibration: dict[str, np.ndarray] | None = None,
        options: ExportOptions | None = None,
    ) -> Artifact:
        options = options or ExportOptions()
        if quant not in self.quant_modes:
            raise UsageError(f"ONNX has no quant mode '{quant}'; choose from {', '.join(self.quant_modes)}")
        opset = check_opset(options.opset) if options.opset is not None else default_opset()
        fp32 = self.float_graph(source, opset, options.batch)
        details: dict = {"opset": opset, "weights": "float32", "compute": "float32", "input_dtype": _io_dtype(source),
                         "output_dtype": "float32", "batch": options.batch or "dynamic"}
        with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
            tmp = Path(tmp)
            if quant == "fp32":
                model = fp32
            elif quant == "fp16":
                model = self._fp16(fp32, keep_io=options.fp16_io == "float32")
                io = "float32" if options.fp16_io == "float32" else "float16"
                details.update(weights="float16", compute="float16", input_dtype=_io_dtype(source, io), output_dtype=io)
            elif quant == "dynamic":
                model = self._dynamic(fp32, tmp)
                details.update(weights="int8", compute="int8 matmul/conv with activations quantized at run time")
            else:
                if calibration is None or rows(calibration) == 0:
                    raise UsageError(f"{quant} export needs calibration data", hint="pass --calib DATA")
                samples = typed_like_inputs(take(calibration, 0, options.calib_samples), source)
                if quant == "int16x8":
                    model, layout = self._int16x8(fp32, tmp, samples, options)
                else:  # int8; mixed starts from it, and the pipeline measures which operators to keep in float
                    model, layout = self._static(fp32, tmp, samples, options)
                details.update(weights="int8", per_channel=not options.per_tensor, calibration_method=options.calib_method,
                               calibration_samples=rows(samples), **layout)
        import onnx

        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:
            raise ExportError(f"ONNX {quant} model fails onnx.checker: {str(e).splitlines()[0][:300]}") from None
        details["operators"] = dict(Counter(n.op_type for n in model.graph.node))
        name = artifact_name(source, quant, self.suffix)
        atomic_write_bytes(Path(out_dir) / name, model.SerializeToString())
        return Artifact(format=self.name, quant=quant, path=name, details=details)

    @staticmethod
    def float_graph(source: SourceModel, opset: int, batch: int | None):
        """The source as a float32 ONNX graph (tf2onnx, from its SavedModel), inputs and outputs named as the source names them."""
        from edgekit.tf_env import import_tensorflow

        tf = import_tensorflow()
        batch = batch if batch is not None else source.fixed_batch  # a detector: one image per call

        spec = [source.tf_signature(batch, dynamic=True)]  # ONNX keeps the model's own dynamic axes, whatever --input-shape fixed
        captured: list[str] = []
        from edgekit.tracing.portable_ops import portable_tracing

        keras_source = source.framework in ("keras3", "tf_keras")
        try:  # grouped convolutions traced without XLA, which tf2onnx cannot see into (edgekit.tracing.portable_ops)
            with captured_stderr_fd() as captured, (portable_tracing(einsum=False) if keras_source else contextlib.nullcontext()):
                model = _from_function(tf, tf.function(source.call), spec, opset)
        except Exception as e:
            raise ExportError(f"tf2onnx failed: {_unsupported(str(e), captured)}") from None
        graph = model.graph
        _rewrite_exact(graph)
        fuse_hard_activations(graph, opset)  # MobileNetV3's hard-swish: one ONNX Runtime kernel, not four
        _refuse_unconverted(graph, opset)
        # Readable, stable names: the source's (edgekit.io_spec.interface_names: 'input' and 'output' for a
        # model with one of each); the batch axis is 'batch'.
        _name_graph_io(graph, [i.name for i in source.inputs], [o.name for o in source.outputs], batch)
        _toposort(graph)  # before renaming: tf2onnx may emit a Loop before the nodes its body reads
        layers = _short_names(graph)
        if layers:  # which layer each node came from, for per-operator profiles (edgekit.profiling)
            entry = model.metadata_props.add()
            entry.key, entry.value = LAYERS_KEY, json.dumps(layers, separators=(",", ":"))
        return model

    @staticmethod
    def _fp16(model, *, keep_io: bool):
        from onnxruntime.transformers.float16 import convert_float_to_float16

        try:
            with captured_stderr_fd():
                model = convert_float_to_float16(model, keep_io_types=keep_io, disable_shape_infer=False)
        except Exception as e:
            raise ExportError(f"ONNX fp16 conversion failed: {type(e).__name__}: {str(e)[:300]}") from None
        _toposort(model.graph)  # keep_io_types appends its input casts after their consumers
        return model

    @staticmethod
    def _dynamic(model, tmp: Path):
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        src, dst = tmp / "fp32.onnx", tmp / "dynamic.onnx"
        onnx.save(model, src)
        try:
            with captured_stderr_fd():
                quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        except Exception as e:
            raise ExportError(f"ONNX dynamic quantization failed: {type(e).__name__}: {str(e)[:300]}") from None
        return onnx.load(dst)

    def float_model(self, source: SourceModel, calibration, options: ExportOptions, details: dict) -> FloatModel:
        """What the int8 searches start from (:mod:`edgekit.quantize.backends`): the float graph, the
        calibration samples in the inputs' dtypes, and the layout the plain int8 file was made in."""
        opset = check_opset(options.opset) if options.opset is not None else default_opset()
        graph = self.float_graph(source, opset, options.batch)
        return FloatModel(graph, typed_like_inputs(take(calibration, 0, options.calib_samples), source),
                          fp32=graph.SerializeToString, layout=details.get("int8_layout", AUTO[0]))

    @staticmethod
    def _int16x8(model, tmp: Path, samples, options: ExportOptions):
        """16-bit activations, int8 weights, in QDQ (:func:`edgekit.quantize.onnx_layouts.quantize_int16x8`)."""
        from edgekit.quantize.onnx_layouts import quantize_int16x8

        pre, reader = preprocessed(model, tmp, samples)
        return quantize_int16x8(pre, tmp, reader, options)

    @staticmethod
    def _static(model, tmp: Path, samples: np.ndarray, options: ExportOptions):
        """Static int8 in the layout ``options.int8_layout`` names, or the fastest that keeps parity (``auto``)."""
        from edgekit.quantize.onnx_layouts import quantize_best

        pre, reader = preprocessed(model, tmp, samples)
        return quantize_best(pre, tmp, reader, samples, tmp / "fp32.onnx", options)


def typed_like_inputs(batch: dict, source: SourceModel) -> dict[str, np.ndarray]:
    """Calibration inputs by name in the dtypes of the model's inputs (integer ids stay integers)."""
    return {s.name: np.asarray(batch[s.name]).astype(s.dtype) for s in source.inputs}


def _name_graph_io(graph, in_names: list[str], out_names: list[str], batch: int | None) -> None:
    """Name the graph's inputs and outputs (in the order tf2onnx made them: the function's arguments and its
    structured outputs) and give each a 'batch' axis, or the fixed ``batch``."""
    def rename(old: str, new: str) -> None:
        if old == new:
            return
        for node in graph.node:
            node.input[:] = [new if i == old else i for i in node.input]
            node.output[:] = [new if o == old else o for o in node.output]

    by_name = {i.name.split(":")[0]: i for i in graph.input}
    ordered_in = [by_name[n] for n in in_names] if set(by_name) == set(in_names) else list(graph.input)
    for value, name in zip(ordered_in, in_names, strict=True):
        rename(value.name, name)
        value.name = name
    by_name = {o.name.split(":")[0]: o for o in graph.output}
    ordered_out = [by_name[n] for n in out_names] if set(by_name) == set(out_names) else list(graph.output)
    for value, name in zip(ordered_out, out_names, strict=True):
        rename(value.name, name)
        value.name = name
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims:
            continue
        if batch is None:
            dims[0].dim_param = "batch"
        else:
            dims[0].dim_param = ""
            dims[0].dim_value = batch


def _io_dtype(source: SourceModel, float_dtype: str = "float32") -> str:
    """The artifact's input dtype: an integer input (token ids) stays what it is; a float one is ``float_dtype``."""
    return source.input_dtype if is_integer(source.input_dtype) else float_dtype


def _from_function(tf, function, spec: list, opset: int):
    """``tf2onnx.convert.from_function``, with the graph inputs being the function's arguments only.

    tf2onnx names every non-resource input of the concrete function as a graph input, and that
    includes the tensors the function *captures*: a Keras 3 ``Normalization`` layer loaded from a
    file holds its mean and variance as constant tensors, so keras.applications EfficientNets came
    out with 3 inputs. The captures are frozen into the graph as constants (initializers) here."""
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common, tensor_names_from_structed

    concrete = function.get_concrete_function(*spec)
    n_args = len(concrete.inputs) - len(concrete.captured_inputs)
    input_names = [t.name for t in concrete.inputs[:n_args] if t.dtype != tf.dtypes.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    renames = tensor_names_from_structed(concrete, input_names, output_names)
    with tf.device("/cpu:0"):
        frozen = tf_loader.from_function(concrete, input_names, output_names, large_model=False)
        model, _ = _convert_common(frozen, name=concrete.name, continue_on_error=True, opset=opset,
                                   input_names=input_names, output_names=output_names, tensors_to_rename=renames)
    return model


def _rewrite_exact(graph) -> None:
    """Rewrite TF ops tf2onnx passes through unconverted into exact ONNX equivalents.

    ``Erfc(x) = 1 - Erf(x)``: Keras 3's exact GELU (``approximate=False``) reaches the converter as
    ``Erfc``, which ONNX does not have."""
    from onnx import TensorProto, helper

    for i, node in enumerate(list(graph.node)):
        if node.op_type != "Erfc" or node.domain not in ("", "ai.onnx"):
            continue
        one, erf = f"{node.name}__one", f"{node.name}__erf"
        graph.initializer.append(helper.make_tensor(one, TensorProto.FLOAT, [], [1.0]))
        new = [helper.make_node("Erf", [node.input[0]], [erf], name=f"{node.name}__Erf"),
               helper.make_node("Sub", [one, erf], [node.output[0]], name=f"{node.name}__Sub")]
        graph.node.remove(node)
        for k, n in enumerate(new):
            graph.node.insert(i + k, n)


def _refuse_unconverted(graph, opset: int) -> None:
    """An ExportError naming the layer and the TF op tf2onnx left in the graph unconverted."""
    import onnx

    for node in graph.node:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx") or onnx.defs.has(node.op_type, domain):
            continue
        layer = "/".join(node.name.split("/")[:-1]) or node.name
        raise ExportError(
            f"ONNX has no operator for TensorFlow's {node.op_type} (in layer {layer}) at opset {opset}, and tf2onnx "
            "left it unconverted",
            hint=f"replace the layer that computes {node.op_type} with standard Keras ops, or export to TFLite/TF.js",
        )


def _short_names(graph) -> dict[str, str]:
    """Rename internal tensors (``functional_1/dense_1/Cast/ReadVariableOp:0`` ...) to ``t0``, ``t1``,
    and nodes to ``n0_Conv``, ...; returns each renamed node's layer scope (:func:`layer_names.scope_of`).

    TF's names are long, and quantization repeats each one in several Q/DQ nodes with suffixes:
    on MLPerf Tiny's ad01 they were 15% of the int8 file.
    """
    if any(a.HasField("g") or len(a.graphs) for n in graph.node for a in n.attribute):
        return {}  # subgraphs (Loop bodies) refer to outer names: leave every name as it is
    keep = {i.name for i in graph.input} | {o.name for o in graph.output} | {""}
    weights = {t.name for t in graph.initializer}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for t in graph.initializer:
        t.name = short(t.name)
    for vi in graph.value_info:
        vi.name = short(vi.name)
    layers = {}
    for i, node in enumerate(graph.node):
        # a node tf2onnx made (Conv__110: a Conv with its BatchNormalization folded in) has no scope of its
        # own: its weights keep their layer's (detector_1/conv2d_1/convolution/merged_input:0)
        scope = scope_of(node.name) or next(filter(None, (scope_of(n) for n in node.input if n in weights)), None)
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
        node.name = f"n{i}_{node.op_type}"
        if scope:
            layers[node.name] = scope
    return layers


def _outer_names(node) -> set[str]:
    """Names a node's subgraphs (Loop, If, Scan bodies) take from the enclosing graph."""
    out: set[str] = set()
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            defined = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                defined.update(n.output)
            for n in g.node:
                out.update(i for i in n.input if i and i not in defined)
                out.update(_outer_names(n) - defined)
    return out


def _toposort(graph) -> None:
    """Reorder ``graph.node`` so that every node comes after the producers of its inputs, including
    the outer-scope names its subgraphs use (tf2onnx can emit a GRU's Loop before them)."""
    nodes = list(graph.node)
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    needs = [set(n.input) | _outer_names(n) for n in nodes]
    produced = {o for n in nodes for o in n.output}
    pending, ordered = list(range(len(nodes))), []
    while pending:
        ready = [i for i in pending if all(x in known or x not in produced for x in needs[i])]
        if not ready:  # a cycle: keep the rest as it was
            ordered += pending
            break
        for i in ready:
            ordered.append(i)
            known.update(nodes[i].output)
        pending = [i for i in pending if i not in set(ready)]
    copies = [type(nodes[0])() for _ in nodes] if nodes else []
    for c, i in zip(copies, ordered, strict=True):
        c.CopyFrom(nodes[i])
    del graph.node[:]
    graph.node.extend(copies)


def _unsupported(message: str, log: list[str]) -> str:
    """Name the TF op tf2onnx could not convert, when it says so."""
    for line in [*log, *message.splitlines()]:
        if "Unsupported ops" in line or "is not supported" in line or "No conversion" in line:
            return line.strip()[:400]
    return (message.strip().splitlines() or ["unknown error"])[0][:400]
