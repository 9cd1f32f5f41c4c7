"""Trace a Keras model with ops every converter and runtime has, computing the same function.

Two TensorFlow ops that Keras layers use are missing downstream:
- ``Erfc``: TensorFlow computes exact GELU (Keras's ``"gelu"``) as ``0.5 * x * erfc(-x / sqrt 2)``;
  neither ONNX nor TF.js has ``Erfc``. It is traced as ``0.5 * x * (1 + erf(x / sqrt 2))``.
- ``Einsum``: ``MultiHeadAttention`` and ``EinsumDense`` call ``tf.einsum``; TF.js's WebAssembly
  backend has no ``Einsum`` kernel. It is traced as transposes, reshapes and batched matmuls
  (TensorFlow's own first einsum implementation).
The TF.js exporter traces under :func:`portable_tracing` when a graph needs it; the ONNX exporter
rewrites ``Erfc`` in the converted graph instead (:func:`edgekit.exporters.onnx._rewrite_exact`).

Example:
    >>> with portable_tracing():                            # doctest: +SKIP
    ...     export_saved_model(model, out)
"""

from __future__ import annotations

import contextlib
import math

# TF ops the TF.js WebAssembly backend cannot run (or the converter cannot take) that portable_tracing removes
NOT_PORTABLE = ("Erfc", "Einsum")


@contextlib.contextmanager
def portable_tracing():
    """Within the block, exact ``tf.nn.gelu`` is traced with ``Erf`` and ``tf.einsum`` with matmuls."""
    import tensorflow as tf
    from tensorflow.python.ops import special_math_ops

    gelu_original, einsum_original = tf.nn.gelu, tf.einsum

    def gelu(features, approximate=False, name=None):
        if approximate:
            return gelu_original(features, approximate=True, name=name)
        x = tf.convert_to_tensor(features)
        return 0.5 * x * (1.0 + tf.math.erf(x * tf.cast(1 / math.sqrt(2), x.dtype)))

    def einsum(equation, *inputs, **kwargs):
        kwargs.pop("optimize", None)
        return special_math_ops._einsum_v1(equation, *inputs, **kwargs)

    tf.nn.gelu, tf.einsum = gelu, einsum
    try:
        yield
    finally:
        tf.nn.gelu, tf.einsum = gelu_original, einsum_original
