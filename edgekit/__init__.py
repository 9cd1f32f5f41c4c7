"""edgekit: take a Keras model from training to a device, measured at every step.

Importing ``edgekit`` is cheap: TensorFlow, LiteRT and the other heavy stacks load only
when a command needs them.

Example:
    >>> import edgekit
    >>> edgekit.__version__
    '0.1.0'
"""

__version__ = "0.1.0"
