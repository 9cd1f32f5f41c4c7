"""Artifact and manifest: what an exported file is, how it was made, and how well it matches.

``export`` writes ``manifest.json`` in its out folder, one entry per artifact. A manifest
only ever lists files that were written whole (they are moved into place atomically).

Version 2 carries the model's IO spec: ``io`` (every input and output of the source by name,
shape and dtype, and each output's kind: probabilities, scores or values) and, per artifact, its
own ``io`` (each tensor's name in the file, dtype at its boundary, int8 scale and zero point).
Version 1 manifests are read too: their spec comes from ``source`` and ``details.io``.

Example:
    >>> a = Artifact(format="tflite", quant="int8", path="model_int8.tflite")
    >>> a.ok
    True
    >>> Artifact.from_dict(a.to_dict()).quant
    'int8'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import InputError
from edgekit.files import atomic_write_json, read_json

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2


@dataclass
class Artifact:
    format: str
    quant: str
    path: str  # relative to the manifest's folder
    status: str = "ok"  # ok | export_failed | validation_failed
    error: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    seconds: float | None = None
    parity: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)  # format-specific: dtypes, ops, the int8 search, ...
    io: dict[str, Any] | None = None  # {"inputs": [...], "outputs": [...]}: runtimes.binding.BoundTensor records

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Artifact:
        known = set(cls.__dataclass_fields__)
        a = cls(**{k: v for k, v in d.items() if k in known})
        if a.io is None and isinstance((a.details or {}).get("io"), dict):  # a version 1 manifest
            a.details = dict(a.details)
            a.io = a.details.pop("io")
        return a


@dataclass
class Manifest:
    source: dict[str, Any]
    artifacts: list[Artifact]
    run: dict[str, Any] | None = None  # labels, preprocessing, data spec of the run, if any
    versions: dict[str, str] = field(default_factory=dict)
    io: dict[str, Any] | None = None  # the source model's inputs and outputs (outputs with their kind)

    def __post_init__(self) -> None:
        if self.io is None and self.source.get("inputs"):  # a version 1 manifest: the source's spec, no kinds
            self.io = {"inputs": self.source["inputs"], "outputs": self.source.get("outputs") or []}

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "io": self.io,
            "source": self.source,
            "run": self.run,
            "versions": self.versions,
            "artifacts": [a.to_dict() for a in self.artifacts],
        }

    def save(self, folder: Path) -> Path:
        return atomic_write_json(Path(folder) / MANIFEST_NAME, self.to_dict())

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        where = Path(folder) / MANIFEST_NAME
        d = read_json(where, what="Manifest")
        bad = _manifest_problem(d)
        if bad:
            raise InputError(f"{where} is not an edgekit manifest: {bad}", hint="re-run `edgekit export`")
        return cls(
            source=d.get("source") or {},
            artifacts=[Artifact.from_dict(a) for a in d["artifacts"]],
            run=d.get("run"),
            versions=d.get("versions") or {},
            io=d.get("io"),
        )

    def merge(self, newer: Manifest) -> Manifest:
        """Entries of ``newer`` replace those with the same path; others are kept if still whole."""
        paths = {a.path for a in newer.artifacts}
        kept = [a for a in self.artifacts if a.path not in paths]
        return Manifest(newer.source, kept + newer.artifacts, newer.run, newer.versions, newer.io)


def _manifest_problem(d: Any) -> str | None:
    """What is wrong with a manifest read from disk (it may come from anywhere), or None."""
    if not isinstance(d, dict) or not isinstance(d.get("artifacts"), list):
        return "no 'artifacts' list"
    for key, kind in (("source", dict), ("run", dict), ("versions", dict), ("io", dict)):
        if d.get(key) is not None and not isinstance(d[key], kind):
            return f"'{key}' should be a mapping"
    for i, a in enumerate(d["artifacts"]):
        if not isinstance(a, dict):
            return f"artifact {i} is not a mapping"
        for key in ("format", "quant", "path"):
            if not isinstance(a.get(key), str):
                return f"artifact {i} has no '{key}' string"
        p = Path(a["path"])
        if p.is_absolute() or ".." in p.parts:
            return f"artifact {i} path '{a['path']}' leaves the manifest's folder"
        for key in ("parity", "details", "io"):
            if a.get(key) is not None and not isinstance(a[key], dict):
                return f"artifact {i} '{key}' should be a mapping"
    return None
