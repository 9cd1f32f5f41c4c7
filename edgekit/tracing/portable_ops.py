"""Trace a Keras model with ops every converter and runtime has, computing the same function.

Two TensorFlow ops that Keras layers use are missing downstream:
- ``Erfc``: TensorFlow computes exact GELU (Keras's ``"gelu"``) as ``0.5 * x * erfc(-x / sqrt 2)``;
  neither ONNX nor TF.js has ``Erfc``. It is traced as ``0.5 * x * (1 + erf(x / sqrt 2))``.
- ``Einsum``: ``MultiHeadAttention`` and ``EinsumDense`` call ``tf.einsum``; TF.js's WebAssembly
  backend has no ``Einsum`` kernel. It is traced as transposes, reshapes and batched matmuls
  (TensorFlow's own first einsum implementation).
- Grouped convolutions (``Conv2D(groups=...)``, ConvNeXt's 7x7 depthwise): Keras's TensorFlow backend
  compiles them with XLA (``jit_compile``), which leaves an opaque function call in the graph that
  neither tf2onnx nor the TF.js converter can see into. They are traced as ``depthwise_conv2d`` (one
  group per channel) or as one convolution per group, concatenated.
The TF.js exporter traces under :func:`portable_tracing` when a graph needs it; the ONNX exporter
traces under it (einsum kept: ONNX has it) and rewrites ``Erfc`` in the converted graph
(:func:`edgekit.exporters.onnx._rewrite_exact`).

Example:
    >>> with portable_tracing():                            # doctest: +SKIP
    ...     export_saved_model(model, out)
"""

from __future__ import annotations

import contextlib
import math

# TF ops the TF.js WebAssembly backend cannot run (or the converter cannot take) that portable_tracing removes;
# StatefulPartitionedCall: an XLA-compiled function (a grouped convolution) left as an opaque call
NOT_PORTABLE = ("Erfc", "Einsum", "StatefulPartitionedCall")


@contextlib.contextmanager
def portable_tracing(*, einsum: bool = True):
    """Within the block, exact ``tf.nn.gelu`` is traced with ``Erf``, grouped convolutions without XLA, and
    (``einsum``) ``tf.einsum`` with matmuls."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import nn as keras_tf_nn
    from tensorflow.python.ops import special_math_ops

    gelu_original, einsum_original, conv_original = tf.nn.gelu, tf.einsum, keras_tf_nn.conv

    def gelu(features, approximate=False, name=None):
        if approximate:
            return gelu_original(features, approximate=True, name=name)
        x = tf.convert_to_tensor(features)
        return 0.5 * x * (1.0 + tf.math.erf(x * tf.cast(1 / math.sqrt(2), x.dtype)))

    def einsum(equation, *inputs, **kwargs):
        kwargs.pop("optimize", None)
        return special_math_ops._einsum_v1(equation, *inputs, **kwargs)

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        grouped = (len(inputs.shape) == 4 and data_format in (None, "channels_last")
                   and inputs.shape[-1] is not None and inputs.shape[-1] != kernel.shape[-2])
        if not grouped:
            return conv_original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return _grouped_conv2d(tf, inputs, kernel, strides, padding, dilation_rate)

    tf.nn.gelu, keras_tf_nn.conv = gelu, conv
    if einsum:
        tf.einsum = einsum
    try:
        yield
    finally:
        tf.nn.gelu, tf.einsum, keras_tf_nn.conv = gelu_original, einsum_original, conv_original


def _grouped_conv2d(tf, x, kernel, strides, padding, dilation_rate):
    """``Conv2D(groups=G)`` (channels last) without XLA: ``depthwise_conv2d`` when every group is one
    channel, else one convolution per group, concatenated. The same sums, in the same order per output."""
    channels, per_group, out = int(x.shape[-1]), int(kernel.shape[-2]), int(kernel.shape[-1])
    groups = channels // per_group
    strides = [strides] * 2 if isinstance(strides, int) else list(strides)
    dilations = [dilation_rate] * 2 if isinstance(dilation_rate, int) else list(dilation_rate)
    if per_group == 1 and not (max(strides) > 1 and max(dilations) > 1):
        kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
        depthwise = tf.reshape(kernel, [kh, kw, channels, out // channels])
        return tf.nn.depthwise_conv2d(x, depthwise, [1, *strides, 1], padding.upper(), dilations=dilations)
    xs = tf.split(x, groups, axis=-1)
    ks = tf.split(kernel, groups, axis=-1)
    return tf.concat([tf.nn.conv2d(xi, ki, [1, *strides, 1], padding.upper(), dilations=dilations)
                      for xi, ki in zip(xs, ks, strict=True)], axis=-1)
