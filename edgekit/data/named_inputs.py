"""DATA for a model with several inputs: an ``.npz`` with one array per input name, or generated inputs.

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

from pathlib import Path

import numpy as np

from edgekit.errors import InputError, UsageError
from edgekit.generated_inputs import generate, id_range, is_integer
from edgekit.io_spec import TensorSpec, check_batch

TEST_FRACTION = 0.2
SPLIT_SEED = 0


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


def load_named_npz(path: str | Path, specs: list[TensorSpec]) -> tuple[dict, dict, dict]:
    """``(train inputs, test inputs, test labels by key)`` from an ``.npz`` keyed by input names."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Data {path} does not exist", hint="pass an .npz with one array per input name")
    if path.suffix.lower() != ".npz":
        raise UsageError(f"A model with several inputs takes DATA as an .npz with one array per input "
                         f"({', '.join(s.name for s in specs)}), or uniform:LO,HI; got {path}")
    try:
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    except Exception as e:
        raise InputError(f"Data {path} is not a readable .npz: {type(e).__name__}") from None
    inputs = {s.name: arrays[s.name] for s in specs if s.name in arrays}
    if len(inputs) != len(specs):
        expected = ", ".join(f"{s.name} {tuple(s.shape)}" for s in specs)
        raise InputError(f"Data {path} has keys {', '.join(arrays) or 'none'}, but the model's inputs are {expected}",
                         hint="save one array per input under its name, labels as y or y_<output name>")
    lengths = {len(v) for v in inputs.values()}
    if len(lengths) != 1:
        raise InputError(f"Data {path}: the input arrays have different numbers of rows "
                         f"({', '.join(f'{k} {len(v)}' for k, v in inputs.items())})")
    check_batch(inputs, specs, what=f"Data {path}")
    n = lengths.pop()
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, int(round(n * TEST_FRACTION))) if n > 1 else 0
    test, train = order[:n_test], order[n_test:]
    labels = {k: v[test] for k, v in arrays.items() if (k == "y" or k.startswith("y_")) and len(v) == n}
    cast = {s.name: (np.int64 if is_integer(s.dtype) else np.float32) for s in specs}
    return ({k: v[train].astype(cast[k]) for k, v in inputs.items()},
            {k: v[test].astype(cast[k]) for k, v in inputs.items()}, labels)
