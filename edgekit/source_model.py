"""Load the model a user points at: ``.keras``, Keras 2 ``.h5``, a SavedModel folder or a RUN_DIR.

The loaded :class:`SourceModel` answers what every exporter and the parity check need: its
input spec, a ``predict`` on NumPy batches, and a TF SavedModel that the converters read.

Example:
    >>> src = load_source("runs/demo")            # doctest: +SKIP
    >>> src.input_shape, src.kind                 # doctest: +SKIP
    ((8, 8, 1), 'run')
    >>> src.predict(x).shape                      # doctest: +SKIP
    (16, 10)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError, ModelLoadError, first_line
from edgekit.files import sha256_path
from edgekit.io_spec import Batch, TensorSpec, as_float32, concat, rows, take
from edgekit.run_record import CUSTOM_CODE_NAME, MODEL_NAME, RunRecord, is_run_dir

MODEL_KINDS = "a .keras file, a Keras 2 .h5 file, a TF SavedModel folder, or a run folder from `edgekit train`"


@dataclass
class SourceModel:
    path: Path
    kind: str  # keras | h5-keras3 | h5-tf_keras | saved_model | run
    framework: str  # keras3 | tf_keras | tensorflow
    input_shape: tuple[int | None, ...]
    input_dtype: str
    output_shape: tuple[int | None, ...]
    sha256: str
    call: Callable[[Any], Any]  # TF-traceable forward pass: a batch tensor in, a tensor out
    keras_model: Any = None
    run: RunRecord | None = None
    _saved_model_dir: Path | None = None
    _tmp: list[Path] = field(default_factory=list)
    _variant_dirs: dict[tuple[int | None, bool, bool, bool], Path] = field(default_factory=dict)
    inputs: list[TensorSpec] = field(default_factory=list)  # by the Keras input names; one: [TensorSpec("input", ...)]
    outputs: list[TensorSpec] = field(default_factory=list)  # by the Keras output names; one: [TensorSpec("output", ...)]

    def __post_init__(self) -> None:
        if not self.inputs:
            self.inputs = [TensorSpec("input", tuple(self.input_shape), self.input_dtype)]
        if not self.outputs:
            self.outputs = [TensorSpec("output", tuple(self.output_shape))]

    dynamic_inputs: list[TensorSpec] | None = None  # the inputs as the model declares them, when fix_shapes fixed some

    def fix_shapes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Fix unknown non-batch dimensions (``--input-shape``): TFLite and TF.js are traced at these shapes, parity
        runs at them; ONNX keeps the model's own dynamic axes (:attr:`dynamic_inputs`)."""
        if not shapes:
            return
        if self.framework not in ("keras3", "tf_keras"):
            raise InputError(f"{self.path} is a SavedModel: --input-shape needs a Keras model to trace again",
                             hint="export the SavedModel with fixed shapes, or pass the Keras model")
        self.dynamic_inputs = list(self.inputs)
        self.inputs = [TensorSpec(t.name, tuple(shapes.get(t.name, t.shape)), t.dtype) for t in self.inputs]
        self.input_shape = self.inputs[0].shape
        self._saved_model_dir = None

    @property
    def multi_input(self) -> bool:
        return len(self.inputs) > 1

    @property
    def multi_output(self) -> bool:
        return len(self.outputs) > 1

    @property
    def multi_io(self) -> bool:
        """Several inputs or outputs: batches are dicts by name (:mod:`edgekit.io_spec`)."""
        return self.multi_input or self.multi_output

    @property
    def has_recurrent_layers(self) -> bool:
        """True for a Keras 3 or tf_keras model with LSTM/GRU/SimpleRNN layers (traced specially for the converters)."""
        from edgekit.tracing.recurrent import recurrent_layers

        return self.framework in ("keras3", "tf_keras") and bool(recurrent_layers(self.keras_model))

    def predict(self, x: Batch, batch_size: int = 64) -> Batch:
        """Run the source model on prepared inputs (an array, or a dict by input name for several inputs);
        returns float32 outputs (an array, or a dict by output name for several outputs)."""
        outs = []
        for i in range(0, rows(x), batch_size):
            y = self.call(take(x, i, i + batch_size))
            outs.append({k: np.asarray(v) for k, v in y.items()} if isinstance(y, dict) else np.asarray(y))
        return as_float32(concat(outs))

    def tf_input_signature(self, batch: int | None = None, *, dynamic: bool = False) -> list:
        """The ``input_signature`` of this model's forward pass: ``[TensorSpec]``, or ``[{name: TensorSpec}]``;
        ``dynamic``: the shapes the model declares, not those ``--input-shape`` fixed."""
        import tensorflow as tf

        specs = (self.dynamic_inputs or self.inputs) if dynamic else self.inputs
        if not self.multi_input:
            return [tf.TensorSpec([batch, *specs[0].shape], tf.as_dtype(self.input_dtype))]
        return [{s.name: tf.TensorSpec([batch, *s.shape], tf.as_dtype(s.dtype), name=s.name) for s in specs}]

    def saved_model_dir(self, batch: int | None = None, *, unroll_loops: bool = False, fuse_lstm: bool = True,
                        portable: bool = False) -> Path:
        """A TF SavedModel of this model (made once per variant, in a temp folder), for the converters.

        ``batch`` fixes the batch axis (static shapes: what the TFLite converter needs to turn a
        recurrent layer's loop into TFLite ops); only Keras models can be re-exported that way.
        Keras LSTMs are then traced as fused LSTMs (unless not ``fuse_lstm``), and with
        ``unroll_loops`` other recurrent loops are unrolled (:mod:`edgekit.tracing.recurrent`).
        ``portable`` traces exact GELU with ``Erf`` and einsums with matmuls (:mod:`edgekit.tracing.portable_ops`);
        a SavedModel source is used as it is."""
        keras_source = self.framework in ("keras3", "tf_keras")
        portable = portable and keras_source
        if batch is None and not portable and not (self.multi_io and keras_source) and self.dynamic_inputs is None:
            if self._saved_model_dir is None:
                self._saved_model_dir = self._export_variant(None, False, True, False)
            return self._saved_model_dir
        if batch is not None and not keras_source:
            raise InputError(f"{self.path} is a SavedModel: it cannot be re-exported with a fixed batch size",
                             hint="export it from its Keras model instead")
        key = (batch, unroll_loops, fuse_lstm, portable)
        if key not in self._variant_dirs:
            self._variant_dirs[key] = self._export_variant(*key)
        return self._variant_dirs[key]

    def _export_variant(self, batch: int | None, unroll_loops: bool, fuse_lstm: bool, portable: bool) -> Path:

        from edgekit.tracing.portable_ops import portable_tracing
        from edgekit.tracing.recurrent import static_recurrent_tracing

        tmp = Path(tempfile.mkdtemp(prefix="edgekit-sm-"))
        self._tmp.append(tmp)
        out = tmp / "saved_model"
        fixed = self.dynamic_inputs is not None
        spec = None if batch is None and not self.multi_io and not fixed else self.tf_input_signature(batch)
        names = [o.name for o in self.outputs] if self.multi_output else None
        with contextlib.ExitStack() as stack:
            if batch is not None:
                stack.enter_context(static_recurrent_tracing(self.keras_model, unroll_loops=unroll_loops,
                                                             fuse_lstm=fuse_lstm))
            if portable:
                stack.enter_context(portable_tracing())
            export_saved_model(self.keras_model, out, input_signature=spec, output_names=names)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "framework": self.framework,
            "sha256": self.sha256,
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype,
            "output_shape": list(self.output_shape),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    def close(self) -> None:
        for t in self._tmp:
            shutil.rmtree(t, ignore_errors=True)
        self._tmp.clear()


