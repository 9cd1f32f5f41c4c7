"""Workers that share one study: the lock they count and create trials under, the trials that
count against the budget, heartbeats, and a trial whose worker died, run again once.

A worker records a heartbeat for the trial it runs (Optuna's RDB storage, every
``heartbeat_s`` seconds, SQLite or PostgreSQL alike). A trial whose heartbeat is older than the
grace period (3 x ``heartbeat_s``) belongs to a dead worker, on whatever machine: any worker
that counts trials fails it (Optuna's ``fail_stale_trials``: exactly one worker wins that update
in the database) and :func:`on_stale_trial` runs it again once with the same parameters. Its
retry says ``retry_of``; a retry whose worker dies too is not retried again.

Example:
    >>> storage = heartbeat_storage("sqlite:///tune.db", heartbeat_s=30, log=print)   # doctest: +SKIP
    >>> with locked(out):                                                             # doctest: +SKIP
    ...     recover_interrupted(study)
    ...     done = counted(study)
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".tune.lock"
GRACE_HEARTBEATS = 3  # a trial is stale after this many heartbeat intervals without one


@contextmanager
def locked(out: Path, storage=None, study_name: str = ""):
    """One worker at a time counts and creates trials: on a PostgreSQL storage, every worker of the study
    on every machine (a PostgreSQL advisory lock on the study's name); otherwise the workers of this
    machine (a lock file in OUT, which they share)."""
    engine = getattr(storage, "engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": f"edgekit-tune:{study_name}"})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": f"edgekit-tune:{study_name}"})
                conn.commit()
        return
    with open(out / LOCK_NAME, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def retried(study) -> set[int]:
    """The numbers of trials that were run again (their retry names them in ``retry_of``)."""
    return {t.user_attrs["retry_of"] for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("retry_of") is not None}


def counted(study) -> int:
    """Trials that count against the budget: those started, but not those interrupted (their retry counts
    instead). Enqueued trials (the defaults, a retry) count once a worker starts them."""
    from optuna.trial import TrialState

    again = retried(study)
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state != TrialState.WAITING and not t.user_attrs.get("interrupted") and t.number not in again)


def heartbeat_storage(url: str, *, heartbeat_s: float, log: Callable[[str], None], engine_kwargs: dict | None = None):
    """Optuna's RDB storage at ``url`` with heartbeats every ``heartbeat_s`` and :func:`on_stale_trial`.

    Optuna warns that heartbeats are meant for ``Study.optimize``; edgekit asks and tells (one lock around
    counting and asking) and beats itself (:func:`heartbeat`), so the warning is silenced here."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs or {}, heartbeat_interval=max(1, round(heartbeat_s)),
                                      grace_period=max(2, round(GRACE_HEARTBEATS * heartbeat_s)),
                                      heartbeat_stale_trial_callback=lambda study, trial: on_stale_trial(study, trial, log))


def on_stale_trial(study, trial, log: Callable[[str], None]) -> None:
    """A trial whose worker stopped sending heartbeats, just failed by this worker: run it again once."""
    worker = trial.user_attrs.get("worker", "?")
    if trial.user_attrs.get("retry_of") is not None:  # the second death on these parameters: they are the cause
        log(f"trial {trial.number} was interrupted again (worker {worker} stopped sending heartbeats); "
            "recorded as failed, not retried")
        return
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    log(f"trial {trial.number} was interrupted (worker {worker} stopped sending heartbeats); "
        "it runs again with the same parameters")


def recover_interrupted(study) -> None:
    """Fail the trials whose heartbeat lapsed, on any machine; each is run again once (:func:`on_stale_trial`)."""
    import optuna

    optuna.storages.fail_stale_trials(study)


@contextmanager
def heartbeat(study, storage, trial_number: int):
    """Record the trial's heartbeat every interval while the block runs (a thread: training and export
    hold this worker for minutes at a time)."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name),
                                                               trial_number)
    interval = storage.get_heartbeat_interval() or 0
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # a storage hiccup: the next beat tries again (the grace covers a few)
                pass

    storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, name=f"edgekit-heartbeat-{trial_number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
