"""edgekit: take a Keras model from training to a device, measured at every step.

Importing ``edgekit`` is cheap: TensorFlow, LiteRT and the other heavy stacks load only
when a function or command needs them.

Example:
    >>> import edgekit
    >>> edgekit.__version__
    '0.1.0'
    >>> edgekit.train("cnn", "builtin:digits", "runs/demo", epochs=20)               # doctest: +SKIP
    >>> manifest = edgekit.export("runs/demo", ["tflite"], ["fp32", "int8"], "runs/demo/export")  # doctest: +SKIP
    >>> report = edgekit.bench(["runs/demo/export"], profiles="raspberry-pi-4")       # doctest: +SKIP
    >>> front = edgekit.tune("cnn", "builtin:digits", "runs/tune", trials=8)["front"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def train(recipe: str, data: str, out, **kwargs: Any):
    """Train ``recipe`` (a built-in name or your model file) on ``data`` into the run folder ``out``.

    See :func:`edgekit.trainer.fit.train` for the options; returns the run's record."""
    from edgekit.trainer.fit import train as _train

    return _train(recipe, data, out, **kwargs)


def export(model, formats: list[str], quants: list[str], out, *, isolate: bool = True, log=print, **kwargs: Any):
    """Export ``model`` to every format x quant into ``out``; returns the manifest.

    As ``edgekit export`` does, the converters run in a child process (``isolate=True``): a
    converter that crashes on a hostile or unusual model costs that one artifact, not your
    Python process. ``isolate=False`` runs them in this process
    (:func:`edgekit.exporters.pipeline.export_model`, which documents the options)."""
    if not isolate:
        from edgekit.exporters.pipeline import export_model

        return export_model(model, formats, quants, out, log=log, **kwargs)
    from edgekit.exporters.supervised import export_supervised

    return export_supervised(model, formats, quants, out, log=log, **kwargs)


def bench(artifacts: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run every artifact in its runtime (each in its own process); returns the report.

    See :func:`edgekit.bench.runner.run_bench` for the options."""
    from edgekit.bench.runner import run_bench

    return run_bench(artifacts, **kwargs)


def tune(model: str, data: str, out, **kwargs: Any) -> dict[str, Any]:
    """Search ``model`` (a recipe name or a ``build_model(hp, ...)`` file) for the most accurate artifacts
    that fit the device profiles; returns the summary, whose ``front`` lists the Pareto-optimal trials.

    See :func:`edgekit.tuning.study.tune` for the options (``profiles``, ``quant``, ``trials``, ``storage``...)."""
    from edgekit.tuning.study import tune as _tune

    return _tune(model, data, out, **kwargs)
