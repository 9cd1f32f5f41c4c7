"""TF.js export: a graph model (``model.json`` + weight shards) in a folder, fp32, fp16 or uint8.

Converts the source's TF SavedModel with the ``tensorflowjs`` converter. In TF.js, fp16 and
uint8 are weight-only quantizations: weights are stored at 16 or 8 bits and dequantized to
float32 when the model loads, so compute stays float32; only download size changes. uint8
uses one affine (scale, min) per weight tensor and can cost real accuracy: the parity
figures of every export say how much.

The converter module imports ``tensorflow_decision_forests`` and
``tensorflowjs.converters.jax_conversion`` at import time; neither is used to convert a
SavedModel, and neither installs beside this TensorFlow. They are stood in for in
``sys.modules`` for the import only, here, without touching installed files.

Example:
    >>> art = TFJSExporter().export(src, out, quant="uint8")   # doctest: +SKIP
    >>> art.path, art.details["compute"]                       # doctest: +SKIP
    ('model_uint8_tfjs', 'float32')
"""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import numpy as np

from edgekit.artifact import Artifact
from edgekit.errors import ExportError, UsageError
from edgekit.exporters import EXPORTERS
from edgekit.exporters.base import ExportOptions, artifact_name
from edgekit.files import captured_stderr_fd
from edgekit.generated_inputs import is_integer
from edgekit.source_model import SourceModel
from edgekit.tfjs_model import read_tfjs_model
from edgekit.tracing.portable_ops import NOT_PORTABLE
from edgekit.tracing.recurrent import recurrent_details

# quant mode -> the converter's quantization_dtype_map (every weight: "*")
_QUANT_MAPS = {"fp32": None, "fp16": {"float16": "*"}, "uint8": {"uint8": "*"}}
_STAND_INS = ("tensorflow_decision_forests", "tensorflowjs.converters.jax_conversion")


class TFJSExporter:
    name = "tfjs"
    suffix = "_tfjs"  # an artifact is a folder: model_fp32_tfjs/model.json + group1-shard*.bin
    quant_modes = EXPORTERS["tfjs"][2]
    needs_calibration: tuple[str, ...] = ()
    runtime = "tfjs-node"

    def export(
        self,
        source: SourceModel,
        out_dir: Path,
        *,
        quant: str,
        calibration: dict[str, np.ndarray] | None = None,
        options: ExportOptions | None = None,
    ) -> Artifact:
        if quant not in self.quant_modes:
            raise UsageError(f"TF.js has no quant mode '{quant}'; choose from {', '.join(self.quant_modes)}")
        convert = tfjs_converter()
        name = artifact_name(source, quant, self.suffix)
        target = Path(out_dir) / name
        partial = Path(out_dir) / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        # Keras recurrent layers: traced with batch 1 and their loops unrolled, since TF.js
        # cannot run a converted while loop (edgekit.tracing.recurrent).
        recurrent = source.has_recurrent_layers
        batch = 1 if recurrent else None
        keras_source = source.framework in ("keras3", "tf_keras")
        try:
            _convert_saved_model(convert, source.saved_model_dir(batch, unroll_loops=recurrent), partial, quant)
            retrace = keras_source and bool(_graph_ops(partial) & set(NOT_PORTABLE))
        except ExportError as e:
            if not keras_source or not any(op in e.message for op in NOT_PORTABLE):
                raise
            retrace = True
        if retrace:  # exact GELU's Erfc, attention's Einsum: traced again with ops TF.js runs, the same function
            shutil.rmtree(partial, ignore_errors=True)
            _convert_saved_model(convert, source.saved_model_dir(batch, unroll_loops=recurrent, portable=True),
                                 partial, quant)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)  # the folder appears whole or not at all
        model = read_tfjs_model(target)
        details = {
            "weights": model.weight_dtype,
            "compute": "float32",
            "quantization": {"fp32": "none", "fp16": "weight-only: float16 weights, float32 compute",
                             "uint8": "weight-only: uint8 affine per tensor, dequantized to float32 at load"}[quant],
            "input_dtype": source.input_dtype if is_integer(source.input_dtype) else "float32",
            "output_dtype": "float32",
            "shards": len(model.shards),
        }
        if recurrent:
            details.update({k: v for k, v in recurrent_details(source, unroll_loops=True).items() if k != "state"})
        return Artifact(format=self.name, quant=quant, path=name, details=details)


def tfjs_converter():
    """``convert_tf_saved_model``, imported with stand-ins for the two modules it never uses here."""
    added = []
    for mod in _STAND_INS:
        if mod not in sys.modules:
            stand_in = types.ModuleType(mod)
            stand_in.convert_jax = _no_jax  # what tensorflowjs.converters imports from jax_conversion
            sys.modules[mod] = stand_in
            added.append(mod)
    try:
        from edgekit.tf_env import import_tensorflow

        import_tensorflow()
        from tensorflowjs.converters import normalize_bias_add
        from tensorflowjs.converters.tf_saved_model_conversion_v2 import convert_tf_saved_model

        if not getattr(normalize_bias_add.normalize_bias_add_op, "edgekit", False):
            normalize_bias_add.normalize_bias_add_op = _vector_bias_adds_only(normalize_bias_add.normalize_bias_add_op)
    except ImportError as e:
        raise ExportError(f"the tensorflowjs converter is not installed ({e})", hint="run `make install`") from None
    finally:
        for mod in added:
            if sys.modules.get(mod) is not None and getattr(sys.modules[mod], "__file__", None) is None:
                del sys.modules[mod]
    return convert_tf_saved_model


