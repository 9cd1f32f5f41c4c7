"""DATA as a model's inputs: one path for export, bench and package, whatever the model takes.

``model_inputs(DATA, inputs)`` turns a DATA argument into batches by input name (a model with one
input gets a dict of one), split into rows to calibrate on (the train split) and held-out rows to
judge on (the test split), with the labels the data has:

- ``builtin:NAME``, an image folder, a ``.csv`` or an ``.npz`` of ``x_train``/``x_test`` arrays
  (:func:`edgekit.data.load_data`, one input; prepared with ``prep``);
- an ``.npz`` with one array per input name (several inputs; labels ``y`` or ``y_<output>``);
- ``uniform:LO,HI`` or ``uniform:NAME=LO,HI;...``: seeded generated inputs in that range (integer
  ids for an integer input);
- nothing: generated inputs (uniform 0..1, or valid ids), for parity only.

Example:
    >>> parse_ranges("uniform:image=0,1;tokens=0,999", ["image", "tokens"])
    {'image': (0.0, 1.0), 'tokens': (0.0, 999.0)}
    >>> from edgekit.io_spec import TensorSpec
    >>> d = model_inputs("uniform:0,255", [TensorSpec("input", (8, 8, 1))], test_rows=10)
    >>> sorted(d.test), d.test["input"].shape, d.note
    (['input'], (10, 8, 8, 1), 'generated uniform(0,255) inputs (10 held out)')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import ShapeError, UsageError
from edgekit.generated_inputs import generate, id_range, is_integer
from edgekit.io_spec import TensorSpec
from edgekit.shapes import fits

GENERATED_ROWS = 64


@dataclass
class ModelInputs:
    """Batches by input name: ``train`` (calibration rows; None when generated for parity only),
    ``test`` (held-out rows), the ``labels`` of the test rows by key (``y``, ``y_<output>``), and a
    ``note`` saying where they came from."""

    train: dict[str, np.ndarray] | None
    test: dict[str, np.ndarray]
    note: str
    labels: dict[str, np.ndarray] = field(default_factory=dict)


def model_inputs(spec: str | None, inputs: list[TensorSpec], *, prep: Preprocessing | None = None,
                 use_data_prep: bool = False, image_size: int | None = None, train_rows: int = 200,
                 test_rows: int = GENERATED_ROWS, keras_model: Any = None) -> ModelInputs:
    """DATA ``spec`` as inputs for a model taking ``inputs``.

    One input: the data's samples prepared with ``prep`` (or, with ``use_data_prep``, the data set's
    own preprocessing; neither: as they are, model-ready) and checked against the input's shape.
    Generated inputs are seeded: the same DATA gives the same rows every time."""
    if spec is None:
        return _generated(inputs, keras_model)
    if spec.startswith("uniform:"):
        return _uniform(spec, inputs, train_rows, test_rows)
    if len(inputs) > 1:
        return _named_npz(spec, inputs, train_rows, test_rows)
    return _one_input(spec, inputs[0], prep, use_data_prep, image_size, train_rows, test_rows)


def _generated(inputs: list[TensorSpec], keras_model) -> ModelInputs:
    test = generated(inputs, GENERATED_ROWS, keras_model=keras_model)
    if len(inputs) > 1:
        note = "generated inputs"
    elif is_integer(inputs[0].dtype):
        lo, hi = id_range(keras_model) if keras_model is not None else (0, 99)
        note = f"generated integer ids in [{lo}, {hi}]"
    else:
        note = "generated uniform(0,1) inputs"
    return ModelInputs(None, test, note)


def _uniform(spec: str, inputs: list[TensorSpec], train_rows: int, test_rows: int) -> ModelInputs:
    """``uniform:LO,HI``: for models that come without data (calibration then covers the range you
    name; parity on such inputs is weaker evidence)."""
    ranges = parse_ranges(spec, [t.name for t in inputs])
    train = generated(inputs, train_rows, ranges=ranges, seed=0)
    test = generated(inputs, test_rows, ranges=ranges, seed=1)
    if len(inputs) > 1:
        return ModelInputs(train, test, f"generated {spec} inputs ({test_rows} held out)")
    lo, hi = ranges[inputs[0].name]
    kind = "integer ids" if is_integer(inputs[0].dtype) else "inputs"
    return ModelInputs(train, test, f"generated uniform({lo:g},{hi:g}) {kind} ({test_rows} held out)")


def _named_npz(spec: str, inputs: list[TensorSpec], train_rows: int, test_rows: int) -> ModelInputs:
    from edgekit.data.sources.npz import load_named_npz

    train, test, labels = load_named_npz(spec, inputs)
    test = {k: v[:test_rows] for k, v in test.items()}
    n = len(next(iter(test.values())))
    return ModelInputs({k: v[:train_rows] for k, v in train.items()}, test, f"{spec} (test split, {n} samples)",
                       {k: v[:n] for k, v in labels.items()})


def _one_input(spec: str, t: TensorSpec, prep: Preprocessing | None, use_data_prep: bool, image_size: int | None,
               train_rows: int, test_rows: int) -> ModelInputs:
    from edgekit.data import load_data

    ds = load_data(spec, image_size=image_size)
    prep = ds.preprocessing if use_data_prep else prep or Preprocessing()
    want = tuple(t.shape)
    test = ds.prepared("test", prep, limit=test_rows)
    got = tuple(test.shape[1:])
    if not fits(want, got):
        raise ShapeError(f"Data {spec} has samples of shape {got}, but the model takes {want}",
                         hint="pass data shaped like the model's input")
    labels = {"y": np.asarray(ds.y_test[: len(test)])} if ds.has_labels else {}
    train = {t.name: _train_rows(ds, prep, spec, train_rows)} if train_rows else None
    return ModelInputs(train, {t.name: test}, f"{spec} (test split, {len(test)} samples)", labels)


def _train_rows(ds, prep: Preprocessing, spec: str, n: int) -> np.ndarray:
    """The train split's first ``n`` prepared rows (calibration), refused when not finite."""
    rows = ds.prepared("train", prep, limit=n)
    if not np.isfinite(rows).all():
        raise ShapeError(f"Calibration data {spec} contains NaN or inf", hint="clean the data first")
    return rows


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
