"""``edgekit tune``: a multi-objective search over deployable artifacts, run by Optuna.

Each trial is trained, exported in ``quant``, validated against its float model, benchmarked
and estimated on every profile (:mod:`edgekit.tuning.trial`). Optuna samples (multi-objective
TPE by default, NSGA-II or random on request) and stores the study: a SQLite file in OUT by
default, or any Optuna storage URL shared by workers on several machines.

Resuming and workers:

* ``resume=True`` continues the study in OUT (or at ``storage``), or starts it when there is
  none; every worker of one study runs with it. The trial budget is the study's, not the
  worker's: workers stop when ``trials`` trials have run, whoever ran them. Workers count and
  ask under one lock: an advisory lock in a PostgreSQL storage (every machine), a lock file in
  OUT otherwise (the workers sharing OUT), so the count is exact.
* A trial whose worker died (killed, power lost, on any machine) stops sending heartbeats
  (``heartbeat_s``); once 3 intervals have passed without one, any worker of the study fails it
  and runs it again once, with the same parameters: it is recorded as interrupted, never lost,
  never counted twice. Workers that have nothing left to start wait for the trials still running
  to end or lapse. A retry whose worker dies too is recorded as failed: those parameters are the
  likely cause (memory, a crashing converter), and running them again would not end.
* Each trial trains with the same ``seed``: the same parameters give the same model.

Example:
    >>> summary = tune("cnn", "builtin:digits", "runs/tune", profiles="raspberry-pi-4", trials=8)  # doctest: +SKIP
    >>> [t["number"] for t in summary["front"]]                                                      # doctest: +SKIP
    [0, 3, 5]
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit import status
from edgekit.errors import EdgekitError, UsageError, suggest
from edgekit.files import check_writable_dir
from edgekit.tuning.hp import HyperParameters
from edgekit.tuning.space import SPACES, Choice, file_choice, load_tunable_file, recipe_choice, smallest_params
from edgekit.tuning.trial import (
    EXPORT_FORMATS,
    QUANT_FOR_FORMAT,
    Settings,
    TrialFailed,
    TrialHopeless,
    constraint_values,
    objective_values,
    pooled_latency,
    result_attrs,
    run_trial,
)
from edgekit.tuning.workers import counted, heartbeat, heartbeat_storage, locked, recover_interrupted

STUDY_DB = "study.db"
DIRECTIONS = ["maximize", "minimize", "minimize"]
SAMPLERS = ("tpe", "nsga2", "random")
DEFAULT_STUDY = "edgekit-tune"


def tune(
    model: str,
    data: str,
    out: str | Path,
    *,
    profiles: str | list = "host",
    quant: str = "int8",
    trials: int = 10,
    timeout_s: float | None = None,
    storage: str | None = None,
    study_name: str = DEFAULT_STUDY,
    resume: bool = False,
    sampler: str = "tpe",
    seed: int = 0,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 3,
    max_latency_ms: float | None = None,
    keep_all: bool = False,
    heartbeat_s: float = 30.0,
    artifacts: str | Path | None = None,
    devices: list[str] | None = None,
    token: str | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Search ``model`` (a recipe name or a ``build_model(hp, ...)`` file) on ``data``; returns the
    summary that ``OUT/tune.json`` holds, with its Pareto ``front`` of deployable artifacts. ``log``
    gets a line per trial ended; ``progress`` gets ``"[k/N] trial T: training, epoch E/EPOCHS"`` and
    the like as a trial moves on."""
    out = Path(out)
    if heartbeat_s < 1:
        raise UsageError(f"--heartbeat must be at least 1 second, got {heartbeat_s:g}")
    store = None
    if artifacts is not None:
        from edgekit.tuning.store import artifact_store

        store = artifact_store(artifacts)
    settings, module = _check(model, data, out, profiles=profiles, quant=quant, trials=trials, timeout_s=timeout_s,
                              sampler=sampler, seed=seed, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, patience=patience, max_latency_ms=max_latency_ms)
    if devices:
        import dataclasses

        bad = [d for d in devices if not d.startswith(("http://", "https://"))]
        if bad:
            raise UsageError(f"--device {bad[0]} is not an http:// or https:// URL", hint="pass the URL `edgekit agent` printed")
        if not token:
            raise UsageError("--device needs the agent's token", hint="pass --token, or set EDGEKIT_AGENT_TOKEN")
        settings = dataclasses.replace(settings, devices=tuple(devices), token=token)
    from edgekit.data import load_data

    datasets: dict[int | None, Any] = {None: load_data(data)}
    first = datasets[None]
    from edgekit.trainer.tasks import TASKS

    detects = settings.metric == "mAP@0.5"
    TASKS["detection" if detects else "classification"].check(first, data)  # boxes for a detector, classes for the rest
    resizable = Path(data).is_dir() and not detects  # an image folder's resolution is searched; a detector keeps its own

    import logging

    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
    import keras

    # Many small models in one process: TensorFlow warns about retracing predict functions, which is expected here.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    def choose(hp: HyperParameters, ds) -> Choice:
        if module is not None:
            return file_choice(module, hp, ds.input_shape, ds.num_classes, epochs=epochs,
                               learning_rate=learning_rate, batch_size=batch_size)
        return recipe_choice(model, hp, epochs=epochs, resizable=resizable, learning_rate=learning_rate,
                             batch_size=batch_size)

    defaults = HyperParameters.defaults()
    choose(defaults, first)  # a file that cannot build, or asks hp for nothing, is refused before any study
    keras.backend.clear_session()
    if not defaults.values:
        raise UsageError(f"{model}: build_model(hp, ...) asks hp for nothing, so there is nothing to search",
                         hint="ask hp for what to search, e.g. units = hp.Int('units', 16, 128)")

    created_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    starts = _starting_points(defaults.values, recipe=module is None)
    try:
        study, created, rdb = _open_study(out, storage, study_name, settings, resume=resume, sampler=sampler, seed=seed,
                                          trials=trials, starts=starts, heartbeat_s=heartbeat_s, log=log)
    except EdgekitError:
        if created_out:  # a storage that cannot be opened, a study refused: leave no empty OUT behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    log(f"{'started' if created else 'resumed'} study '{study_name}' ({_storage_label(storage, out)}): "
        f"{counted(study)}/{trials} trials so far; objectives: {settings.quant} {settings.metric} (max), "
        f"{settings.profiles[0].name} latency (min), size (min)")

    def dataset_for(size: int | None):
        if size not in datasets:
            datasets[size] = load_data(data, image_size=size)
        return datasets[size]

    from edgekit.exporters.supervised import ExportServer

    t_start = time.monotonic()
    durations: list[float] = []
    waiting_for: set[int] = set()
    with ExportServer() as server:  # one export child for every trial: TensorFlow is imported once
        while True:
            if timeout_s is not None and time.monotonic() - t_start > timeout_s:
                log(f"--timeout {timeout_s:g}s reached; no new trial is started")
                break
            with locked(out, rdb, study_name):
                recover_interrupted(study)
                trial = study.ask() if counted(study) < trials else None
            if trial is None:  # the budget is taken: wait for the trials still running to end, or to lapse
                running = _running(study)
                if not running:
                    break
                if set(running) != waiting_for:
                    waiting_for = set(running)
                    log(f"waiting for trial {', '.join(map(str, sorted(running)))} ({', '.join(sorted(set(running.values())))}) "
                        f"to end, or to be run again if its worker's heartbeat lapses")
                time.sleep(min(heartbeat_s, 5.0))
                continue
            t0 = time.monotonic()
            step = _stepper(progress, trial.number, min(counted(study), trials), trials)
            with heartbeat(study, rdb, trial.number):
                state = _run_one(study, trial, settings, choose, dataset_for, out, log, server, store, step)
            durations.append(time.monotonic() - t0)
            _progress(study, trial.number, state, durations, trials, timeout_s, t_start, log, settings.metric)

    from edgekit.tuning.report import summarize, write_reports

    summary = summarize(study, settings, out, trials=trials, sampler=sampler, storage=_storage_label(storage, out))
    if store is not None:
        from edgekit.tuning.store import fetch_front

        fetch_front(store, study, rdb, summary, out, log)
    if not keep_all:
        _clean(out, summary)
    write_reports(summary, out)
    return summary


