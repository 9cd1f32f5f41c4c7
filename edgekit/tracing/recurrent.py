"""Recurrent layers traced for converters: fused LSTMs and unrolled loops instead of while loops.

Keras runs a recurrent layer as a TF while loop. Converters handle loops badly: TFLite keeps a
``WHILE`` op that its int8 calibration crashes on, and TF.js 4.22 cannot run the loop at all.
While a model is traced under :func:`static_recurrent_tracing` (batch and sequence length fixed):

- every ``LSTM`` (tanh/sigmoid, with bias, no mask) becomes a ``tf.function`` carrying the
  attributes ``api_implements="lstm_<uuid>"``, ``time_major``, ``go_backwards``: the TFLite
  converter replaces that function with the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` builtin,
  which has float and int8 kernels. Keras 3 LSTMs get such a function from edgekit; Keras 2
  (tf_keras) LSTMs have their own. The function's body, which every other consumer runs (TF.js,
  the SavedModel itself), is the same LSTM, unrolled with ``unroll_loops``.
- with ``unroll_loops`` (TFLite int8, TF.js, ``--unroll``), every other recurrent layer (GRU,
  SimpleRNN, an LSTM with other activations) is unrolled (Keras's own ``unroll=True``) when its
  sequence length is known and at most ``MAX_UNROLL_STEPS``; longer ones keep their loop.
- with ``fuse_lstm=False`` (``--unroll``) LSTMs are unrolled like the rest.

The traced graph computes exactly what the Keras model computes (tests compare them).

Example:
    >>> plan(model)                                                # doctest: +SKIP
    {'lstm': 'fused LSTM', 'gru': 'unrolled loop'}
    >>> with static_recurrent_tracing(model):                      # doctest: +SKIP
    ...     model.export("sm", format="tf_saved_model", input_signature=[spec])
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

MAX_UNROLL_STEPS = 512  # longer sequences keep their loop: an unrolled graph grows with every step


def recurrent_layers(model: Any) -> list[Any]:
    """The recurrent layers of a Keras 3 or tf_keras model, inside Bidirectional wrappers and nested models too."""
    rnn = _rnn_class(model)
    if rnn is None:
        return []  # a loaded SavedModel: traced as it is
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True) if isinstance(layer, rnn)]


def _rnn_class(model: Any) -> type | None:
    """keras.layers.RNN or tf_keras.layers.RNN, whichever built ``model``; None for anything else."""
    import keras

    if isinstance(model, keras.Model):
        return keras.layers.RNN
    if _is_tf_keras(model):
        import tf_keras

        return tf_keras.layers.RNN
    return None


def _is_tf_keras(model: Any) -> bool:
    return type(model).__module__.startswith("tf_keras.") and "tf_keras" in sys.modules


def plan(model: Any, *, unroll_loops: bool = True, fuse_lstm: bool = True) -> dict[str, str]:
    """What tracing does to each recurrent layer: ``fused LSTM``, ``unrolled loop`` or ``loop``."""
    return {layer.name: how for layer, how in _decisions(model, unroll_loops, fuse_lstm)}


def fused_lstm_beside_loop(model: Any) -> bool:
    """True when a model would get a fused LSTM and a recurrent loop in the same TFLite graph.

    LiteRT computes such a graph wrong (an LSTM(return_sequences) into a SimpleRNN or GRU: max
    abs diff 0.04 against Keras, found by ``make fuzz``; each part alone is exact), so the
    TFLite exporter unrolls the loops of such a model in every quant mode.
    """
    return {"fused LSTM", "loop"} <= set(plan(model, unroll_loops=False).values())


def _decisions(model: Any, unroll_loops: bool, fuse_lstm: bool) -> list[tuple[Any, str]]:
    steps_of = _sequence_lengths(model)
    out = []
    for layer in recurrent_layers(model):
        steps = steps_of.get(id(layer))
        if fuse_lstm and steps is not None and _fusable_lstm(layer):
            out.append((layer, "fused LSTM"))
        elif layer.unroll or (unroll_loops and steps is not None and steps <= MAX_UNROLL_STEPS):
            out.append((layer, "unrolled loop"))
        else:
            out.append((layer, "loop"))
    return out


def _fusable_lstm(layer: Any) -> bool:
    if type(layer).__name__ != "LSTM":
        return False
    if _is_tf_keras(layer):
        return bool(getattr(layer, "_could_use_gpu_kernel", False))  # tf_keras's own test for its fused path
    import keras

    cell = layer.cell
    return (cell.use_bias and not layer.unroll and not cell.recurrent_dropout and layer.use_cudnn in ("auto", True)
            and cell.activation is keras.activations.tanh and cell.recurrent_activation is keras.activations.sigmoid)


def _sequence_lengths(model: Any) -> dict[int, int | None]:
    """id(layer) -> the time steps of its input, for every recurrent layer whose input shape is known."""
    out: dict[int, int | None] = {}
    for layer in model._flatten_layers(include_self=False, recursive=True) if _rnn_class(model) else []:
        steps = _steps(layer)
        inner = [getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)]  # Bidirectional
        for child in [layer, *[c for c in inner if c is not None]]:
            out.setdefault(id(child), steps)
    return out


def _steps(layer: Any) -> int | None:
    shapes = getattr(layer, "_build_shapes_dict", None)  # Keras 3
    if shapes:
        shape = next(iter(shapes.values()), None)
    else:
        try:  # tf_keras: layers called in a functional graph
            shape = layer.input_shape
        except (AttributeError, RuntimeError, ValueError):
            shape = None
    if shape and isinstance(shape[0], (list, tuple)):  # several inputs (initial states): the sequence is first
        shape = shape[0]
    return shape[1] if shape is not None and len(shape) >= 3 else None


@contextlib.contextmanager
def static_recurrent_tracing(model: Any, *, unroll_loops: bool = True, fuse_lstm: bool = True) -> Iterator[None]:
    """While tracing ``model`` with a fixed input shape, its LSTMs become fused-LSTM functions (unless not
    ``fuse_lstm``) and, with ``unroll_loops``, other recurrent loops of at most ``MAX_UNROLL_STEPS`` steps
    are unrolled (see :func:`plan`)."""
    import keras
    from keras.src import backend as keras_backend

    def lstm(inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias, activation,
             recurrent_activation, return_sequences=False, go_backwards=False, unroll=False, time_major=False):
        if (not fuse_lstm or mask is not None or bias is None or unroll or activation is not keras.activations.tanh
                or recurrent_activation is not keras.activations.sigmoid or None in inputs.shape):
            raise NotImplementedError  # Keras falls back to its generic loop (unrolled below)
        return _fused_lstm(inputs, initial_state_h, initial_state_c, kernel, recurrent_kernel, bias,
                           return_sequences=return_sequences, go_backwards=go_backwards, time_major=time_major,
                           unroll=unroll_loops)

    def unrolled(original_rnn):
        def rnn(step_function, inputs, initial_states, *args, **kwargs):
            first = inputs if not isinstance(inputs, (list, tuple)) else inputs[0]
            steps = first.shape[0 if kwargs.get("time_major") else 1]
            if unroll_loops and steps is not None and steps <= MAX_UNROLL_STEPS:
                kwargs["unroll"] = True
            return original_rnn(step_function, inputs, initial_states, *args, **kwargs)
        return rnn

    with contextlib.ExitStack() as undo:
        _patch(undo, keras_backend, lstm=lstm, rnn=unrolled(keras_backend.rnn))
        if _is_tf_keras(model):
            from tf_keras.src import backend as tf_keras_backend

            # tf_keras LSTMs fuse by themselves: their function carries api_implements. Their body and
            # tf_keras GRUs' (which have such a function too, never fused) call backend.rnn.
            _patch(undo, tf_keras_backend, rnn=unrolled(tf_keras_backend.rnn))
            if not fuse_lstm:  # off the fused-function path, onto the generic (unrolled) loop
                for layer in recurrent_layers(model):
                    if type(layer).__name__ == "LSTM" and hasattr(layer, "_could_use_gpu_kernel"):
                        _patch(undo, layer, _could_use_gpu_kernel=False)
        yield


def _patch(undo: contextlib.ExitStack, target: Any, **values: Any) -> None:
    """Set attributes of ``target`` until ``undo`` closes."""
    originals = {name: getattr(target, name) for name in values}
    for name, value in values.items():
        setattr(target, name, value)
    undo.callback(lambda: [setattr(target, n, v) for n, v in originals.items()])


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
