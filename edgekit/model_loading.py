"""Load any MODEL kind a user points at: ``.keras``, Keras 2 ``.h5``, a SavedModel folder or a
RUN_DIR from ``edgekit train``, as a :class:`~edgekit.source_model.SourceModel` with its inputs and
outputs by name; a user's model file imported so its custom layers exist.

Example:
    >>> src = load_source("runs/demo")            # doctest: +SKIP
    >>> src.kind                                  # doctest: +SKIP
    'run'
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from typing import Any

from edgekit.errors import InputError, ModelLoadError, first_line
from edgekit.files import sha256_path
from edgekit.io_spec import TensorSpec, interface_names
from edgekit.run_record import CUSTOM_CODE_NAME, MODEL_NAME, RunRecord, is_run_dir
from edgekit.source_model import SourceModel, keras_forward

MODEL_KINDS = "a .keras file, a Keras 2 .h5 file, a TF SavedModel folder, or a run folder from `edgekit train`"


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

    import edgekit.detection.postprocess  # noqa: F401  (registers a detector's decoding and NMS layers)

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
    inputs, outputs = _keras_io(model) if functional else _subclassed_io(path, model)
    return _keras_source(path, kind, "keras3", model, inputs, outputs, sha or sha256_path(path), run)


def keras3_source(source: SourceModel, model) -> SourceModel:
    """``source`` with its Keras 3 model replaced by ``model`` (a detector's NMS set or left out): same file, run and hash."""
    return _from_keras3(source.path, model, kind=source.kind, run=source.run, sha=source.sha256)


def _keras_source(path: Path, kind: str, framework: str, model, inputs: list[TensorSpec], outputs: list[TensorSpec],
                  sha: str, run: RunRecord | None = None) -> SourceModel:
    """A Keras 3 or tf_keras model, its tensors named by :func:`edgekit.io_spec.interface_names`."""
    inputs, outputs = _renamed(inputs, outputs)
    return SourceModel(path, kind, framework, sha, keras_forward(model, inputs, outputs), inputs, outputs, model, run)


def _renamed(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    in_names, out_names = interface_names([s.name for s in inputs], [s.name for s in outputs])
    return ([dataclasses.replace(s, name=n) for s, n in zip(inputs, in_names, strict=True)],
            [dataclasses.replace(s, name=n) for s, n in zip(outputs, out_names, strict=True)])


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
    return _keras_source(path, "h5-tf_keras", "tf_keras", model, inputs, outputs, sha256_path(path))


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
    own_in, own_out = list(specs), list(fn.structured_outputs)
    inputs, outputs = _renamed([TensorSpec(n, tuple(s.shape[1:]), s.dtype.name) for n, s in specs.items()],
                               [TensorSpec(n, tuple(s.shape[1:])) for n, s in fn.structured_outputs.items()])

    def call(feeds):  # the signature's own names, bound to edgekit's in order
        result = fn(**{own: tf.cast(feeds[s.name], specs[own].dtype) for own, s in zip(own_in, inputs, strict=True)})
        return {s.name: result[own] for own, s in zip(own_out, outputs, strict=True)}

    src = SourceModel(path, "saved_model", "tensorflow", sha256_path(path), call, inputs, outputs, keras_model=loaded)
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