def export_saved_model(keras_model: Any, out: Path, *, input_signature: list | None = None,
                       output_names: list[str] | None = None) -> None:
    """Write a Keras 3 or tf_keras model as a TF SavedModel at ``out`` (its ``serve`` endpoint).

    ``input_signature`` (a list of ``tf.TensorSpec``, or of one ``{name: TensorSpec}`` for several
    inputs) fixes the input shapes, batch included. With ``output_names`` the endpoint returns a dict
    of the outputs by those names (the model's own), whatever structure the model returns: the
    signature then names every output as the source does.

    Example:
        >>> export_saved_model(model, Path("sm"), input_signature=[tf.TensorSpec([1, 8, 8, 1])])   # doctest: +SKIP
    """
    import keras

    with contextlib.redirect_stdout(io.StringIO()):  # tf_keras prints the endpoint's signature
        if isinstance(keras_model, keras.Model):
            _export_keras3_inference(keras_model, out, input_signature, output_names)
        elif input_signature is None and output_names is None:
            keras_model.export(str(out))
        else:
            import tf_keras

            archive = tf_keras.export.ExportArchive()
            archive.track(keras_model)

            def serve(inputs):
                return named_outputs(keras_model(inputs, training=False), output_names)

            archive.add_endpoint("serve", serve if output_names else keras_model.__call__, input_signature=input_signature)
            archive.write_out(str(out))


