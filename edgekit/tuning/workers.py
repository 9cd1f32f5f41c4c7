"""Workers that share one study: the lock they count and create trials under, the trials that
count against the budget, and a trial whose worker on this machine died, run again once.

Example:
    >>> with locked(out):                          # doctest: +SKIP
    ...     recover_interrupted(study, out, print)
    ...     done = counted(study)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".tune.lock"


@contextmanager
def locked(out: Path):
    """One worker at a time counts and creates trials (workers on this machine share OUT)."""
    with open(out / LOCK_NAME, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def counted(study) -> int:
    """Trials that count against the budget: those started, but not those interrupted (their retry counts
    instead). Enqueued trials (the defaults, a retry) count once a worker starts them."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state != TrialState.WAITING and not t.user_attrs.get("interrupted"))


def recover_interrupted(study, out: Path, log) -> None:
    """A RUNNING trial whose worker on this machine is gone: mark it interrupted, retry its parameters."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker", "")
        w_host, _, pid = worker.rpartition(":")
        if w_host != host or not pid.isdigit() or alive(int(pid)):
            continue
        shutil.rmtree(out / "trials" / f"{t.number:04d}", ignore_errors=True)
        if t.user_attrs.get("retry_of") is not None:  # the second death on these parameters: they are the cause
            study._storage.set_trial_user_attr(
                t._trial_id, "failure", f"its worker died twice on these parameters (trials {t.user_attrs['retry_of']} "
                f"and {t.number}): out of memory, or a crash in a converter or runtime; not retried")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            log(f"trial {t.number} was interrupted again (worker {worker} is gone); recorded as failed, not retried")
            continue
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        log(f"trial {t.number} was interrupted (worker {worker} is gone); it runs again with the same parameters")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
