"""Recurrent layers traced for converters: fused LSTMs and unrolled loops instead of while loops.

Keras 3 runs a recurrent layer as a TF while loop. Converters handle loops badly: TFLite keeps
a ``WHILE`` op that its int8 calibration crashes on, and TF.js 4.22 cannot run the loop at all.
While a model is traced under :func:`static_recurrent_tracing` (batch and sequence length fixed):

- every ``LSTM`` (tanh/sigmoid, with bias, no mask) becomes a ``tf.function`` carrying the
  attributes tf.keras (Keras 2) gives its own LSTM (``api_implements="lstm_<uuid>"``,
  ``time_major``, ``go_backwards``): the TFLite converter replaces that function with the fused
  ``UNIDIRECTIONAL_SEQUENCE_LSTM`` builtin, which has float and int8 kernels. The function's
  body, which every other consumer runs (TF.js, the SavedModel itself), is the same LSTM
  unrolled over the time steps: plain MatMul/Sigmoid/Tanh ops, no loop.
- with ``unroll_loops`` (TFLite int8, TF.js, ``--unroll``), every other recurrent layer (GRU,
  SimpleRNN, an LSTM with other activations) is unrolled (Keras's own ``unroll=True``) when its
  sequence length is known and at most ``MAX_UNROLL_STEPS``; longer ones keep their loop.
- with ``fuse_lstm=False`` (``--unroll``) LSTMs are unrolled like the rest.

The traced graph computes exactly what the Keras model computes (tests compare them).

Example:
    >>> plan(model)                                                # doctest: +SKIP
    {'lstm': 'fused LSTM', 'gru': 'unrolled loop'}
    >>> with static_recurrent_tracing():                           # doctest: +SKIP
    ...     model.export("sm", format="tf_saved_model", input_signature=[spec])
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

MAX_UNROLL_STEPS = 512  # longer sequences keep their loop: an unrolled graph grows with every step


def recurrent_layers(model: Any) -> list[Any]:
    """The recurrent layers of a Keras 3 model, inside Bidirectional wrappers and nested models too."""
    import keras

    if not isinstance(model, keras.Model):
        return []  # a tf_keras model or a loaded SavedModel: traced as it is
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.RNN)]


def plan(model: Any, *, unroll_loops: bool = True, fuse_lstm: bool = True) -> dict[str, str]:
    """What tracing does to each recurrent layer: ``fused LSTM``, ``unrolled loop`` or ``loop``."""
    import keras

    out = {}
    for layer in recurrent_layers(model):
        steps = _sequence_length(layer)
        cell = getattr(layer, "cell", None)
        fusable = (fuse_lstm and type(layer).__name__ == "LSTM" and cell is not None and cell.use_bias and not layer.unroll
                   and not cell.recurrent_dropout and layer.use_cudnn in ("auto", True)
                   and cell.activation is keras.activations.tanh
                   and cell.recurrent_activation is keras.activations.sigmoid and steps is not None)
        if fusable:
            out[layer.name] = "fused LSTM"
        elif layer.unroll or (unroll_loops and steps is not None and steps <= MAX_UNROLL_STEPS):
            out[layer.name] = "unrolled loop"
        else:
            out[layer.name] = "loop"
    return out


def _sequence_length(layer: Any) -> int | None:
    shapes = getattr(layer, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values()), None)
    return shape[1] if shape is not None and len(shape) >= 3 else None


@contextlib.contextmanager
def static_recurrent_tracing(*, unroll_loops: bool = True, fuse_lstm: bool = True) -> Iterator[None]:
    """While tracing with a fixed input shape, Keras 3 LSTMs become fused-LSTM functions (unless not
    ``fuse_lstm``) and, with ``unroll_loops``, other recurrent loops of at most ``MAX_UNROLL_STEPS`` steps are unrolled (see :func:`plan`)."""
    import keras
    from keras.src import backend as keras_backend

    original_lstm, original_rnn = keras_backend.lstm, keras_backend.rnn

    def lstm(inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias, activation,
             recurrent_activation, return_sequences=False, go_backwards=False, unroll=False, time_major=False):
        if (not fuse_lstm or mask is not None or bias is None or unroll or activation is not keras.activations.tanh
                or recurrent_activation is not keras.activations.sigmoid or None in inputs.shape):
            raise NotImplementedError  # Keras falls back to its generic loop (unrolled below)
        return _fused_lstm(inputs, initial_state_h, initial_state_c, kernel, recurrent_kernel, bias,
                           return_sequences=return_sequences, go_backwards=go_backwards, time_major=time_major,
                           unroll=unroll_loops)

    def rnn(step_function, inputs, initial_states, *args, **kwargs):
        first = inputs if not isinstance(inputs, (list, tuple)) else inputs[0]
        steps = first.shape[0 if kwargs.get("time_major") else 1]
        if unroll_loops and steps is not None and steps <= MAX_UNROLL_STEPS:
            kwargs["unroll"] = True
        return original_rnn(step_function, inputs, initial_states, *args, **kwargs)

    keras_backend.lstm, keras_backend.rnn = lstm, rnn
    try:
        yield
    finally:
        keras_backend.lstm, keras_backend.rnn = original_lstm, original_rnn


def recurrent_details(source: Any, *, unroll_loops: bool, fuse_lstm: bool = True) -> dict[str, str]:
    """Manifest details for an artifact traced with :func:`static_recurrent_tracing`."""
    done = Counter(plan(source.keras_model, unroll_loops=unroll_loops, fuse_lstm=fuse_lstm).values())
    parts = [f"{n} {what}{'s' if n > 1 else ''}" for what, n in sorted(done.items())]
    details = {"batch": "fixed at 1: recurrent layers are traced with static shapes"}
    if parts:
        details["recurrent"] = ", ".join(parts)
    if done.get("fused LSTM"):
        details["state"] = ("fused LSTM states are variable tensors that persist between invocations: "
                            "reset them before each independent input (edgekit does)")
    return details


def _fused_lstm(inputs, h, c, kernel, recurrent_kernel, bias, *, return_sequences: bool, go_backwards: bool,
                time_major: bool, unroll: bool):
    import tensorflow as tf

    kernel, recurrent_kernel, bias = (tf.convert_to_tensor(v) for v in (kernel, recurrent_kernel, bias))
    batch = inputs.shape[1 if time_major else 0]
    units = recurrent_kernel.shape[0]
    # The converter fuses only when the initial states have a static shape (batch known).
    h, c = tf.reshape(h, [batch, units]), tf.reshape(c, [batch, units])
    fn = tf.function(
        _lstm_body(time_major, go_backwards, unrolled=unroll and inputs.shape[0 if time_major else 1] <= MAX_UNROLL_STEPS),
        autograph=False,
        experimental_attributes={"api_implements": f"lstm_{uuid.uuid4()}", "api_preferred_device": "CPU",
                                 "time_major": time_major, "go_backwards": go_backwards},
    )
    last, outputs, h, c, _ = fn(inputs, h, c, kernel, recurrent_kernel, bias)
    if not return_sequences:
        outputs = tf.expand_dims(last, axis=0 if time_major else 1)
    return last, outputs, [h, c]


def _lstm_body(time_major: bool, go_backwards: bool, *, unrolled: bool):
    """The function the converter fuses: 6 tensors in, 5 out, as tf.keras's ``standard_lstm``.

    Its body is what TF.js and the SavedModel run: unrolled (no loop), or a scan."""
    import tensorflow as tf

    def cell(carry, x, kernel, recurrent_kernel, bias):
        h, c = carry
        z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        xs = inputs if time_major else tf.transpose(inputs, [1, 0, 2])
        if go_backwards:
            xs = tf.reverse(xs, [0])
        if unrolled:
            carry, hs = (init_h, init_c), []
            for x in tf.unstack(xs, axis=0):
                carry = cell(carry, x, kernel, recurrent_kernel, bias)
                hs.append(carry[0])
            hs, h, c = tf.stack(hs), carry[0], carry[1]
        else:
            hs, cs = tf.scan(lambda carry, x: cell(carry, x, kernel, recurrent_kernel, bias), xs,
                             initializer=(init_h, init_c))
            h, c = hs[-1], cs[-1]
        sequence = hs if time_major else tf.transpose(hs, [1, 0, 2])
        return h, sequence, h, c, tf.constant(1.0, name="runtime")  # runtime: tf.keras's "CPU" marker

    return standard_lstm