def _check(model, data, out: Path, *, profiles, quant, trials, timeout_s, sampler, seed, epochs, batch_size,
           learning_rate, patience, max_latency_ms):
    """Every flag checked before TensorFlow loads: one line each."""
    from edgekit.device_profiles import load_profiles

    if quant not in QUANT_FOR_FORMAT:
        raise UsageError(f"--quant {quant} is not a mode tune searches in.{suggest(quant, QUANT_FOR_FORMAT)} "
                         f"Modes: {', '.join(QUANT_FOR_FORMAT)}")
    if sampler not in SAMPLERS:
        raise UsageError(f"--sampler {sampler} is not one of {', '.join(SAMPLERS)}.{suggest(sampler, SAMPLERS)}")
    for flag, v in (("--trials", trials), ("--epochs", epochs), ("--batch-size", batch_size), ("--patience", patience)):
        if v < 1:
            raise UsageError(f"{flag} must be at least 1, got {v}")
    for flag, v in (("--timeout", timeout_s), ("--lr", learning_rate), ("--max-latency", max_latency_ms)):
        if v is not None and v <= 0:
            raise UsageError(f"{flag} must be > 0, got {v:g}")
    profile_list = load_profiles(profiles) if isinstance(profiles, str) else list(profiles)
    for p in profile_list:
        if not any(f in EXPORT_FORMATS for f in p.formats):
            raise UsageError(f"Profile {p.name} runs {', '.join(p.formats)}: none is a format edgekit exports")
    module = None
    if model.endswith(".py"):
        module = load_tunable_file(Path(model))
    elif model not in SPACES:
        raise UsageError(f"Unknown recipe '{model}'.{suggest(model, SPACES)} "
                         f"Recipes: {', '.join(SPACES)}, or a .py file defining build_model(hp, input_shape, num_classes).")
    check_writable_dir(out, flag="--out")
    from edgekit.trainer.recipes import RECIPE_TASKS

    detects = RECIPE_TASKS.get(model) == "detection" or getattr(module, "task", None) == "detection"
    settings = Settings(model=model, data=data, profiles=profile_list, quant=quant, epochs=epochs,
                        batch_size=batch_size, learning_rate=learning_rate, patience=patience, seed=seed,
                        max_latency_ms=max_latency_ms, metric="mAP@0.5" if detects else "accuracy")
    return settings, module


