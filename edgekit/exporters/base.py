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
    """Options shared by the exporters; each format reads the ones that apply to it."""

    calib_samples: int = 200
    int8_io: str = "int8"  # TFLite: int8 | uint8 | float, the input/output type of full-integer models
    opset: int | None = None  # ONNX: None = newest both tf2onnx and ONNX Runtime support
    batch: int | None = None  # ONNX: fixed batch size; None keeps it dynamic
    fp16_io: str = "float16"  # ONNX fp16: float16 | float32 inputs and outputs
    per_tensor: bool = False  # int8 (TFLite, ONNX) and TFLite dynamic: per-tensor instead of per-channel weight scales
    calib_method: str = "minmax"  # ONNX int8: minmax | entropy | percentile
    int8_layout: str = "auto"  # ONNX int8: auto (measured) | qdq-u8s8 | qdq-s8s8 | qop-u8s8 | qop-s8s8
    unroll: bool = False  # TFLite: unroll Keras recurrent layers instead of fusing LSTMs (faster on XNNPACK, larger)
    input_shape: str | None = None  # --input-shape: fixes unknown non-batch dims for TFLite, TF.js and parity
    max_drop: float | None = None  # int8: points of accuracy (agreement without labels) int8 may lose; more is repaired
    nms: str = "auto"  # a detector: on (decoding and NMS in the artifact; a detector's default) | off (boxes and scores)
    max_detections: int | None = None  # --nms: detections kept per image (None: the model's own, 20 for edgekit's)
    iou: float | None = None  # --nms: boxes of a class overlapping more than this are one detection
    score: float | None = None  # --nms: lowest score kept

    def validate(self) -> None:
        """Raise UsageError for a bad value before any work starts."""
        from edgekit.errors import UsageError, suggest

        choices = {"--int8-io": (self.int8_io, ("int8", "uint8", "float")),
                   "--fp16-io": (self.fp16_io, ("float16", "float32")),
                   "--calib-method": (self.calib_method, ("minmax", "entropy", "percentile")),
                   "--int8-layout": (self.int8_layout, ("auto", "qdq-u8s8", "qdq-s8s8", "qop-u8s8", "qop-s8s8"))}
        for flag, (value, allowed) in choices.items():
            if value not in allowed:
                raise UsageError(f"{flag} must be one of {', '.join(allowed)}, got '{value}'.{suggest(value, allowed)}")
        if self.nms not in ("auto", "on", "off"):
            raise UsageError(f"--nms must be on or off, got '{self.nms}'")
        if self.max_detections is not None and not 1 <= self.max_detections <= 1000:
            raise UsageError(f"--max-detections must be from 1 to 1000, got {self.max_detections}")
        if self.iou is not None and not 0 < self.iou <= 1:
            raise UsageError(f"--iou is an overlap from 0 to 1 (0 excluded), got {self.iou}")
        if self.score is not None and not 0 <= self.score < 1:
            raise UsageError(f"--score is a score from 0 to 1 (1 excluded), got {self.score}")
        if self.calib_samples < 1:
            raise UsageError(f"--calib-samples must be at least 1, got {self.calib_samples}")
        if self.max_drop is not None and not 0 <= self.max_drop < 100:
            raise UsageError(f"--max-drop is in points of accuracy, from 0 to 100; got {self.max_drop}")
        if self.batch is not None and self.batch < 1:
            raise UsageError(f"--batch must be at least 1, got {self.batch}")


class Exporter(Protocol):
    """One module per format implements this; the registry lists them."""

    name: str
    suffix: str
    quant_modes: tuple[str, ...]
    needs_calibration: tuple[str, ...]  # quant modes that need calibration data
    runtime: str  # the runtime that validates this format's artifacts

    def export(
        self,
        source: SourceModel,
        out_dir: Path,
        *,
        quant: str,
        calibration: dict[str, np.ndarray] | None = None,
        options: ExportOptions | None = None,
    ) -> Artifact:
        """Write one artifact for ``quant`` into ``out_dir``; raise ExportError on failure."""
        ...


def artifact_name(source: SourceModel, quant: str, suffix: str) -> str:
    """``model_int8.tflite`` for a run or a ``model.keras``; ``vww_96_int8.tflite`` for ``vww_96.h5``."""
    stem = "model" if source.kind == "run" else Path(source.path).stem
    return f"{stem}_{quant}{suffix}"
