"""Which Keras layer a converted graph's node came from, by its name scope.

Converters keep TensorFlow's name scopes in what they write: a TFLite tensor
``cnn_1/conv2d_1/Relu;cnn_1/conv2d_1/BiasAdd``, a TF.js node
``StatefulPartitionedCall/cnn_1/conv2d_1/Relu``, the TF node an ONNX node came from. The scope
under the model's is the layer's, except that Keras 3 traces a built model under new scopes
(``conv2d`` -> ``conv2d_1``, ``conv2d_1`` -> ``conv2d_1_2``): given the model's layer names,
the suffix is taken off again.

Example:
    >>> scope_of("cnn_1/conv2d_1/Relu;cnn_1/conv2d_1/BiasAdd")
    'conv2d_1'
    >>> keras_layer("conv2d_1_2", {"conv2d", "conv2d_1"}, retraced=True)
    'conv2d_1'
    >>> keras_layer("dense", None)
    'dense'
"""

from __future__ import annotations

import re
from collections.abc import Collection

_WRAPPERS = ("StatefulPartitionedCall", "PartitionedCall")


def scope_of(name: str) -> str | None:
    """The layer scope in a node or tensor name (the first of ``;``-joined names), or None."""
    parts = [p for p in name.split(";")[0].split("/") if p]
    while parts and parts[0].split(":")[0].startswith(_WRAPPERS):
        parts = parts[1:]
    if len(parts) >= 3:
        return parts[1]
    return parts[0] if len(parts) == 2 else None


def keras_layer(scope: str | None, layers: Collection[str] | None, *, retraced: bool = False) -> str | None:
    """The Keras layer ``scope`` names, given the model's layer names (None: the scope as it is)."""
    if scope is None or not layers:
        return scope
    base = re.sub(r"_\d+$", "", scope)
    if base in layers and (retraced or scope not in layers):
        return base
    return scope if scope in layers else None