def _config(settings: Settings, trials: int) -> dict[str, Any]:
    """What must match for a worker to join or resume a study."""
    return {"model": Path(settings.model).name if settings.model.endswith(".py") else settings.model,
            "data": settings.data, "profiles": [p.name for p in settings.profiles], "quant": settings.quant,
            "epochs": settings.epochs, "seed": settings.seed, "max_latency_ms": settings.max_latency_ms}


def _storage_url(storage: str | None, out: Path) -> str:
    """The SQLAlchemy URL of ``--storage`` (default: OUT/study.db). A plain ``postgresql://`` URL is
    given psycopg 3, the driver edgekit installs (SQLAlchemy's default for it is psycopg2)."""
    if not storage:
        return f"sqlite:///{(out / STUDY_DB).resolve()}"
    for plain in ("postgresql://", "postgres://"):
        if storage.startswith(plain):
            return "postgresql+psycopg://" + storage[len(plain):]
    return storage


def _storage_label(storage: str | None, out: Path) -> str:
    if not storage:
        return str(out / STUDY_DB)
    from urllib.parse import urlsplit

    u = urlsplit(storage)
    if u.password:  # never print or store a password
        return storage.replace(f":{u.password}@", ":***@")
    return storage


def _running(study) -> dict[int, str]:
    """The trials running now, with their workers."""
    from optuna.trial import TrialState

    return {t.number: t.user_attrs.get("worker", "?") for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def _open_study(out: Path, storage: str | None, name: str, settings: Settings, *, resume: bool, sampler: str,
                seed: int, trials: int, starts: list[tuple[dict, str]], heartbeat_s: float, log):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = _storage_url(storage, out)
    try:
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        for attempt in range(5):  # workers opening a new database at once race to create Optuna's tables
            try:
                rdb = heartbeat_storage(url, heartbeat_s=heartbeat_s, log=log, engine_kwargs=engine)
                break
            except Exception as e:
                if "already exists" not in str(e) or attempt == 4:
                    raise
                time.sleep(0.5 + attempt)
    except Exception as e:
        raise UsageError(f"--storage {_storage_label(storage, out)} cannot be opened: {type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]}", hint="pass an Optuna storage URL such as "
                         "sqlite:///tune.db or postgresql://user:pass@host/db") from None
    config = _config(settings, trials)
    with locked(out, rdb, name):
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(rdb)}
        created = name not in existing
        if not created and not resume:
            n = existing[name].n_trials
            raise UsageError(f"{_storage_label(storage, out)} already holds study '{name}' ({n} trials)",
                             hint="pass --resume to continue it, or another --out / --study")
        if created:
            study = optuna.create_study(study_name=name, storage=rdb, directions=DIRECTIONS,
                                        sampler=_sampler(sampler, seed, trials))
            study.set_user_attr("edgekit", config)
            for params, role in starts:
                study.enqueue_trial(params, user_attrs={"role": role})
        else:
            study = optuna.load_study(study_name=name, storage=rdb)
            old = study.user_attrs.get("edgekit", {})
            diff = [k for k in config if k in old and old[k] != config[k]]
            if diff:
                k = diff[0]
                raise UsageError(f"study '{name}' was started with {k} = {old[k]}, not {config[k]}",
                                 hint="resume with the same settings, or start another study with --out / --study")
            # another worker, or a resumed one: a seed of its own, so that it does not repeat the draws made so far
            study.sampler = _sampler(sampler, hash((seed, len(study.trials), os.getpid(), socket.gethostname())) % 2**31,
                                     trials)
    return study, created, rdb


