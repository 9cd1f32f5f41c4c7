"""The preprocessing a run records, so that export and bench apply exactly what training did.

Raw samples become model inputs as ``((x * scale + offset) - mean) / std``; ``mean`` and
``std`` are per-feature arrays (CSV data) or absent.

Example:
    >>> import numpy as np
    >>> p = Preprocessing(scale=1 / 16)
    >>> p.apply(np.array([[16.0]]))
    array([[1.]], dtype=float32)
    >>> Preprocessing.from_dict(p.to_dict()) == p
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Preprocessing:
    scale: float = 1.0
    offset: float = 0.0
    mean: list[float] | None = None
    std: list[float] | None = None
    image_size: list[int] | None = None  # (height, width) images were resized to at load time
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, dtype=np.float32) * np.float32(self.scale) + np.float32(self.offset)
        if self.mean is not None:
            y = y - np.asarray(self.mean, dtype=np.float32)
        if self.std is not None:
            y = y / np.asarray(self.std, dtype=np.float32)
        return y.astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "formula": "((x * scale + offset) - mean) / std",
            "scale": self.scale,
            "offset": self.offset,
            "mean": self.mean,
            "std": self.std,
            "image_size": self.image_size,
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Preprocessing:
        if not d:
            return cls()
        return cls(
            scale=float(d.get("scale", 1.0)),
            offset=float(d.get("offset", 0.0)),
            mean=d.get("mean"),
            std=d.get("std"),
            image_size=d.get("image_size"),
            notes=d.get("notes", ""),
            extra=d.get("extra", {}) or {},
        )
