"""RUN_DIR/edgekit.json: what ``edgekit train`` made and how, read back by export and bench.

Example:
    >>> rec = RunRecord(input_shape=[8, 8, 1], labels=["0", "1"])
    >>> RunRecord.from_dict(rec.to_dict()).input_shape
    [8, 8, 1]
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.data.preprocessing import Preprocessing
from edgekit.files import atomic_write_json, read_json

RECORD_NAME = "edgekit.json"
MODEL_NAME = "model.keras"
CUSTOM_CODE_NAME = "model_def.py"


@dataclass
class RunRecord:
    input_shape: list[int]
    labels: list[str]
    input_dtype: str = "float32"
    recipe: str = ""
    task: str = "classification"
    preprocessing: dict[str, Any] = field(default_factory=lambda: Preprocessing().to_dict())
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    custom_code: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def prep(self) -> Preprocessing:
        return Preprocessing.from_dict(self.preprocessing)

    def to_dict(self) -> dict[str, Any]:
        return {"model": MODEL_NAME, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self, run_dir: Path) -> Path:
        return atomic_write_json(Path(run_dir) / RECORD_NAME, self.to_dict())

    @classmethod
    def load(cls, run_dir: Path) -> RunRecord:
        return cls.from_dict(read_json(Path(run_dir) / RECORD_NAME, what="Run record"))


def is_run_dir(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / RECORD_NAME).is_file()


def tool_versions(*modules: str) -> dict[str, str]:
    """Versions of edgekit, Python and the named packages that are importable."""
    from importlib import metadata

    import edgekit

    out = {"edgekit": edgekit.__version__, "python": platform.python_version()}
    for m in modules:
        try:
            out[m] = metadata.version(m)
        except metadata.PackageNotFoundError:
            pass
    return out
