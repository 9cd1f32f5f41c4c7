"""One trial of ``edgekit tune``: train, export in the target quantization, validate, bench, estimate.

A trial is a function of its parameters and the tune settings only: the Keras session is
cleared and every seed set before it builds anything, so the same parameters give the same
model whether the trial runs first, tenth, or in another worker. Its folder,
``OUT/trials/NNNN``, holds the run (``run/``) and the artifacts (``export/``).

The objectives are measured on the first profile's artifact: quantized accuracy on the test
split (maximised), device latency (the profile's estimate; measured p50 on ``host``;
minimised) and artifact size (minimised). The constraints are every profile's latency
budget, memory and storage checks, as ``edgekit bench`` makes them.

Example:
    >>> result = run_trial(settings, choice, Path("runs/tune/trials/0000"))   # doctest: +SKIP
    >>> result.objectives                                                        # doctest: +SKIP
    {'accuracy': 0.962, 'latency_ms': 0.19, 'size_kb': 28.8}
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError, TrainingFailed
from edgekit.tuning.space import Choice

# The artifact a profile runs for each --quant: TF.js has no integer compute; its nearest is
# 8-bit weights (uint8), which is what ships to a browser.
QUANT_FOR_FORMAT = {
    "fp32": {"tflite": "fp32", "onnx": "fp32", "tfjs": "fp32"},
    "fp16": {"tflite": "fp16", "onnx": "fp16", "tfjs": "fp16"},
    "dynamic": {"tflite": "dynamic", "onnx": "dynamic", "tfjs": "uint8"},
    "int8": {"tflite": "int8", "onnx": "int8", "tfjs": "uint8"},
}
EXPORT_FORMATS = ("tflite", "onnx", "tfjs")


class TrialFailed(Exception):
    """A trial that ran and failed for a reason the report shows (export, validation, training)."""


class TrialHopeless(Exception):
    """Training stopped early: validation accuracy stayed near chance (the trial is pruned)."""


@dataclass
class Settings:
    """What every trial of one study shares."""

    model: str
    data: str
    profiles: list  # Profile objects, the first one's artifact gives the objectives
    quant: str
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    seed: int
    max_latency_ms: float | None = None
    metric: str = "accuracy"  # what the accuracy objective is: a detector's is mAP@0.5 (bench's own, COCO's evaluation)
    devices: tuple[str, ...] = ()  # edgekit agents whose device measures each trial's latency (a farm: in turn)
    token: str | None = None  # their token

    def targets(self) -> list[tuple[str, str]]:
        """(format, quant) exported per trial: each profile's first format, deduplicated."""
        out: list[tuple[str, str]] = []
        for p in self.profiles:
            fmt = next(f for f in p.formats if f in EXPORT_FORMATS)
            pair = (fmt, QUANT_FOR_FORMAT[self.quant][fmt])
            if pair not in out:
                out.append(pair)
        return out


@dataclass
class TrialResult:
    objectives: dict[str, float]
    constraints: dict[str, dict]  # name -> {"ok", "value", "limit", "unit"}
    profiles: dict[str, dict] = field(default_factory=dict)  # profile -> latency, accuracy, size, verdict
    seconds: dict[str, float] = field(default_factory=dict)
    host_p50_ms: float | None = None
    artifact: str | None = None
    params_count: int | None = None
    graph_key: str | None = None  # the same for trials whose artifacts are the same graph (see pooled_latency)
    latency_measured_ms: float | None = None  # this trial's own measurement (objectives: pooled with its graph's)

    @property
    def feasible(self) -> bool:
        return all(c["ok"] for c in self.constraints.values())

    def violations(self) -> list[str]:
        return [f"{name} {c['value']:.4g} {c['unit']} > {c['limit']:.4g} {c['unit']}"
                for name, c in self.constraints.items() if not c["ok"]]


