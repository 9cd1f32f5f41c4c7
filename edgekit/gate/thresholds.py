"""The thresholds ``edgekit check`` applies: defaults, then the user's committed file.

Read from ``edgekit.yaml`` (key ``check``) or ``pyproject.toml`` (table ``[tool.edgekit.check]``)
in the current folder, or from ``--config FILE``. A bad key is named, with the closest valid one.

Example (edgekit.yaml):
    check:
      max_accuracy_drop: 1.0               # points below the float source model
      max_latency_increase_pct: 15
      overrides:
        - match: {format: tflite, quant: int8}
          max_accuracy_drop: 2.0

    >>> t = Thresholds.from_dict({"max_size_increase_pct": 10}, "edgekit.yaml")
    >>> t.for_row({"format": "tflite", "quant": "int8"})["max_size_increase_pct"]
    10
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import InputError, suggest

DEFAULTS: dict[str, float] = {
    "max_accuracy_drop": 1.0,  # points, against the float source model in the same report
    "max_accuracy_drop_vs_baseline": 0.5,  # points, against the baseline's same row
    "max_latency_increase_pct": 15.0,  # p50 against the baseline, widened by the noise both recorded
    "noise_sigmas": 3.0,  # how many combined coefficients of variation the latency tolerance covers
    "max_size_increase_pct": 5.0,
    "min_agreement": None,  # top-1 agreement with the source; None: edgekit's per-quant parity thresholds
}
MATCH_KEYS = ("format", "quant", "runtime", "profile")


@dataclass
class Thresholds:
    values: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    overrides: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    source: str = "defaults"

    @classmethod
    def from_dict(cls, d: Any, origin: str) -> Thresholds:
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise InputError(f"{origin}: 'check' must be a mapping of threshold names to values")
        values = dict(DEFAULTS)
        for k, v in d.items():
            if k == "overrides":
                continue
            values[k] = _value(k, v, origin, "")
        overrides = []
        for i, o in enumerate(d.get("overrides") or []):
            where = f"overrides[{i}]."
            if not isinstance(o, dict) or not isinstance(o.get("match"), dict):
                raise InputError(f"{origin}: '{where[:-1]}' needs a 'match' mapping, e.g. match: {{format: tflite, quant: int8}}")
            for mk in o["match"]:
                if mk not in MATCH_KEYS:
                    raise InputError(f"{origin}: unknown key '{where}match.{mk}'.{suggest(str(mk), MATCH_KEYS)} "
                                     f"(match on: {', '.join(MATCH_KEYS)})")
            overrides.append(({k: str(v) for k, v in o["match"].items()},
                              {k: _value(k, v, origin, where) for k, v in o.items() if k != "match"}))
        return cls(values, overrides, origin)

    def for_row(self, row: dict[str, Any]) -> dict[str, Any]:
        out = dict(self.values)
        for match, vals in self.overrides:
            if all(str(row.get(k)) == v for k, v in match.items()):
                out.update(vals)
        return out


def _value(k: str, v: Any, origin: str, where: str) -> Any:
    if k not in DEFAULTS:
        raise InputError(f"{origin}: unknown key '{where}{k}'.{suggest(str(k), list(DEFAULTS) + ['overrides'])} "
                         f"(valid keys: {', '.join(DEFAULTS)}, overrides)")
    if v is None and k == "min_agreement":
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{origin}: '{where}{k}' must be a number, got {v!r}")
    if v < 0:
        raise InputError(f"{origin}: '{where}{k}' must be >= 0, got {v}")
    return v


def load_thresholds(config: str | Path | None = None, cwd: Path | None = None) -> Thresholds:
    """``--config FILE``, else ./edgekit.yaml, else [tool.edgekit.check] in ./pyproject.toml, else the defaults."""
    cwd = cwd or Path.cwd()
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise InputError(f"Threshold file {path} does not exist", hint="pass an edgekit.yaml or pyproject.toml")
        return _from_file(path)
    for name in ("edgekit.yaml", "edgekit.yml", "pyproject.toml"):
        if (cwd / name).is_file():
            t = _from_file(cwd / name)
            if t is not None:
                return t
    return Thresholds()


def _from_file(path: Path) -> Thresholds | None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        import tomllib

        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{path} is not valid TOML: {e}") from None
        section = doc.get("tool", {}).get("edgekit")
        if section is None:
            return None if path.name == "pyproject.toml" else Thresholds()
        if not isinstance(section, dict):
            raise InputError(f"{path}: [tool.edgekit] must be a table")
        _only(section, ("check",), f"{path}: [tool.edgekit]")
        return Thresholds.from_dict(section.get("check"), f"{path} [tool.edgekit.check]")
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"{path} is not valid YAML{f' at line {mark.line + 1}' if mark else ''}: {getattr(e, 'problem', e)}") from None
    if doc is None:
        return Thresholds(source=str(path))
    if not isinstance(doc, dict):
        raise InputError(f"{path} must be a mapping with a 'check' key")
    _only(doc, ("check",), str(path))
    return Thresholds.from_dict(doc.get("check"), str(path))


def _only(d: dict, keys: tuple[str, ...], where: str) -> None:
    for k in d:
        if k not in keys:
            raise InputError(f"{where}: unknown key '{k}'.{suggest(str(k), keys)} (valid keys: {', '.join(keys)})")
