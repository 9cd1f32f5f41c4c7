"""What bench feeds each target: DATA's test split by input name, prepared as the run recorded it
(:func:`edgekit.data.inputs.model_inputs`, the path export takes too), or generated inputs; the
artifact's inputs read from the artifact when no manifest says them.

Example:
    >>> x, labels, note = eval_inputs(target, "builtin:digits", 200, {}, timeout_s=300)   # doctest: +SKIP
    >>> note, sorted(x), sorted(labels)                                                   # doctest: +SKIP
    ('builtin:digits (test split, 200 samples)', ['input'], ['y'])
"""

from __future__ import annotations

import json

from edgekit.bench.targets import BenchTarget
from edgekit.data.inputs import model_inputs
from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import InputError
from edgekit.io_spec import TensorSpec
from edgekit.runtimes.isolated import run_isolated


class ArtifactLoadError(InputError):
    """An artifact its runtime cannot load (corrupt, truncated, not what its name says)."""


def describe_inputs(target: BenchTarget, timeout_s: float) -> list[dict]:
    """The inputs of a file no manifest describes, as its runtime reads them (and its quant mode)."""
    r = run_isolated(target.runtime, target.path, None, timeout_s=timeout_s)
    if not r.ok:
        raise ArtifactLoadError(f"{target.path} cannot be loaded: {r.error}")
    info = r.reply.get("artifact_info", {})
    if target.quant == "?":
        target.quant = info.get("quant_guess", "?")
    # the dtype the model computes on: a quantized boundary takes float32 values, quantized at the runtime
    return [{"name": t["name"], "shape": [d if d and d > 0 else None for d in t["shape"][1:]],
             "dtype": "float32" if t.get("quantization") or t["dtype"].startswith("float") else t["dtype"]}
            for t in info["io"]["inputs"]]


def eval_inputs(target: BenchTarget, data: str | None, samples: int, cache: dict, timeout_s: float):
    """Prepared inputs by name, their labels by key (``y``, ``y_<output>``; None without labels) and a
    note: DATA, else the run's own data, else generated."""
    if target.inputs is None:
        target.inputs = describe_inputs(target, timeout_s)
    run = target.run or {}
    spec = data or (run.get("data") or {}).get("spec")
    specs = [TensorSpec(i["name"], tuple(i["shape"]), i.get("dtype", "float32")) for i in target.inputs]
    prep_dict = run.get("preprocessing")
    key = json.dumps([spec, prep_dict, [s.to_dict() for s in specs]], default=str)
    if key not in cache:
        image_size = (prep_dict or {}).get("image_size")
        # the run's preprocessing, else the data set's own
        d = model_inputs(spec, specs, prep=Preprocessing.from_dict(prep_dict) if prep_dict else None,
                         use_data_prep=not prep_dict, image_size=image_size[0] if image_size else None,
                         train_rows=0, test_rows=samples)
        cache[key] = (d.test, d.labels or None, d.note)
    return cache[key]
