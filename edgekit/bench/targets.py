"""What ``edgekit bench`` runs: artifact files, export folders (their manifest) and source models.

Example:
    >>> targets = resolve_targets(["runs/demo/export"])   # doctest: +SKIP
    >>> [(t.format, t.quant) for t in targets]           # doctest: +SKIP
    [('tflite', 'fp32'), ('tflite', 'fp16'), ('tflite', 'dynamic'), ('tflite', 'int8')]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifact import MANIFEST_NAME, Manifest
from edgekit.errors import InputError
from edgekit.files import path_size, sha256_path
from edgekit.run_record import MODEL_NAME, RunRecord, is_run_dir
from edgekit.runtimes import RUNTIMES, SUFFIXES, format_of_path, runtimes_for_format
from edgekit.tfjs_model import MODEL_JSON

SOURCE_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class BenchTarget:
    path: Path
    format: str
    quant: str
    runtime: str
    source: str | None = None  # the source model this artifact was exported from, if known
    run: dict[str, Any] | None = None  # labels / preprocessing / data of the run, if known
    inputs: list[dict] | None = None  # every input: [{name, shape without the batch axis, dtype}]; None: read from the file
    is_reference: bool = False
    size_bytes: int = 0
    macs: int | None = None  # from the export manifest, when known
    layers: dict[str, Any] | None = None  # the source's Keras layer names and framework (per-operator profiles)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def input_shape(self) -> list | None:
        """The first input's shape (what baselines made before every input was recorded compare)."""
        return list(self.inputs[0]["shape"]) if self.inputs else None


def resolve_targets(args: list[str], runtimes: list[str] | None = None, *, expand: bool = True) -> list[BenchTarget]:
    """Turn ARTIFACT arguments into targets, one per (artifact, runtime); raise InputError naming
    the first bad one. ``runtimes`` limits the runtimes (default: each format's defaults).
    With ``expand=False``, one target per artifact (the plan for device profiles picks runtimes)."""
    targets = _resolve(args)
    if not expand:
        return targets
    out: list[BenchTarget] = []
    for t in targets:
        if t.is_reference:
            out.append(t)
            continue
        for rt in runtimes_for_format(t.format, runtimes):
            out.append(dataclasses.replace(t, runtime=rt, notes=list(t.notes)))
    if runtimes and not any(not t.is_reference for t in out):
        raise InputError(f"None of the artifacts runs on {', '.join(runtimes)}", hint=runtime_hint(targets))
    return out


def runtime_hint(targets: list[BenchTarget]) -> str:
    """``tfjs runs on tfjs-node, tfjs-browser, ...`` for the formats of ``targets``."""
    formats = sorted({t.format for t in targets if not t.is_reference})
    return "; ".join(f"{f} runs on {', '.join(r for r, spec in RUNTIMES.items() if f in spec[2])}" for f in formats)


def _resolve(args: list[str]) -> list[BenchTarget]:
    if not args:
        raise InputError("No artifacts given", hint="pass .tflite/.onnx files, TF.js model folders, an export folder, or a model")
    targets: list[BenchTarget] = []
    for arg in args:
        path = Path(arg)
        if not path.exists():
            raise InputError(f"{arg} does not exist", hint="pass .tflite files, an export folder with manifest.json, or a model")
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            targets += _from_manifest(path)
        elif is_run_dir(path) or (path.is_dir() and (path / "saved_model.pb").is_file()) or path.suffix.lower() in SOURCE_SUFFIXES:
            targets.append(source_target(path))
        elif format_of_path(path):
            targets.append(_from_file(path.parent if path.is_file() and path.name == MODEL_JSON else path))
        elif path.is_dir():
            raise InputError(f"Folder {arg} has no manifest.json and is no model", hint="pass the folder `edgekit export` wrote, or the files in it")
        else:
            raise InputError(
                f"{arg} is not an artifact edgekit can run",
                hint=f"expected {', '.join(SUFFIXES)} files, a TF.js model folder, an export folder, or a .keras/.h5/SavedModel/run folder",
            )
    return targets