def run_trial(settings: Settings, choice: Choice, folder: Path, dataset, *, log=lambda s: None,
              server=None, number: int = 0, step=lambda what: None) -> TrialResult:
    """Train ``choice`` into ``folder/run``, export, validate and bench it; raises TrialFailed or TrialHopeless.
    ``server``: the :class:`~edgekit.exporters.supervised.ExportServer` the study's exports share; ``step``
    is told what the trial does now ("training, epoch 3/10", "exporting tflite int8", "measuring")."""
    folder.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    record = _train(settings, choice, folder / "run", dataset, step)
    seconds["train"] = round(time.perf_counter() - t0, 2)
    t1 = time.perf_counter()
    step(f"exporting {', '.join(f'{f} {q}' for f, q in settings.targets())}")
    artifacts = _export(settings, folder / "run", folder / "export", server)
    seconds["export"] = round(time.perf_counter() - t1, 2)
    t2 = time.perf_counter()
    step("measuring " + ("on the device" if settings.devices else "latency and accuracy"))
    result = _bench(settings, folder / "export", artifacts, log, number)
    seconds["bench"] = round(time.perf_counter() - t2, 2)
    seconds["total"] = round(time.perf_counter() - t0, 2)
    result.seconds = seconds
    result.params_count = record.metrics.get("params")
    fmt, quant = settings.targets()[0]
    size = result.profiles.get(settings.profiles[0].name, {}).get("size_bytes")
    shape = "x".join(str(d) for d in dataset.input_shape)
    result.graph_key = f"{fmt} {quant}, input {shape}, {result.params_count} parameters, {size} bytes"
    result.latency_measured_ms = result.objectives["latency_ms"]
    return result


def _train(settings: Settings, choice: Choice, run_dir: Path, dataset, step=lambda what: None):
    import keras

    from edgekit.trainer.fit import train

    hopeless = _hopeless_callback(dataset.num_classes)
    epochs = _epoch_callback(step, choice.epochs)
    build = (lambda shape, n: choice.model) if choice.model is not None else None
    try:
        record = train(settings.model, settings.data, run_dir, epochs=choice.epochs, batch_size=choice.batch_size,
                       learning_rate=choice.learning_rate, patience=settings.patience,
                       width=choice.options.get("width", 1.0),
                       recipe_options={k: v for k, v in choice.options.items() if k != "width"},
                       seed=settings.seed, overwrite=True, verbose=0, log=lambda s: None, dataset=dataset,
                       build=build, callbacks=[hopeless, epochs])
    except TrainingFailed as e:
        if hopeless.reason:
            raise TrialHopeless(hopeless.reason) from None
        raise TrialFailed(f"training: {e.message}") from None
    finally:
        keras.backend.clear_session()
    if hopeless.reason:
        raise TrialHopeless(hopeless.reason)
    return record


def _epoch_callback(step, epochs: int):
    """Tells ``step`` which epoch of ``epochs`` trains now."""
    import keras

    class Epochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            step(f"training, epoch {epoch + 1}/{epochs}")

    return Epochs()


def _hopeless_callback(num_classes: int):
    """Stops training when, after two epochs, training and validation accuracy are both under 1.5x chance.
    Validation alone near chance while training learns is not hopeless: BatchNormalization statistics lag
    in the first epochs of networks such as MobileNetV2. Optuna's pruners do not apply to multi-objective
    studies; this is the one rule edgekit uses."""
    import keras

    class Hopeless(keras.callbacks.Callback):
        reason: str | None = None

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            acc, val = logs.get("accuracy"), logs.get("val_accuracy")
            near = 1.5 / num_classes
            if epoch >= 1 and acc is not None and val is not None and acc < near and val < near:
                self.reason = (f"pruned after {epoch + 1} epochs: training and validation accuracy ({acc:.3f}, "
                               f"{val:.3f}) are near chance ({1 / num_classes:.3f})")
                self.model.stop_training = True

    return Hopeless()


def _export(settings: Settings, run_dir: Path, out: Path, server) -> list[dict]:
    from edgekit.exporters.supervised import export_supervised

    targets = settings.targets()
    formats = list(dict.fromkeys(f for f, _ in targets))
    quants = list(dict.fromkeys(q for _, q in targets))
    try:
        manifest = export_supervised(run_dir, formats, quants, out, log=lambda s: None, server=server)
    except EdgekitError as e:
        raise TrialFailed(f"export: {e.message}") from None
    arts = [a.to_dict() for a in manifest.artifacts if (a.format, a.quant) in targets]
    for a in arts:
        if a["status"] != "ok":
            raise TrialFailed(f"{a['format']} {a['quant']} {a['status'].replace('_', ' ')}: {a.get('error') or ''}".strip())
    return arts


def _device(settings: Settings, number: int):
    """The agent that measures trial ``number`` (a farm of the same board takes trials in turn), or None."""
    if not settings.devices:
        return None
    from edgekit.agent.client import RemoteDevice

    url = settings.devices[number % len(settings.devices)]
    try:
        return RemoteDevice(url, settings.token)
    except EdgekitError as e:  # this trial's latency fails with the reason; the search goes on
        raise TrialFailed(f"latency on the device at {url}: {e.message}") from None