def named_outputs(outputs: Any, names: list[str] | None) -> Any:
    """A model's outputs as a dict by ``names`` (a dict, list or tuple of tensors); as they are when ``names`` is None."""
    if names is None:
        return outputs
    if isinstance(outputs, dict):
        return {n: outputs[n] for n in names}
    if isinstance(outputs, (list, tuple)):
        return dict(zip(names, outputs, strict=True))
    return {names[0]: outputs}


def _export_keras3_inference(model: Any, out: Path, input_signature: list | None, output_names: list[str] | None) -> None:
    """``model.export(format="tf_saved_model")``, with the endpoint calling ``model(x, training=False)``.

    ``model.export`` traces ``model.__call__`` with ``training`` unset; a model nested in another
    (keras.applications inside a user's functional model) then kept its ``Dropout``'s random ops in
    the graph, which the TFLite converter refuses. An inference graph holds no training-only op."""
    import keras
    from keras.src.export.export_utils import get_input_signature

    signature = input_signature if input_signature is not None else get_input_signature(model)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(inputs):
        return named_outputs(model(inputs, training=False), output_names)

    archive.add_endpoint("serve", serve, input_signature=signature)  # one argument: the model's input structure
    archive.write_out(str(out), verbose=False)


def load_source(path: str | Path, *, safe_mode: bool = True) -> SourceModel:
    """Load MODEL for export or as the reference runtime. Raises ModelLoadError with a fix."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Model {path} does not exist", hint=f"pass {MODEL_KINDS}")
    if is_run_dir(path):
        return _load_run(path, safe_mode=safe_mode)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return _load_saved_model(path)
        raise ModelLoadError(f"Folder {path} is neither a SavedModel nor a run folder", hint=f"pass {MODEL_KINDS}")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return _from_keras3(path, _load_keras3(path, safe_mode=safe_mode), kind="keras")
    if suffix in (".h5", ".hdf5"):
        return _load_h5(path)
    raise ModelLoadError(f"{path} is not a model edgekit can load", hint=f"pass {MODEL_KINDS}")


def import_custom_code(py_file: Path) -> Any:
    """Import a user's model file so that its registered custom layers and losses exist."""
    py_file = Path(py_file)
    name = f"edgekit_user_{abs(hash(str(py_file.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, py_file)
    if spec is None or spec.loader is None:
        raise InputError(f"{py_file} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise InputError(f"{py_file} failed to import: {type(e).__name__}: {e}") from None
    return module


def _quiet_tf() -> None:
    import warnings

    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
    # Keras 3 warns when a Keras 2 model's named input receives a plain tensor; harmless here.
    warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")


def _load_keras3(path: Path, *, safe_mode: bool):
    _quiet_tf()
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=safe_mode)
    except ValueError as e:
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise ModelLoadError(
                f"{path} holds Python code (a Lambda layer) that safe mode refuses to run",
                hint="only if you trust the file, pass --unsafe",
            ) from None
        raise ModelLoadError(f"{path} cannot be loaded by Keras: {first_line(e, with_type=True)}") from None
    except Exception as e:
        raise ModelLoadError(f"{path} cannot be loaded by Keras: {first_line(e, with_type=True)}") from None