def source_target(path: Path) -> BenchTarget:
    run = None
    if is_run_dir(path):
        rec = RunRecord.load(path)
        run = {"labels": rec.labels, "preprocessing": rec.preprocessing, "data": rec.data, "input_shape": rec.input_shape,
               "task": rec.task}
        size = (path / MODEL_NAME).stat().st_size if (path / MODEL_NAME).is_file() else 0
    else:
        size = path_size(path)
    inputs = [{"name": "input", "shape": list(run["input_shape"]), "dtype": "float32"}] if run else None
    return BenchTarget(path, "keras", "fp32", "keras", source=str(Path(path).resolve()), run=run, is_reference=True,
                       size_bytes=size, inputs=inputs)


def manifest_inputs(manifest: Manifest) -> list[dict] | None:
    """The source model's inputs a manifest records (version 2: its IO spec; version 1: the source's)."""
    inputs = (manifest.io or {}).get("inputs")
    if inputs:
        return [{"name": t["name"], "shape": list(t["shape"]), "dtype": t.get("dtype", "float32")} for t in inputs]
    shape = manifest.source.get("input_shape")
    return [{"name": "input", "shape": list(shape), "dtype": manifest.source.get("input_dtype", "float32")}] \
        if shape is not None else None


def source_path(manifest: Manifest, folder: Path) -> str | None:
    """Where the manifest's source model is now: beside the export folder as it was (the export
    folder may have moved with its run), else the path recorded at export time. A detector whose NMS the
    export set (``--nms on``, ``--score``...) is the Keras model as exported, saved beside its artifacts."""
    as_exported = manifest.source.get("as_exported")
    if as_exported and (folder / as_exported).is_file():
        return str((folder / as_exported).resolve())
    rel = manifest.source.get("path_from_manifest")
    if rel and (folder / rel).exists():
        return str((folder / rel).resolve())
    path = manifest.source.get("path")
    return str(Path(path).resolve()) if path and Path(path).exists() else path


def _from_manifest(folder: Path) -> list[BenchTarget]:
    manifest = Manifest.load(folder)
    out = []
    for art in manifest.artifacts:
        if not art.ok:
            continue
        path = folder / art.path
        if not path.exists():
            raise InputError(f"{folder / MANIFEST_NAME} lists {art.path}, which is missing", hint="re-run `edgekit export`")
        if art.sha256 and sha256_path(path) != art.sha256:
            raise InputError(f"{path} changed since it was exported (sha256 differs from the manifest)", hint="re-run `edgekit export`")
        out.append(BenchTarget(
            path, art.format, art.quant, runtimes_for_format(art.format)[0], source=source_path(manifest, folder),
            run=manifest.run, inputs=manifest_inputs(manifest), size_bytes=path_size(path),
            macs=manifest.source.get("macs"), layers=_layers(manifest),
        ))
    if not out:
        raise InputError(f"{folder / MANIFEST_NAME} lists no artifact that exported successfully")
    return out


def _from_file(path: Path) -> BenchTarget:
    fmt = format_of_path(path)
    manifest_dir = path.parent
    if (manifest_dir / MANIFEST_NAME).is_file():
        try:
            m = Manifest.load(manifest_dir)
            for art in m.artifacts:
                if art.path == path.name and art.ok:
                    return BenchTarget(path, art.format, art.quant, runtimes_for_format(fmt)[0], source=source_path(m, manifest_dir),
                                       run=m.run, inputs=manifest_inputs(m), size_bytes=path_size(path),
                                       macs=m.source.get("macs"), layers=_layers(m))
        except InputError:
            pass
    return BenchTarget(path, fmt, "?", runtimes_for_format(fmt)[0], size_bytes=path_size(path))


def _layers(manifest: Manifest) -> dict[str, Any] | None:
    names = manifest.source.get("layers")
    return {"names": names, "retraced": manifest.source.get("framework") == "keras3"} if names else None