def _vector_bias_adds_only(normalize):
    """Wrap the converter's Add -> BiasAdd pass so that it keeps only adds of a constant vector.

    The pass turns every ``Add(MatMul(...), y)`` into a BiasAdd, which grappler then fuses into
    ``_FusedMatMul``; TF.js runs that op only with a rank-1 bias, so an unrolled recurrent cell
    (``x @ W + b + h @ U``) converts to a graph that fails at run time ("_FusedMatMul only
    supports rank-1 bias"). Adds whose second input is not a 1-D constant are put back.
    """

    def normalize_bias_add_op(graph_def):
        before = {node.name: node.op for node in graph_def.node}
        nodes = {node.name: node for node in graph_def.node}
        graph_def = normalize(graph_def)
        for node in graph_def.node:
            if node.op == "BiasAdd" and before.get(node.name) in ("Add", "AddV2"):
                bias = nodes.get(node.input[1].split(":")[0].lstrip("^"))
                if bias is None or bias.op != "Const" or len(bias.attr["value"].tensor.tensor_shape.dim) != 1:
                    node.op = before[node.name]
                    del node.attr["data_format"]
        return graph_def

    normalize_bias_add_op.edgekit = True
    return normalize_bias_add_op


def _no_jax(*args, **kwargs):
    raise ExportError("edgekit converts SavedModels to TF.js; JAX conversion is not part of it")


def _graph_ops(folder: Path) -> set[str]:
    """The op names in a converted TF.js graph model (its functions included)."""
    import json

    topology = json.loads((folder / "model.json").read_text()).get("modelTopology", {})
    nodes = list(topology.get("node", []))
    for fn in topology.get("library", {}).get("function", []):
        nodes += fn.get("nodeDef", [])
    return {n.get("op", "") for n in nodes}


def _convert_saved_model(convert, saved_model: Path, partial: Path, quant: str) -> None:
    try:
        with captured_stderr_fd():
            # debug ops (Assert, CheckNumerics, Print: a published SavedModel's tf.debugging checks) are
            # stripped with what only feeds them, as the TFLite and ONNX converters drop them; TF.js has
            # no kernel for them and would refuse the whole graph
            convert(str(saved_model), str(partial), quantization_dtype_map=_QUANT_MAPS[quant], strip_debug_ops=True)
    except Exception as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(f"TF.js converter failed for {quant}: {_converter_message(e)}") from None
    _restore_output_names(partial, saved_model)


def _restore_output_names(folder: Path, saved_model: Path) -> None:
    """Give back the signature's names to outputs the converter left under their tensor names.

    The converter finds each output's signature name by its dtype and shape, and gives up when two
    outputs share both (a detector's ``scores`` and ``classes``, both ``(1, K)`` float): those keep
    ``Identity_1:0``. The frozen graph's ``Identity_k`` is the function's output ``k``, which the
    SavedModel's signature names (``StatefulPartitionedCall:k``)."""
    import json

    from tensorflow.core.protobuf import saved_model_pb2

    path = folder / "model.json"
    model = json.loads(path.read_text())
    outputs = (model.get("signature") or {}).get("outputs") or {}
    if not any(":" in key for key in outputs):
        return
    sm = saved_model_pb2.SavedModel.FromString((Path(saved_model) / "saved_model.pb").read_bytes())
    defs = sm.meta_graphs[0].signature_def
    sig = defs["serving_default"] if "serving_default" in defs else defs.get("serve")
    if sig is None:
        return
    by_index = {v.name.rsplit(":", 1)[1]: k for k, v in sig.outputs.items() if ":" in v.name}
    renamed = {}
    for key, value in outputs.items():
        node = key.split(":")[0]
        index = "0" if node == "Identity" else node.rsplit("_", 1)[-1] if node.startswith("Identity_") else None
        name = by_index.get(index) if ":" in key else None
        renamed[name if name and name not in outputs else key] = value
    model["signature"]["outputs"] = renamed
    path.write_text(json.dumps(model))


def _converter_message(e: Exception) -> str:
    """The converter's own words, naming the unsupported op when it says which."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if "Unsupported Ops" in ln or "unsupported" in ln.lower():
            # the converter names the ops on the lines that follow ("Erfc (Unsupported TF Op) ...")
            ops = [x.split(" ")[0] for x in lines[i + 1 : i + 6]]
            return (ln + (f": {', '.join(dict.fromkeys(ops))}" if ops else ""))[:400]
    return (lines[0][:400] if lines else type(e).__name__)