def _from_keras3(path: Path, model, *, kind: str, run: RunRecord | None = None, sha: str | None = None) -> SourceModel:
    try:
        functional = bool(model.inputs)
    except AttributeError:  # a subclassed model has no symbolic inputs
        functional = False
    if not functional:
        inputs, outputs = _subclassed_io(path, model)
        if len(outputs) > 1:
            return _multi_io_source(path, kind, "keras3", model, inputs, outputs, sha or sha256_path(path), run)
        in_shape, dtype, out_shape = inputs[0].shape, inputs[0].dtype, outputs[0].shape
    else:
        inputs, outputs = _keras_io(model)
        if len(inputs) > 1 or len(outputs) > 1:
            return _multi_io_source(path, kind, "keras3", model, inputs, outputs, sha or sha256_path(path), run)
        in_shape, dtype, out_shape = inputs[0].shape, inputs[0].dtype, outputs[0].shape

    def call(x):
        return model(x, training=False)

    return SourceModel(path, kind, "keras3", in_shape, dtype, out_shape, sha or sha256_path(path), call, model, run)


def _keras_io(model) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """A functional Keras 3 or tf_keras model's inputs and outputs, by their Keras names."""
    inputs = [TensorSpec(_tensor_name(t, f"input_{i}"), tuple(t.shape[1:]), _dtype_name(t))
              for i, t in enumerate(model.inputs)]
    names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])
    if len(names) != len(model.outputs) or len(set(names)) != len(names):
        names = [f"output_{i}" for i in range(len(model.outputs))]
    outputs = [TensorSpec(n, tuple(t.shape[1:])) for n, t in zip(names, model.outputs, strict=True)]
    return inputs, outputs


def _tensor_name(t, default: str) -> str:
    name = str(getattr(t, "name", "") or default).split(":")[0]
    return name or default


def _dtype_name(t) -> str:
    dtype = getattr(t, "dtype", "float32")
    return str(getattr(dtype, "name", dtype)).replace("tf.", "")


def _multi_io_source(path: Path, kind: str, framework: str, model, inputs: list[TensorSpec], outputs: list[TensorSpec],
                     sha: str, run: RunRecord | None = None) -> SourceModel:
    """A Keras model with several inputs or outputs: called with a dict by input name (one input: an array),
    returning a dict by output name (one output: a tensor)."""
    out_names = [o.name for o in outputs] if len(outputs) > 1 else None

    def call(x):
        return named_outputs(model(x, training=False), out_names)

    first_in, first_out = inputs[0], outputs[0]
    return SourceModel(path, kind, framework, first_in.shape, first_in.dtype, first_out.shape, sha, call, model, run,
                       inputs=inputs, outputs=outputs)


