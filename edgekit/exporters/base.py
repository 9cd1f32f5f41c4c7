"""The exporter interface every format implements, and the options they share.

Example:
    >>> opts = ExportOptions(int8_io="uint8")
    >>> opts.calib_samples
    200
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgekit.artifact import Artifact
from edgekit.source_model import SourceModel


@dataclass
class ExportOptions:
    calib_samples: int = 200
    int8_io: str = "int8"  # int8 | uint8 | float: the input/output type of full-integer models


class Exporter(Protocol):
    """One module per format implements this; the registry lists them."""

    name: str
    suffix: str
    quant_modes: tuple[str, ...]
    runtime: str  # the runtime that validates this format's artifacts

    def export(
        self,
        source: SourceModel,
        out_dir: Path,
        *,
        quant: str,
        calibration: np.ndarray | None = None,
        options: ExportOptions | None = None,
    ) -> Artifact:
        """Write one artifact for ``quant`` into ``out_dir``; raise ExportError on failure."""
        ...


def artifact_name(source: SourceModel, quant: str, suffix: str) -> str:
    """``model_int8.tflite`` for a run or a ``model.keras``; ``vww_96_int8.tflite`` for ``vww_96.h5``."""
    stem = "model" if source.kind == "run" else Path(source.path).stem
    return f"{stem}_{quant}{suffix}"
