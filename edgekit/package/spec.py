"""What travels with a packaged model: labels, preprocessing, the input and output spec, samples.

Read from the export folder's ``manifest.json`` (which carries the run's ``edgekit.json``), so
a deployed model gets exactly the preprocessing it was trained with. ``model_card.json`` in
every package holds this spec; ``samples.json`` holds a few raw test samples with labels, for
the web page and for checking a deployment.

Example:
    >>> spec = package_spec(Path("runs/demo/export/model_int8.tflite"))   # doctest: +SKIP
    >>> spec["labels"][:3], spec["preprocessing"]["scale"]               # doctest: +SKIP
    (['0', '1', '2'], 0.0625)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import edgekit
from edgekit.artifact import MANIFEST_NAME, Manifest
from edgekit.errors import InputError

SAMPLES = 8


def package_spec(artifact: Path, labels_file: Path | None = None) -> dict[str, Any]:
    """The model card of ``artifact``: from its export manifest, or ``--labels`` for a bare file."""
    folder = artifact.parent
    manifest = Manifest.load(folder) if (folder / MANIFEST_NAME).is_file() else None
    art = next((a for a in manifest.artifacts if a.path == artifact.name), None) if manifest else None
    ins, outs = (manifest.source.get("inputs") or [], manifest.source.get("outputs") or []) if manifest else ([], [])
    if len(ins) > 1 or len(outs) > 1:
        raise InputError(
            f"{artifact.name} has {len(ins)} inputs and {len(outs)} outputs; edgekit package builds apps for models with one "
            "input and one output for now",
            hint="deploy the artifact itself: its manifest's details.io names every input and output")
    run = (manifest.run if manifest else None) or {}
    labels = run.get("labels")
    if labels_file is not None:
        if not labels_file.is_file():
            raise InputError(f"Label file {labels_file} does not exist", hint="pass a text file with one label per line")
        labels = [ln.strip() for ln in labels_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not labels:
            raise InputError(f"Label file {labels_file} is empty", hint="one label per line, in output order")
    if not labels:
        raise InputError(f"No labels for {artifact.name}: it has no export manifest with a training run",
                         hint="pass --labels FILE (one label per line, in output order), or package an export of a run")
    source = manifest.source if manifest else {}
    data = run.get("data") or {}
    return {
        "edgekit_version": edgekit.__version__,
        "artifact": artifact.name,
        "format": art.format if art else None,
        "quant": art.quant if art else None,
        "sha256": art.sha256 if art else None,
        "task": run.get("task", "classification"),
        "labels": labels,
        "input": {"shape": [None, *(run.get("input_shape") or source.get("input_shape") or [])], "dtype": "float32",
                  "raw_max": 16.0 if data.get("spec") == "builtin:digits" else 255.0},
        "output": {"shape": [None, len(labels)], "dtype": "float32", "meaning": "class scores, in label order"},
        "preprocessing": run.get("preprocessing") or {"formula": "((x * scale + offset) - mean) / std", "scale": 1.0,
                                                     "offset": 0.0, "mean": None, "std": None},
        "parity": art.parity if art else None,
        "data": data.get("spec"),
        # A fused LSTM's state persists between invocations: reset it before each independent input.
        "stateful": bool(art and "state" in (art.details or {})),
    }


def raw_samples(spec: dict[str, Any], n: int = SAMPLES) -> dict[str, Any] | None:
    """A few raw test samples (before preprocessing) with their labels, or None without data."""
    if not spec.get("data"):
        return None
    from edgekit.data import load_data

    size = (spec["preprocessing"] or {}).get("image_size")
    ds = load_data(spec["data"], image_size=size[0] if size else None)
    idx = list(range(min(n, len(ds.x_test))))
    if ds.has_labels:  # one sample of each class first, so the samples show the model's range
        first: dict[int, int] = {}
        for i, label in enumerate(ds.y_test):
            first.setdefault(int(label), i)
        idx = (sorted(first.values()) + [i for i in range(len(ds.x_test)) if i not in first.values()])[:n]
    x = np.asarray(ds.x_test[idx], dtype=np.float32)
    y = ds.y_test[idx] if ds.has_labels else [None] * len(x)
    return {"shape": list(x.shape[1:]), "samples": [{"raw": xi.reshape(-1).round(4).tolist(),
                                                      "label": None if yi is None else spec["labels"][int(yi)]}
                                                     for xi, yi in zip(x, y, strict=True)]}
