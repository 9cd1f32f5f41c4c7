"""Import TensorFlow once, quietly: its import-time C++ log lines are not for edgekit's users.

Example:
    >>> tf = import_tensorflow()   # doctest: +SKIP
    >>> tf.__version__             # doctest: +SKIP
    '2.21.0'
"""

from __future__ import annotations

import os
import sys


def import_tensorflow():
    """Import and return ``tensorflow`` with its start-up logging captured."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgekit.files import captured_stderr_fd

    with captured_stderr_fd():
        import keras  # noqa: F401  (Keras 3 prints through the same channel at import)
        import tensorflow as tf
    return tf