def _bench(settings: Settings, export_dir: Path, artifacts: list[dict], log, number: int = 0) -> TrialResult:
    from edgekit.bench.runner import run_bench

    device = _device(settings, number)
    # Three fresh workers per artifact, interleaved, and their median: a trial measured while the machine was busy
    # (a browser closing, the previous trial's threads) would otherwise sit off the front by noise alone.
    try:
        report = run_bench([str(export_dir)], data=settings.data, profiles=settings.profiles, reference=False,
                           repeats=3, runs=50, warmup=5, min_time_s=0.3, device=device)
    except EdgekitError as e:
        where = f" on the device at {device.url}" if device is not None else ""
        raise TrialFailed(f"bench{where}: {e.message}") from None
    wanted = {(a["format"], a["quant"]) for a in artifacts}
    first = settings.profiles[0]
    first_fmt = settings.targets()[0]
    objectives: dict[str, float] = {}
    constraints: dict[str, dict] = {}
    per_profile: dict[str, dict] = {}
    host_p50 = None
    for row in report["rows"]:
        if (row.get("format"), row.get("quant")) not in wanted:
            continue
        if row["status"] != "ok":
            raise TrialFailed(f"bench {row.get('format')} {row.get('quant')} on {row['profile']}: "
                              f"{row.get('error') or 'did not run'}")
        measured_on = row.get("measured_on")  # a device's own measurement comes before any estimate of it
        lat = row["latency_ms"]["p50"] if measured_on else (row.get("estimate") or {}).get("latency_ms") or row["latency_ms"]["p50"]
        per_profile.setdefault(row["profile"], {
            "format": row["format"], "quant": row["quant"], "latency_ms": lat, "accuracy": row.get("accuracy"),
            "size_bytes": row.get("size_bytes"), "estimated": bool(row.get("estimate")) and not measured_on,
            "verdict": row.get("verdict", "pass"),
            **({"measured_on": f"{measured_on['device']} ({measured_on['url']})"} if measured_on else {})})
        for name, c in (row.get("checks") or {}).items():
            unit = "ms" if name == "latency_budget" else "MB"
            constraints[f"{row['profile']} {name.replace('_', ' ')}"] = {
                "ok": bool(c["ok"]), "value": c.get("value_ms", c.get("value_mb")),
                "limit": c.get("limit_ms", c.get("limit_mb")), "unit": unit}
        if row["profile"] == first.name and (row["format"], row["quant"]) == first_fmt:
            objectives = {"accuracy": row.get("accuracy"), "latency_ms": lat, "size_kb": row["size_bytes"] / 1024}
            host_p50 = row["latency_ms"]["p50"]
    if not objectives or objectives["accuracy"] is None:
        raise TrialFailed(f"bench: no accuracy for {first_fmt[0]} {first_fmt[1]} on {first.name} "
                          "(the data has no test labels?)")
    if settings.max_latency_ms is not None:
        constraints[f"{first.name} --max-latency"] = {
            "ok": objectives["latency_ms"] <= settings.max_latency_ms, "value": objectives["latency_ms"],
            "limit": settings.max_latency_ms, "unit": "ms"}
    return TrialResult(objectives=objectives, constraints=constraints, profiles=per_profile, host_p50_ms=host_p50,
                       artifact=next((a["path"] for a in artifacts if (a["format"], a["quant"]) == first_fmt), None))


def pooled_latency(latencies: list[float]) -> float:
    """One latency for every trial of the same graph: the median of their measurements.

    Trials that differ only in how they were trained (learning rate, epochs, dropout) export the
    same graph, whose latency is one quantity; measured in different trials on a shared host it
    came out 9% apart, and a model trained worse sat on the front for that alone. The graph is
    known by the artifact's format, quantization, input shape (the same weights at another
    resolution are another graph), parameter count and size in bytes.

    >>> pooled_latency([0.0061, 0.0046, 0.0048])
    0.0048
    """
    import statistics

    return statistics.median(latencies)


def objective_values(result: TrialResult) -> list[float]:
    o = result.objectives
    return [float(o["accuracy"]), float(o["latency_ms"]), float(o["size_kb"])]


def constraint_values(result: TrialResult) -> dict[str, float]:
    """Optuna's form: one value per constraint, <= 0 when it holds (the relative excess otherwise)."""
    out = {}
    for name, c in result.constraints.items():
        limit = c["limit"] or 1.0
        excess = (c["value"] - limit) / limit
        out[name] = max(excess, 1e-9) if not c["ok"] else min(excess, 0.0)
    return out


def result_attrs(result: TrialResult) -> dict[str, Any]:
    return {"objectives": result.objectives, "constraints": result.constraints, "profiles": result.profiles,
            "seconds": result.seconds, "host_p50_ms": result.host_p50_ms, "artifact": result.artifact,
            "params_count": result.params_count, "graph_key": result.graph_key,
            "latency_measured_ms": result.latency_measured_ms}
