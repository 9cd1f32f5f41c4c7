"""Judging an exported file against its source: the parity case every candidate is held to, and
the validation of one artifact (size, hash, parity in its own runtime).

Example:
    >>> case = ParityCase(inputs=x, reference=source.predict(x), labels=y, classifier=True)  # doctest: +SKIP
    >>> validate(art, staging / art.path, "int8", case).status                              # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import status
from edgekit.artifact import Artifact
from edgekit.files import path_size, sha256_path
from edgekit.parity import check as check_parity
from edgekit.parity import compare, points_lost
from edgekit.runtimes import runtime_for_format
from edgekit.runtimes.isolated import run_isolated


@dataclass
class ParityCase:
    """The held-out ``inputs``, the source's ``reference`` outputs on them, their ``labels`` (or None),
    whether the source is a ``classifier``, and the ``min_agreement`` asked for (None: the quant's own)."""

    inputs: Any
    reference: Any
    labels: np.ndarray | None = None
    classifier: bool = False
    min_agreement: float | None = None

    def check(self, parity: dict, quant: str) -> list[str]:
        """Why ``parity`` (from :func:`edgekit.parity.compare`) fails ``quant``'s thresholds; empty when it passes."""
        return check_parity(parity, quant, classifier=self.classifier, min_agreement=self.min_agreement)

    def problems(self, outputs, quant: str) -> list[str]:
        """The parity checks ``outputs`` fail as a ``quant`` artifact would."""
        return self.check(compare(self.reference, outputs), quant)

    def points(self, outputs) -> tuple[float, str]:
        """Points ``outputs`` lose against the source by output kind, and the metric (:func:`edgekit.parity.points_lost`)."""
        return points_lost(self.reference, outputs, self.labels)


def validate(art: Artifact, path: Path, quant: str, case: ParityCase) -> Artifact:
    """Size, hash, and parity of the file at ``path`` run in its own runtime, judged as ``quant``."""
    art.size_bytes = path_size(path)
    art.sha256 = sha256_path(path)
    art.status, art.error = status.OK, None
    result = run_isolated(runtime_for_format(art.format), path, case.inputs, timing=None)
    if not result.ok:
        art.status, art.error = status.VALIDATION_FAILED, f"the exported file does not run: {result.error}"
        return art
    art.details["runtime"] = result.reply.get("runtime")
    float_ops = result.reply.get("artifact_info", {}).get("float_ops")
    if float_ops and quant in ("int8", "int16x8") and "fallback" not in art.details:
        art.details["float_ops"] = float_ops  # an integer model with ops that run in float: said, not hidden
    art.details.setdefault("operators", result.reply.get("artifact_info", {}).get("ops", {}))
    art.io = result.reply.get("artifact_info", {}).get("io")  # each tensor: source and artifact names, dtype, int8 params
    try:
        art.parity = compare(case.reference, result.outputs)
    except ValueError as e:  # an output missing by name
        art.status, art.error = status.VALIDATION_FAILED, f"the exported file's outputs do not match the source's: {e}"
        return art
    problems = case.check(art.parity, quant)
    if problems:
        art.status, art.error = status.VALIDATION_FAILED, "parity with the source failed: " + "; ".join(problems)
    return art
