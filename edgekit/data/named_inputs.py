"""DATA for a model with several inputs: an ``.npz`` with one array per input name
(:func:`edgekit.data.sources.npz.load_named_npz`), or generated inputs.

- ``file.npz``: one array per input, keyed by the model's input names (``edgekit inspect`` lists
  them); labels as ``y`` for a single labelled output, or ``y_<output name>`` per output. edgekit
  holds a fixed, seeded fifth of the rows out as the test split.
- ``uniform:LO,HI`` (every input) or ``uniform:image=0,1;tokens=0,999`` (per input): seeded
  generated inputs; integer inputs get integer ids in the range (default: the ``Embedding``'s).
- nothing: generated inputs (uniform 0..1; valid ids for integer inputs), for parity only.

Example:
    >>> parse_ranges("uniform:image=0,1;tokens=0,999", ["image", "tokens"])
    {'image': (0.0, 1.0), 'tokens': (0.0, 999.0)}
"""

from __future__ import annotations

from edgekit.errors import UsageError
from edgekit.generated_inputs import generate, id_range
from edgekit.io_spec import TensorSpec


def parse_ranges(spec: str, names: list[str]) -> dict[str, tuple[float, float]]:
    """``uniform:LO,HI`` or ``uniform:NAME=LO,HI;NAME=LO,HI`` as a range per input name."""
    body = spec.split(":", 1)[1]
    example = ";".join(f"{n}=0,1" for n in names)
    try:
        if "=" not in body:
            lo, hi = (float(v) for v in body.split(","))
            ranges = {n: (lo, hi) for n in names}
        else:
            ranges = {}
            for part in filter(None, (p.strip() for p in body.split(";"))):
                name, values = part.split("=", 1)
                lo, hi = (float(v) for v in values.split(","))
                ranges[name.strip()] = (lo, hi)
    except ValueError:
        raise UsageError(f"--calib {spec} should be uniform:LO,HI or uniform:{example}") from None
    unknown = [n for n in ranges if n not in names]
    if unknown:
        raise UsageError(f"--calib {spec} names no input '{unknown[0]}'; the model's inputs are {', '.join(names)}")
    missing = [n for n in names if n not in ranges]
    if missing:
        raise UsageError(f"--calib {spec} gives no range for input '{missing[0]}'", hint=f"e.g. uniform:{example}")
    for name, (lo, hi) in ranges.items():
        if not lo < hi:
            raise UsageError(f"--calib {spec}: LO must be below HI (input '{name}')")
    return ranges


def generated(specs: list[TensorSpec], n: int, *, ranges: dict | None = None, keras_model=None, seed: int = 0) -> dict:
    """``n`` seeded samples per input: uniform in its range (default 0..1) or valid integer ids."""
    ids = id_range(keras_model) if keras_model is not None else (0, 99)
    out = {}
    for i, s in enumerate(specs):
        lo_hi = (ranges or {}).get(s.name)
        out[s.name] = generate(s.shape, s.dtype, n, value_range=lo_hi or (0.0, 1.0),
                               id_range=lo_hi or ids, seed=seed + 1000 * i)
    return out
