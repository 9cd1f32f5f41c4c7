"""Parity of an artifact's outputs with its source model's: agreement, error, similarity.

Example:
    >>> import numpy as np
    >>> ref = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    >>> p = compare(ref, ref + 0.01)
    >>> p["top1_agreement"], round(p["max_abs_diff"], 3)
    (1.0, 0.01)
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Minimum parity an export must reach to count as valid, per quant mode. Top-1 agreement
# applies to classifiers only (outputs that are probability rows); cosine to every model.
THRESHOLDS: dict[str, dict[str, float]] = {
    "fp32": {"top1_agreement": 0.99, "cosine": 0.999},
    "fp16": {"top1_agreement": 0.99, "cosine": 0.999},
    "dynamic": {"top1_agreement": 0.95, "cosine": 0.99},
    "int8": {"top1_agreement": 0.90, "cosine": 0.95},
    "uint8": {"top1_agreement": 0.90, "cosine": 0.95},  # TF.js weight-only uint8
}


def compare(reference: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement, max/mean absolute difference and mean per-sample cosine similarity."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    finite = bool(np.isfinite(out).all())
    diff = np.abs(ref - out)
    num = (ref * out).sum(axis=1)
    den = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.where(den > 0, num / np.where(den > 0, den, 1), np.where(np.abs(num) == 0, 1.0, 0.0))
    return {
        "samples": int(len(ref)),
        "top1_agreement": round(float((ref.argmax(1) == out.argmax(1)).mean()), 5),
        "max_abs_diff": float(f"{np.nanmax(diff):.4g}") if finite else float("nan"),
        "mean_abs_diff": float(f"{np.nanmean(diff):.4g}") if finite else float("nan"),
        "cosine": round(float(np.nanmean(cos)), 6) if finite else float("nan"),
        "finite": finite,
    }


def is_classifier(reference: np.ndarray) -> bool:
    """True when outputs look like class probabilities (non-negative rows summing to 1)."""
    ref = reference.reshape(len(reference), -1)
    return ref.shape[1] > 1 and bool((ref >= -1e-6).all()) and bool(np.allclose(ref.sum(1), 1.0, atol=1e-3))


def check(parity: dict[str, Any], quant: str, *, classifier: bool, min_agreement: float | None = None) -> list[str]:
    """Reasons the parity fails its thresholds (empty when it passes)."""
    if not parity.get("finite", True):
        return ["outputs contain NaN or inf"]
    limits = dict(THRESHOLDS.get(quant, THRESHOLDS["int8"]))
    if min_agreement is not None:
        limits["top1_agreement"] = min_agreement
    problems = []
    if classifier and parity["top1_agreement"] < limits["top1_agreement"]:
        problems.append(f"top-1 agreement {parity['top1_agreement']:.3f} < {limits['top1_agreement']}")
    if parity["cosine"] < limits["cosine"]:
        problems.append(f"cosine {parity['cosine']:.4f} < {limits['cosine']}")
    return problems
