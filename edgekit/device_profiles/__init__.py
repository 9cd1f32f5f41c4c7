"""Device profiles: the devices edgekit measures for or estimates, as data files.

Built-in profiles live in ``builtin/*.yaml`` beside this file; a user's own profile is any
YAML file with the same schema (see :mod:`edgekit.device_profiles.schema`), passed by path.

Example:
    >>> [p.name for p in list_profiles()][:2]
    ['host', 'mobile-cpu']
    >>> load_profile("raspberry-pi-4").threads
    4
    >>> load_profile("raspbery-pi-4")
    Traceback (most recent call last):
    edgekit.errors.UsageError: Unknown profile 'raspbery-pi-4'. Did you mean 'raspberry-pi-4'? Profiles: host, mobile-cpu, raspberry-pi-4, raspberry-pi-5, raspberry-pi-zero-2, browser-desktop, browser-mobile (or a .yaml file of your own)
"""

from __future__ import annotations

from pathlib import Path

from edgekit.device_profiles.schema import Profile, parse_profile
from edgekit.errors import InputError, UsageError, suggest

BUILTIN_DIR = Path(__file__).parent / "builtin"
ORDER = ("host", "mobile-cpu", "raspberry-pi-4", "raspberry-pi-5", "raspberry-pi-zero-2", "browser-desktop", "browser-mobile",
         "cortex-m4f", "cortex-m7", "esp32-s3")


def builtin_names() -> list[str]:
    names = [p.stem for p in BUILTIN_DIR.glob("*.yaml")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a user's profile from a .yaml file."""
    s = str(name_or_path)
    path = Path(s)
    if s.endswith((".yaml", ".yml")) or path.is_file() or "/" in s:
        if not path.is_file():
            raise InputError(f"Profile file {s} does not exist", hint="pass a built-in profile name or a .yaml file")
        return _read(path)
    names = builtin_names()
    if s not in names:
        raise UsageError(f"Unknown profile '{s}'.{suggest(s, names)} Profiles: {', '.join(names)} (or a .yaml file of your own)")
    return _read(BUILTIN_DIR / f"{s}.yaml")


def load_profiles(spec: str) -> list[Profile]:
    """``raspberry-pi-4,browser-desktop``, ``all`` or ``./my-board.yaml`` (comma-separated)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise UsageError("--profile is empty", hint=f"choose from {', '.join(builtin_names())}, or all")
    if "all" in parts:
        return list_profiles()
    return [load_profile(p) for p in dict.fromkeys(parts)]


def list_profiles() -> list[Profile]:
    return [_read(BUILTIN_DIR / f"{n}.yaml") for n in builtin_names()]


def _read(path: Path) -> Profile:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise InputError(f"{path} is not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    except OSError as e:
        raise InputError(f"{path} cannot be read: {e.strerror}") from None
    return parse_profile(doc, str(path))
