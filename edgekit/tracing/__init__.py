"""How a Keras model is traced into a graph every format can take, below every user of it (the
source model, MAC counting, ``inspect`` and the exporters): recurrent layers as fused LSTMs or
unrolled loops (:mod:`edgekit.tracing.recurrent`), and exact GELU, einsum and grouped convolutions
written with operators every format has (:mod:`edgekit.tracing.portable_ops`)."""
