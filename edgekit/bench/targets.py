"""What ``edgekit bench`` runs: artifact files, export folders (their manifest) and source models.

Example:
    >>> targets = resolve_targets(["runs/demo/export"])   # doctest: +SKIP
    >>> [(t.format, t.quant) for t in targets]           # doctest: +SKIP
    [('tflite', 'fp32'), ('tflite', 'fp16'), ('tflite', 'dynamic'), ('tflite', 'int8')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifact import MANIFEST_NAME, Manifest
from edgekit.errors import InputError
from edgekit.files import sha256_path
from edgekit.run_record import MODEL_NAME, RunRecord, is_run_dir
from edgekit.runtimes import SUFFIXES, format_of_path, runtime_for_format

SOURCE_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class BenchTarget:
    path: Path
    format: str
    quant: str
    runtime: str
    source: str | None = None  # the source model this artifact was exported from, if known
    run: dict[str, Any] | None = None  # labels / preprocessing / data of the run, if known
    input_shape: list | None = None
    is_reference: bool = False
    size_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def resolve_targets(args: list[str]) -> list[BenchTarget]:
    """Turn ARTIFACT arguments into targets; raise InputError naming the first bad one."""
    if not args:
        raise InputError("No artifacts given", hint="pass .tflite files, an export folder, or a model")
    targets: list[BenchTarget] = []
    for arg in args:
        path = Path(arg)
        if not path.exists():
            raise InputError(f"{arg} does not exist", hint="pass .tflite files, an export folder with manifest.json, or a model")
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            targets += _from_manifest(path)
        elif is_run_dir(path) or (path.is_dir() and (path / "saved_model.pb").is_file()) or path.suffix.lower() in SOURCE_SUFFIXES:
            targets.append(source_target(path))
        elif path.is_file() and format_of_path(path):
            targets.append(_from_file(path))
        elif path.is_dir():
            raise InputError(f"Folder {arg} has no manifest.json and is no model", hint="pass the folder `edgekit export` wrote, or the files in it")
        else:
            raise InputError(
                f"{arg} is not an artifact edgekit can run",
                hint=f"expected {', '.join(SUFFIXES)} files, an export folder, or a .keras/.h5/SavedModel/run folder",
            )
    return targets


def source_target(path: Path) -> BenchTarget:
    run = None
    if is_run_dir(path):
        rec = RunRecord.load(path)
        run = {"labels": rec.labels, "preprocessing": rec.preprocessing, "data": rec.data, "input_shape": rec.input_shape}
        size = (path / MODEL_NAME).stat().st_size if (path / MODEL_NAME).is_file() else 0
    else:
        size = _size(path)
    return BenchTarget(path, "keras", "fp32", "keras", source=str(path), run=run, is_reference=True,
                       size_bytes=size, input_shape=run["input_shape"] if run else None)


def _from_manifest(folder: Path) -> list[BenchTarget]:
    manifest = Manifest.load(folder)
    out = []
    for art in manifest.artifacts:
        if not art.ok:
            continue
        path = folder / art.path
        if not path.is_file():
            raise InputError(f"{folder / MANIFEST_NAME} lists {art.path}, which is missing", hint="re-run `edgekit export`")
        if art.sha256 and sha256_path(path) != art.sha256:
            raise InputError(f"{path} changed since it was exported (sha256 differs from the manifest)", hint="re-run `edgekit export`")
        out.append(BenchTarget(
            path, art.format, art.quant, runtime_for_format(art.format), source=manifest.source.get("path"),
            run=manifest.run, input_shape=manifest.source.get("input_shape"), size_bytes=path.stat().st_size,
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
                    return BenchTarget(path, art.format, art.quant, runtime_for_format(fmt), source=m.source.get("path"),
                                       run=m.run, input_shape=m.source.get("input_shape"), size_bytes=path.stat().st_size)
        except InputError:
            pass
    return BenchTarget(path, fmt, "?", runtime_for_format(fmt), size_bytes=path.stat().st_size)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
