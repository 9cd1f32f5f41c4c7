"""Shared console helpers for the commands: one console, a status spinner and a progress bar on terminals."""

from __future__ import annotations

import contextlib
import re
import sys


def console(width: int | None = None):
    """A rich console; ``width`` sets a minimum width for wide tables in pipes and logs."""
    from rich.console import Console

    if width is None:
        return Console(highlight=False, soft_wrap=True)
    import shutil

    return Console(highlight=False, width=max(width, shutil.get_terminal_size((width, 24)).columns))


def status(message: str):
    """A transient spinner on a terminal; nothing in logs and pipes."""
    if sys.stdout.isatty():
        return console().status(message)
    return contextlib.nullcontext()


STEP = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")  # "[3/19] running model_int8.tflite on litert ..."


@contextlib.contextmanager
def progress(title: str):
    """Progress of long work, as people expect it: on a terminal rich's progress bar (steps done of the
    total, what runs now, time elapsed and left), in logs and CI one line per step. Yields the function
    to report with: a message ``"[k/N] what"`` moves the bar to step k of N, any other message
    only changes what it says.

    Example:
        >>> with progress("bench") as report:          # doctest: +SKIP
        ...     report("[1/4] running model_fp32.tflite on litert")
    """
    if not sys.stdout.isatty():
        yield lambda s: print(f"{title}: {s}", flush=True)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console(), transient=True) as bar:
        task = bar.add_task(title, total=None)

        def report(message: str) -> None:
            step = STEP.match(message)
            if step:
                bar.update(task, total=int(step[2]), completed=int(step[1]) - 1, description=f"{title}: {step[3]}")
            else:
                bar.update(task, description=f"{title}: {message}")

        yield report


def quiet_tensorflow() -> None:
    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