def _subclassed_io(path: Path, model) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The input and outputs of a subclassed Keras 3 model, from the (one) input shape it was built with;
    several outputs (a dict, list or tuple) are named by their keys, else ``output_0``, ``output_1``..."""
    import keras

    shape = (model.get_build_config() or {}).get("input_shape") if model.built else None
    if not shape or not isinstance(shape[0], (int, type(None))) or isinstance(shape, dict):
        raise ModelLoadError(f"{path} is a subclassed model saved without the input shape it was built with",
                             hint="call the model on one batch (or model.build(shape)) before saving it")
    spec = model.compute_output_spec(keras.KerasTensor((None, *shape[1:]), "float32"))
    if isinstance(spec, dict):
        outputs = [TensorSpec(str(k), tuple(v.shape[1:])) for k, v in spec.items()]
    elif isinstance(spec, (list, tuple)):
        outputs = [TensorSpec(f"output_{i}", tuple(v.shape[1:])) for i, v in enumerate(spec)]
    else:
        outputs = [TensorSpec("output", tuple(spec.shape[1:]))]
    return [TensorSpec("input", tuple(shape[1:]))], outputs


def _load_h5(path: Path) -> SourceModel:
    _quiet_tf()
    try:
        import h5py

        with h5py.File(path, "r"):
            pass
    except Exception:
        raise ModelLoadError(f"{path} is not a readable HDF5 (.h5) file", hint="re-save the model, or check the download") from None
    keras3_error = None
    try:
        import keras

        model = keras.saving.load_model(str(path), compile=False)
        return _from_keras3(path, model, kind="h5-keras3")
    except ModelLoadError:
        raise
    except Exception as e:
        keras3_error = e
    try:
        import tf_keras
    except ImportError:
        raise ModelLoadError(f"{path} needs tf_keras to load (Keras 3 refused it: {first_line(keras3_error, with_type=True)})", hint="pip install tf-keras==2.21.0 --no-deps") from None
    try:
        model = tf_keras.models.load_model(str(path), compile=False)
    except Exception as e:
        raise ModelLoadError(f"{path} cannot be loaded by Keras 3 nor tf_keras: {first_line(e, with_type=True)}") from None
    inputs, outputs = _keras_io(model)
    if len(inputs) > 1 or len(outputs) > 1:
        return _multi_io_source(path, "h5-tf_keras", "tf_keras", model, inputs, outputs, sha256_path(path))

    def call(x):
        return model(x, training=False)

    in_shape = tuple(model.inputs[0].shape[1:])
    out_shape = tuple(model.outputs[0].shape[1:])
    return SourceModel(path, "h5-tf_keras", "tf_keras", in_shape, "float32", out_shape, sha256_path(path), call, model)


def _load_saved_model(path: Path) -> SourceModel:
    _quiet_tf()
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise ModelLoadError(f"SavedModel {path} cannot be loaded: {first_line(e, with_type=True)}") from None
    fn = loaded.signatures.get("serving_default") if hasattr(loaded, "signatures") else None
    if fn is None:
        raise ModelLoadError(f"SavedModel {path} has no 'serving_default' signature", hint="export it with a serving signature")
    specs = fn.structured_input_signature[1]
    if not specs or not isinstance(fn.structured_outputs, dict) or not fn.structured_outputs:
        raise ModelLoadError(f"SavedModel {path}'s serving signature has no named inputs or outputs",
                             hint="export it with a signature of named tensors")
    inputs = [TensorSpec(n, tuple(s.shape[1:]), s.dtype.name) for n, s in specs.items()]
    outputs = [TensorSpec(n, tuple(s.shape[1:])) for n, s in fn.structured_outputs.items()]
    in_name, in_spec = next(iter(specs.items()))
    out_name, out_spec = next(iter(fn.structured_outputs.items()))
    multi_in, multi_out = len(inputs) > 1, len(outputs) > 1

    def call(x):
        feeds = {n: tf.cast(x[n], s.dtype) for n, s in specs.items()} if multi_in else {in_name: tf.cast(x, in_spec.dtype)}
        result = fn(**feeds)
        return {o.name: result[o.name] for o in outputs} if multi_out else result[out_name]

    src = SourceModel(
        path, "saved_model", "tensorflow", tuple(in_spec.shape[1:]), in_spec.dtype.name,
        tuple(out_spec.shape[1:]), sha256_path(path), call, keras_model=loaded,
        inputs=inputs if multi_in or multi_out else [], outputs=outputs if multi_in or multi_out else [],
    )
    src._saved_model_dir = path
    return src


def _load_run(run_dir: Path, *, safe_mode: bool) -> SourceModel:
    record = RunRecord.load(run_dir)
    model_file = run_dir / MODEL_NAME
    if not model_file.is_file():
        raise ModelLoadError(f"Run folder {run_dir} has no {MODEL_NAME}", hint="train again with `edgekit train`")
    if record.custom_code:
        import_custom_code(run_dir / CUSTOM_CODE_NAME)
    model = _load_keras3(model_file, safe_mode=safe_mode)
    return _from_keras3(run_dir, model, kind="run", run=record, sha=sha256_path(model_file))
