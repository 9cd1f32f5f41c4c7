"""Data sources and preprocessing (NumPy only: no TensorFlow import)."""

from edgekit.data.loaders import Dataset, load_data
from edgekit.data.preprocessing import Preprocessing

__all__ = ["Dataset", "Preprocessing", "load_data"]
