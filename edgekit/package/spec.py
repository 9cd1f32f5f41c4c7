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
from edgekit.generated_inputs import is_integer

SAMPLES = 8


def package_spec(artifact: Path, labels_file: Path | None = None) -> dict[str, Any]:
    """The model card of ``artifact``: from its export manifest, or ``--labels`` for a bare file.

    Every card lists ``inputs`` and ``outputs`` by source name with the artifact's own tensor name
    (what an app binds), shape, dtype and int8 scale/zero point. A single-input, single-output
    card also keeps ``input``, ``output`` and ``labels`` at the top, as the app snippets read them.
    """
    folder = artifact.parent
    manifest = Manifest.load(folder) if (folder / MANIFEST_NAME).is_file() else None
    art = next((a for a in manifest.artifacts if a.path == artifact.name), None) if manifest else None
    run = (manifest.run if manifest else None) or {}
    source = manifest.source if manifest else {}
    inputs, outputs = _io(artifact, art, source, manifest.io if manifest else None)
    labels = run.get("labels")
    if labels_file is not None:
        labels = _read_labels(labels_file)
    if not labels and all(o["kind"] == "probabilities" for o in outputs):
        raise InputError(f"No labels for {artifact.name}: it has no export manifest with a training run",
                         hint="pass --labels FILE (one label per line, in output order), or package an export of a run")
    data = run.get("data") or {}
    preprocessing = run.get("preprocessing") or {"formula": "((x * scale + offset) - mean) / std", "scale": 1.0,
                                                 "offset": 0.0, "mean": None, "std": None}
    raw_max = 16.0 if data.get("spec") == "builtin:digits" else 255.0
    for t in inputs:  # what an app does to a raw value before feeding it (a run's model has one input)
        t["preprocessing"] = preprocessing
        if not is_integer(t["dtype"]) and len(t["shape"]) in (3, 4):  # an image: the raw range of its pixels
            t["raw_max"] = raw_max
    task = run.get("task", "classification")
    if labels and task == "detection" and any(o["name"] == "classes" for o in outputs):
        next(o for o in outputs if o["name"] == "classes")["labels"] = labels  # class ids index the labels
    elif labels:
        _attach_labels(labels, outputs, labels_file)
    first_in, first_out = inputs[0], outputs[0]
    return {
        "edgekit_version": edgekit.__version__,
        "artifact": artifact.name,
        "format": art.format if art else None,
        "quant": art.quant if art else None,
        "sha256": art.sha256 if art else None,
        "task": task,
        # a detector: boxes [x0, y0, x1, y1] in 0..1, scores, classes (ids into labels), count; the NMS inside
        **({"nms": source["nms"]} if source.get("nms") else {}),
        "labels": labels or None,
        "inputs": inputs,
        "outputs": outputs,
        "parity": art.parity if art else None,
        "data": data.get("spec"),
        # A fused LSTM's state persists between invocations: reset it before each independent input.
        "stateful": bool(art and "state" in (art.details or {})),
        # tensor 0 in and out, what the phone snippets bind (every tensor is in inputs and outputs)
        "input": {"shape": [None, *first_in["shape"][1:]], "dtype": "float32", "raw_max": first_in.get("raw_max", raw_max)},
        "output": {"shape": first_out["shape"], "dtype": "float32", "kind": first_out["kind"]},
        "preprocessing": preprocessing,
    }


def _read_labels(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"Label file {path} does not exist", hint="pass a text file with one label per line")
    labels = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not labels:
        raise InputError(f"Label file {path} is empty", hint="one label per line, in output order")
    return labels


def _attach_labels(labels: list[str], outputs: list[dict], labels_file: Path | None) -> None:
    """Labels name the classes of the first class-score output as wide as the label list."""
    width = len(labels)
    fits = [o for o in outputs if (o["shape"] or [None])[-1] in (width, None) and o["kind"] != "values"]
    if not fits and len(outputs) == 1:
        fits = outputs
    if not fits:
        shapes = ", ".join(f"{o['name']} {o['shape'][1:]}" for o in outputs)
        raise InputError(f"{labels_file or 'The run'} has {width} labels, and no output of the model has {width} "
                         f"class scores ({shapes})", hint="pass --labels with one label per class of one output")
    fits[0]["labels"] = labels


