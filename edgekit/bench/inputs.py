"""What bench feeds each target: DATA's test split prepared as the run recorded it, a dict by input
name for several inputs, or generated inputs; the artifact's input shape read from the artifact
when the manifest does not say it.

Example:
    >>> x, y, note = eval_inputs(target, "builtin:digits", 200, {}, timeout_s=300)   # doctest: +SKIP
    >>> note                                                                        # doctest: +SKIP
    'builtin:digits (test split, 200 samples)'
"""

from __future__ import annotations

import json

from edgekit.bench.targets import BenchTarget
from edgekit.data import load_data
from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import InputError, ShapeError
from edgekit.generated_inputs import generate
from edgekit.runtimes.isolated import run_isolated
from edgekit.shapes import fits

GENERATED_SAMPLES = 64


class ArtifactLoadError(InputError):
    """An artifact its runtime cannot load (corrupt, truncated, not what its name says)."""


def describe_shape(target: BenchTarget, timeout_s: float) -> list:
    r = run_isolated(target.runtime, target.path, None, timeout_s=timeout_s)
    if not r.ok:
        raise ArtifactLoadError(f"{target.path} cannot be loaded: {r.error}")
    info = r.reply.get("artifact_info", {})
    if target.quant == "?":
        target.quant = info.get("quant_guess", "?")
    io_inputs = (info.get("io") or {}).get("inputs") or []
    if len(io_inputs) > 1:
        target.inputs = [{**i, "shape": [d if d and d > 0 else None for d in i["shape"][1:]]} for i in io_inputs]
    return [d if d and d > 0 else None for d in info["input_shape"][1:]]


def eval_inputs(target: BenchTarget, data: str | None, samples: int, cache: dict, timeout_s: float):
    """Prepared inputs (and labels) for a target: DATA, else the run's own data, else generated."""
    run = target.run or {}
    spec = data or (run.get("data") or {}).get("spec")
    shape = target.input_shape
    if shape is None:
        shape = describe_shape(target, timeout_s)
        target.input_shape = shape
    if target.inputs:
        return _named_eval_inputs(target, data, samples, cache)
    shape = tuple(shape)
    prep_dict = run.get("preprocessing")
    key = json.dumps([spec, prep_dict, list(shape)], default=str)
    if key in cache:
        return cache[key]
    if spec is None:
        x = generate(shape, "float32", GENERATED_SAMPLES)
        cache[key] = (x, None, f"generated uniform(0,1), {GENERATED_SAMPLES} samples")
        return cache[key]
    image_size = (prep_dict or {}).get("image_size")
    ds = load_data(spec, image_size=image_size[0] if image_size else None)
    prep = Preprocessing.from_dict(prep_dict) if prep_dict else ds.preprocessing
    x = ds.prepared("test", prep, limit=samples)
    got = tuple(x.shape[1:])
    if not fits(shape, got):
        raise ShapeError(f"Data {spec} has samples of shape {got}, but {target.name} takes {shape}",
                         hint="pass data shaped like the model's input")
    y = ds.y_test[:samples] if ds.has_labels else None
    cache[key] = (x, y, f"{spec} (test split, {len(x)} samples)")
    return cache[key]


def _named_eval_inputs(target: BenchTarget, data: str | None, samples: int, cache: dict):
    """Several inputs: a dict by input name from an .npz keyed by input names (labels y / y_<output>), else generated."""
    from edgekit.data.named_inputs import generated
    from edgekit.data.sources.npz import load_named_npz
    from edgekit.io_spec import TensorSpec

    specs = [TensorSpec(i["name"], tuple(i["shape"]), i.get("dtype", "float32")) for i in target.inputs]
    spec = data or ((target.run or {}).get("data") or {}).get("spec")
    key = json.dumps([spec, [s.to_dict() for s in specs]], default=str)
    if key not in cache:
        if spec is None:
            cache[key] = (generated(specs, GENERATED_SAMPLES), None, f"generated inputs, {GENERATED_SAMPLES} samples")
        else:
            _, test, labels = load_named_npz(spec, specs)
            x = {k: v[:samples] for k, v in test.items()}
            n = len(next(iter(x.values())))
            cache[key] = (x, {k: v[:samples] for k, v in labels.items()} or None, f"{spec} (test split, {n} samples)")
    return cache[key]