def _starting_points(defaults: dict, *, recipe: bool) -> list[tuple[dict, str]]:
    """The trials a study starts with, before its sampler draws: the defaults (the hand-designed model),
    and for a recipe also its smallest variant, so that both ends of the cost axis are measured. Every
    sampler starts from them, random search (``--sampler random``) included: it is the baseline the
    search is measured against, and a baseline denied the points that hold most of the hypervolume
    would flatter the search."""
    starts = [(defaults, "the recipe's defaults" if recipe else "the file's defaults")]
    small = smallest_params(defaults) if recipe else defaults
    if small != defaults:
        starts.append((small, "the recipe's smallest variant"))
    return starts


def _sampler(name: str, seed: int, trials: int):
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 3)))
    # TPE: a third of the budget (3 to 10 trials) samples at random before the model of good and bad trials
    # guides it; constant_liar keeps concurrent workers from proposing the same point. Both samplers read the
    # constraints each trial sets (Trial.set_constraint): infeasible trials rank below feasible ones.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, trials // 3)), multivariate=True,
                                      constant_liar=True)


def _stepper(progress, number: int, k: int, trials: int) -> Callable[[str], None]:
    """What a trial reports its phases with: the bar at trial k of ``trials``, saying what trial ``number`` does."""
    if progress is None:
        return lambda what: None
    progress(f"[{k}/{trials}] trial {number}: starting")
    return lambda what: progress(f"trial {number}: {what}")