def _io(artifact: Path, art, source: dict, model_io: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Each input and output: source name, artifact name, shape (batch first), dtype, int8 params, kind
    (as the manifest's IO spec measured it; older manifests: the parity record's, else a guess)."""
    io = art.io if art else None
    if not io and artifact.suffix == ".tflite":  # a bare file: read it
        from edgekit.files import captured_stderr_fd
        from edgekit.runtimes.litert import LiteRTSession

        with captured_stderr_fd():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" line
            io = LiteRTSession(str(artifact)).describe()["io"]
    if not io and artifact.suffix == ".onnx":
        from edgekit.runtimes.onnxruntime import ONNXSession

        io = ONNXSession(str(artifact)).describe()["io"]
    if not io:  # a TF.js folder without a manifest: the source's spec
        io = {"inputs": [{"name": "input", "shape": [None, *(source.get("input_shape") or [])], "dtype": "float32"}],
              "outputs": [{"name": "output", "shape": [None, *(source.get("output_shape") or [None])],
                           "dtype": "float32"}]}
    parity = ((art.parity or {}).get("outputs") or {}) if art else {}
    source_in = {s["name"]: s for s in source.get("inputs") or []}
    source_out = {s["name"]: s for s in source.get("outputs") or []}

    def entry(t: dict, kind: str | None = None) -> dict:
        shape = t["shape"] or [None, *(source_in if kind is None else source_out).get(t["name"], {}).get("shape", [])]
        e = {"name": t["name"], "artifact_name": t.get("artifact_name", t["name"]),
             "shape": [d if isinstance(d, int) and d > 0 else None for d in shape],
             "dtype": source_in.get(t["name"], {}).get("dtype", t["dtype"]) if kind is None else "float32",
             "artifact_dtype": t["dtype"]}
        if t.get("quantization"):
            e["quantization"] = t["quantization"]
        if kind is not None:
            e["kind"] = kind
        return e

    single = len(io["outputs"]) == 1
    measured = {t["name"]: t.get("kind") for t in (model_io or {}).get("outputs") or []}
    if single and len(measured) == 1:  # one output: the file may name it otherwise than the source
        measured = {io["outputs"][0]["name"]: next(iter(measured.values()))}
    outputs = [entry(t, measured.get(t["name"]) or (parity.get(t["name"]) or {}).get("kind")
                     or ("probabilities" if single else "values")) for t in io["outputs"]]
    return [entry(t) for t in io["inputs"]], outputs


def raw_samples(spec: dict[str, Any], n: int = SAMPLES, data: Path | None = None) -> dict[str, Any] | None:
    """A few raw test samples (before preprocessing) with their labels, or None without data:
    ``{"inputs": {name: shape}, "samples": [{"inputs": {name: flat values}, "labels": {output: label}}]}``.

    The samples come from ``data`` (an ``.npz`` keyed by input names, as for export and bench: its
    test split, with ``y`` / ``y_<output>`` labels where present), else from the run's own data.
    """
    if data is not None:
        from edgekit.data.sources.npz import load_named_npz
        from edgekit.io_spec import TensorSpec

        specs = [TensorSpec(i["name"], tuple(i["shape"][1:]), i["dtype"]) for i in spec["inputs"]]
        _, test, labels = load_named_npz(data, specs)
        order = list(range(min(n, len(next(iter(test.values()))))))
    elif spec.get("data"):
        from edgekit.data import load_data

        size = (spec["preprocessing"] or {}).get("image_size")
        ds = load_data(spec["data"], image_size=size[0] if size else None)
        test = {spec["inputs"][0]["name"]: np.asarray(ds.x_test, dtype=np.float32)}
        labels = {"y": ds.y_test} if ds.has_labels else {}
        order = list(range(min(n, len(ds.x_test))))
        if ds.task == "detection":  # the boxes each scene holds: the page and run.py draw them beside the model's
            return _detection_samples(spec, test, ds.y_test, order)
        if ds.has_labels:  # one sample of each class first, so the samples show the model's range
            first: dict[int, int] = {}
            for i, label in enumerate(ds.y_test):
                first.setdefault(int(label), i)
            order = (sorted(first.values()) + [i for i in range(len(ds.x_test)) if i not in first.values()])[:n]
    else:
        return None
    by_output = {o["name"]: o for o in spec["outputs"]}
    samples = []
    for r in order:
        tagged = {}
        for key, y in labels.items():
            name = key[2:] if key.startswith("y_") else spec["outputs"][0]["name"]
            names = (by_output.get(name) or {}).get("labels")
            tagged[name] = names[int(y[r])] if names and np.ndim(y[r]) == 0 else _plain(y[r], 4)
        samples.append({"inputs": {k: _plain(np.asarray(v[r]).reshape(-1), 6) for k, v in test.items()},
                        "labels": tagged})
    return {"inputs": {k: list(v.shape[1:]) for k, v in test.items()}, "samples": samples}


def _detection_samples(spec: dict, test: dict, boxes: np.ndarray, order: list[int]) -> dict[str, Any]:
    from edgekit.detection.boxes import unpad

    names = spec.get("labels") or []
    samples = []
    for r in order:
        truth = [(names[int(row[0])] if int(row[0]) < len(names) else str(int(row[0])), row[1:]) for row in unpad(boxes[r])]
        samples.append({"inputs": {k: _plain(np.asarray(v[r]).reshape(-1), 6) for k, v in test.items()},
                        "labels": {"objects": [label for label, _ in truth]},
                        "boxes": [{"label": label, "box": _plain(box, 4)} for label, box in truth]})
    return {"inputs": {k: list(v.shape[1:]) for k, v in test.items()}, "samples": samples}


def _plain(value, decimals: int):
    """JSON-ready numbers: integers as they are, floats rounded (in float64, so 3.3759 stays 3.3759)."""
    a = np.asarray(value)
    return a.tolist() if np.issubdtype(a.dtype, np.integer) else a.astype(np.float64).round(decimals).tolist()
