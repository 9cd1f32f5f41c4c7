"""The model a user points at, loaded (:func:`edgekit.model_loading.load_source` reads every kind).

A :class:`SourceModel` answers what every exporter and the parity check need: its inputs and
outputs by name, a ``predict`` on NumPy batches, and a TF SavedModel that the converters read.

Example:
    >>> src = load_source("runs/demo")            # doctest: +SKIP
    >>> src.input_shape, src.kind                 # doctest: +SKIP
    ((8, 8, 1), 'run')
    >>> src.predict(x)["output"].shape            # doctest: +SKIP
    (16, 10)
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.io_spec import Batch, TensorSpec, as_float32, by_name, concat, rows, take
from edgekit.run_record import RunRecord


@dataclass
class SourceModel:
    path: Path
    kind: str  # keras | h5-keras3 | h5-tf_keras | saved_model | run
    framework: str  # keras3 | tf_keras | tensorflow
    sha256: str
    call: Callable[[dict], dict]  # TF-traceable forward pass: tensors by input name in, tensors by output name out
    inputs: list[TensorSpec]  # named by :func:`edgekit.io_spec.interface_names`
    outputs: list[TensorSpec]
    keras_model: Any = None
    run: RunRecord | None = None
    dynamic_inputs: list[TensorSpec] | None = None  # the inputs as the model declares them, when fix_shapes fixed some
    _saved_model_dir: Path | None = None
    _tmp: list[Path] = field(default_factory=list)
    _variant_dirs: dict[tuple[int | None, bool, bool, bool], Path] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple:
        """The first input's shape without the batch axis (the one input's, for most models)."""
        return self.inputs[0].shape

    @property
    def input_dtype(self) -> str:
        return self.inputs[0].dtype

    @property
    def output_shape(self) -> tuple:
        return self.outputs[0].shape

    @property
    def fixed_batch(self) -> int | None:
        """1 for a detector with NMS inside (:mod:`edgekit.detection`): its artifacts take one image per
        call (one NMS operator, what a phone runs); None where the batch stays as the model declares it."""
        if self.framework != "keras3" or self.keras_model is None:
            return None
        from edgekit.detection.postprocess import settings_of

        return 1 if settings_of(self.keras_model) is not None else None

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
        self._saved_model_dir = None

    @property
    def has_recurrent_layers(self) -> bool:
        """True for a Keras 3 or tf_keras model with LSTM/GRU/SimpleRNN layers (traced specially for the converters)."""
        from edgekit.tracing.recurrent import recurrent_layers

        return self.framework in ("keras3", "tf_keras") and bool(recurrent_layers(self.keras_model))

    def predict(self, x: Batch, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Run the source model on prepared inputs (a dict by input name; a one-input model also takes its
        array); returns float32 outputs by output name."""
        x = by_name(x, self.inputs)
        outs = []
        for i in range(0, rows(x), batch_size):
            y = self.call(take(x, i, i + batch_size))
            outs.append({o.name: np.asarray(y[o.name]) for o in self.outputs})
        return as_float32(concat(outs))

    def tf_signature(self, batch: int | None = None, *, dynamic: bool = False) -> dict:
        """``tf.TensorSpec`` per input name, batch axis ``batch``: what :attr:`call` is traced with;
        ``dynamic``: the shapes the model declares, not those ``--input-shape`` fixed."""
        import tensorflow as tf

        specs = (self.dynamic_inputs or self.inputs) if dynamic else self.inputs
        batch = batch if batch is not None else self.fixed_batch
        return {s.name: tf.TensorSpec([batch, *s.shape], tf.as_dtype(s.dtype), name=s.name) for s in specs}

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
        batch = batch if batch is not None else self.fixed_batch
        portable = portable and keras_source
        several = len(self.inputs) > 1 or len(self.outputs) > 1  # traced with a signature that names every tensor
        if batch is None and not portable and not (several and keras_source) and self.dynamic_inputs is None:
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
        named = len(self.inputs) > 1 or len(self.outputs) > 1  # a signature that names every tensor
        fixed = batch is not None or self.dynamic_inputs is not None
        spec = keras_input_signature(self.inputs, batch) if named or fixed else None  # else Keras's own
        names = [o.name for o in self.outputs] if len(self.outputs) > 1 else None
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
            "input_shape": list(self.input_shape),  # the first input's and output's, for a one-line summary
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


def keras_forward(model: Any, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> Callable[[dict], dict]:
    """A Keras model's inference call in edgekit's convention (tensors by name in, by name out).

    Keras's own convention is the one place a count matters: a model with one input is called with
    that tensor, one with several with a dict by input name; one output comes back as a tensor,
    several as a dict or a list (named here by ``outputs``, in order)."""
    names = [o.name for o in outputs]

    def call(feeds: dict) -> dict:
        return named_outputs(model(keras_args(feeds, inputs), training=False), names)

    return call


def keras_args(feeds: dict, inputs: list[TensorSpec]) -> Any:
    """Tensors by input name as a Keras model's call takes them: the one tensor, or the dict."""
    return feeds[inputs[0].name] if len(inputs) == 1 else {s.name: feeds[s.name] for s in inputs}


def keras_input_signature(inputs: list[TensorSpec], batch: int | None) -> list:
    """The ``input_signature`` of a Keras model's call: ``[TensorSpec]`` for one input, ``[{name: TensorSpec}]``
    for several (named, so that a converter names the artifact's inputs after them)."""
    import tensorflow as tf

    specs = {s.name: tf.TensorSpec([batch, *s.shape], tf.as_dtype(s.dtype), name=s.name) for s in inputs}
    if len(inputs) == 1:  # named too: the signature's input then carries the source's name, not Keras's `inputs`
        return [tf.TensorSpec([batch, *inputs[0].shape], tf.as_dtype(inputs[0].dtype), name=inputs[0].name)]
    return [specs]


def named_outputs(outputs: Any, names: list[str] | None) -> Any:
    """A model's outputs as a dict by ``names`` (a dict, list or tuple of tensors, or the one tensor); as
    they are when ``names`` is None. A dict of one output is taken under the one name asked for."""
    if names is None:
        return outputs
    if isinstance(outputs, dict):
        if len(outputs) == 1 and len(names) == 1:
            return {names[0]: next(iter(outputs.values()))}
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