def _run_one(study, trial, settings: Settings, choose, dataset_for, out: Path, log, server=None, store=None,
             step=lambda what: None) -> str:
    """Run one asked trial and tell Optuna its outcome; returns the state's name. ``step`` is told each phase."""
    import keras
    from optuna.trial import TrialState

    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    folder = out / "trials" / f"{trial.number:04d}"
    try:
        keras.backend.clear_session()
        keras.utils.set_random_seed(settings.seed)
        hp = HyperParameters(trial)
        choice = choose(hp, dataset_for(None))
        result = run_trial(settings, choice, folder, dataset_for(choice.image_size), server=server, number=trial.number,
                           step=step)
    except TrialHopeless as e:
        trial.set_user_attr("failure", str(e))
        study.tell(trial, state=TrialState.PRUNED)
        return status.PRUNED
    except (TrialFailed, EdgekitError) as e:
        trial.set_user_attr("failure", getattr(e, "message", None) or str(e))
        study.tell(trial, state=TrialState.FAIL)
        return "failed"
    except KeyboardInterrupt:
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except Exception as e:  # a bug or a library error: the trial fails with the reason; the search goes on
        trial.set_user_attr("failure", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
        study.tell(trial, state=TrialState.FAIL)
        return "failed"
    same = [t.user_attrs["latency_measured_ms"] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if result.graph_key and t.user_attrs.get("graph_key") == result.graph_key
            and t.user_attrs.get("latency_measured_ms") is not None]
    if same:  # the graph was measured before: Optuna is told the pooled latency
        result.objectives["latency_ms"] = pooled_latency([*same, result.latency_measured_ms])
    for k, v in result_attrs(result).items():
        trial.set_user_attr(k, v)
    trial.set_user_attr("feasible", result.feasible)
    for name, value in constraint_values(result).items():
        trial.set_constraint(name, value)
    if not result.feasible:
        trial.set_user_attr("failure", "constraint: " + "; ".join(result.violations()))
    elif store is not None:  # a front candidate: its files where every worker and the reader reach them
        from edgekit.tuning.store import upload_trial

        upload_trial(store, trial, folder)
    study.tell(trial, objective_values(result))
    return status.COMPLETE if result.feasible else status.INFEASIBLE


def _progress(study, number: int, state: str, durations: list[float], trials: int, timeout_s, t_start, log,
              metric: str = "accuracy") -> None:
    t = study.get_trials(deepcopy=False)
    done = counted(study)
    me = next(x for x in t if x.number == number)
    if state in (status.COMPLETE, status.INFEASIBLE):
        o = me.user_attrs["objectives"]
        what = f"{metric} {o['accuracy']:.4f}, {o['latency_ms']:.4g} ms, {o['size_kb']:.1f} KB"
        if state == status.INFEASIBLE:
            what += f" ({me.user_attrs['failure']})"
    else:
        what = me.user_attrs.get("failure", state)
    feasible = [x for x in t if x.user_attrs.get("feasible")]
    best = max((x.user_attrs["objectives"]["accuracy"] for x in feasible), default=None)
    left = max(0, trials - done) * (sum(durations) / len(durations))
    if timeout_s is not None:
        left = min(left, max(0.0, timeout_s - (time.monotonic() - t_start)))
    best_txt = f"best {metric} {best:.4f}" if best is not None else "no deployable trial yet"
    log(f"trial {number} {state} in {durations[-1]:.0f}s: {what} | {min(done, trials)}/{trials} trials, {best_txt}, "
        f"about {_duration(left)} left")


def _duration(s: float) -> str:
    return f"{s:.0f}s" if s < 90 else f"{s / 60:.0f} min"


def _clean(out: Path, summary: dict) -> None:
    """Remove the folders of trials off the front (a dominated trial stays dominated: safe for any worker)."""
    keep = {t["number"] for t in summary["front"]}
    root = out / "trials"
    if not root.is_dir():
        return
    running = {t["number"] for t in summary["trials"] if t["state"] == status.RUNNING}
    for child in root.iterdir():
        if child.is_dir() and child.name.isdigit() and int(child.name) not in keep | running:
            shutil.rmtree(child, ignore_errors=True)
