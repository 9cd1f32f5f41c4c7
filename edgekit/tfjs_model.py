"""A TF.js graph model on disk: ``model.json`` plus weight shards, checked before any runtime sees it.

The checks are the ones a downloaded model needs: ``model.json`` parses and is a graph
model, every weight path stays inside the model's folder (``../../etc/passwd`` is refused),
and every shard is present and exactly as long as the weight specs say.

Example:
    >>> m = read_tfjs_model("runs/demo/export/model_fp32_tfjs")   # doctest: +SKIP
    >>> m.json_path.name, len(m.shards), m.weight_dtype          # doctest: +SKIP
    ('model.json', 1, 'float32')
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ModelLoadError

MODEL_JSON = "model.json"

# bytes per element of each weight dtype TF.js writes
_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint8": 1, "uint16": 2, "int8": 1, "complex64": 8}


@dataclass
class TFJSModel:
    dir: Path
    json_path: Path
    shards: list[Path]
    weight_dtype: str  # float32 | float16 | uint8 | uint16: how the weights are stored

    @property
    def size_bytes(self) -> int:
        return self.json_path.stat().st_size + sum(s.stat().st_size for s in self.shards)

    def files(self) -> list[Path]:
        return [self.json_path, *self.shards]


def is_tfjs_path(path: str | Path) -> bool:
    """A folder holding ``model.json``, or a ``model.json`` file itself."""
    p = Path(path)
    return (p.is_dir() and (p / MODEL_JSON).is_file()) or (p.is_file() and p.suffix.lower() == ".json" and p.name != "manifest.json")


def read_tfjs_model(path: str | Path) -> TFJSModel:
    """Check a TF.js graph model folder (or its model.json); raise ModelLoadError naming the problem."""
    p = Path(path)
    json_path = p / MODEL_JSON if p.is_dir() else p
    if not json_path.is_file():
        raise ModelLoadError(f"{p} has no {MODEL_JSON}", hint="pass the folder `edgekit export --format tfjs` wrote")
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{json_path} is not valid JSON ({e.__class__.__name__}: {e})") from None
    if not isinstance(doc, dict) or "modelTopology" not in doc or "weightsManifest" not in doc:
        raise ModelLoadError(f"{json_path} is not a TF.js model (no modelTopology/weightsManifest)")
    if doc.get("format") not in (None, "graph-model"):
        raise ModelLoadError(f"{json_path} is a TF.js {doc.get('format')}; edgekit runs graph models",
                             hint="convert it with `edgekit export MODEL --format tfjs`")
    folder = json_path.parent.resolve()
    shards: list[Path] = []
    expected = 0
    dtypes: set[str] = set()
    for group in _list(doc["weightsManifest"], json_path, "weightsManifest"):
        for rel in _list(group.get("paths", []), json_path, "paths"):
            full = (folder / str(rel)).resolve()
            if not full.is_relative_to(folder) or full == folder:
                raise ModelLoadError(f"{json_path} names weight file '{rel}', which lies outside the model's folder; refusing it",
                                     hint="only load TF.js models whose weights sit beside model.json")
            shards.append(full)
        for w in _list(group.get("weights", []), json_path, "weights"):
            q = w.get("quantization") or {}
            dtype = q.get("dtype") or w.get("dtype", "float32")
            if dtype not in _DTYPE_BYTES:
                raise ModelLoadError(f"{json_path}: weight '{w.get('name')}' has unknown dtype '{dtype}'")
            if w.get("dtype") == "float32":
                dtypes.add(dtype)
            expected += _DTYPE_BYTES[dtype] * math.prod(int(d) for d in w.get("shape", []))
    have = 0
    for shard in shards:
        if not shard.is_file():
            raise ModelLoadError(f"weight shard {shard.name} named in {json_path} is missing", hint="copy the whole model folder")
        have += shard.stat().st_size
    if have != expected:
        raise ModelLoadError(
            f"the weight shards of {json_path} hold {have} bytes but its weight specs need {expected}: "
            f"a shard is truncated or from another model ({', '.join(s.name for s in shards)})",
            hint="export the model again or copy the whole folder",
        )
    weight_dtype = next((d for d in ("uint8", "uint16", "float16") if d in dtypes), "float32")
    return TFJSModel(json_path.parent, json_path, shards, weight_dtype)


def _list(value, json_path: Path, key: str) -> list:
    if not isinstance(value, list):
        raise ModelLoadError(f"{json_path}: '{key}' should be a list")
    return value
