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


class Reporter:
    """What :func:`progress` yields. ``report("[k/N] what")`` moves the bar to step k of N and says what
    runs now; any other message only changes what it says. ``report.echo(line)`` prints a finished
    row's line: above the bar on a terminal, as it is in logs."""

    def __init__(self, title: str, bar=None, task=None, log_steps: bool = True):
        self.title, self.bar, self.task, self.log_steps = title, bar, task, log_steps

    def __call__(self, message: str) -> None:
        if self.bar is None:
            if self.log_steps:
                print(f"{self.title}: {message}", flush=True)
            return
        step = STEP.match(message)
        if step:
            self.bar.update(self.task, total=int(step[2]), completed=int(step[1]) - 1,
                            description=f"{self.title}: {step[3]}")
        else:
            self.bar.update(self.task, description=f"{self.title}: {message}")

    def echo(self, line: str, style: str | None = None) -> None:
        if self.bar is None:
            console().print(line, style=style, markup=False)
        else:
            self.bar.console.print(line, style=style, markup=False)


@contextlib.contextmanager
def progress(title: str, *, log_steps: bool = True):
    """Progress of long work, as people expect it: on a terminal rich's progress bar (steps done of the
    total, what runs now, time elapsed and left), in logs and CI one line per step (``log_steps``; off
    where each finished row already prints its own line with ``echo``). Yields a :class:`Reporter`.

    Example:
        >>> with progress("bench") as report:          # doctest: +SKIP
        ...     report("[1/4] running model_fp32.tflite on litert")
        ...     report.echo("model_fp32.tflite on litert: 0.29 ms")
    """
    if not sys.stdout.isatty():
        yield Reporter(title, log_steps=log_steps)
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
        yield Reporter(title, bar, bar.add_task(title, total=None))


def quiet_tensorflow() -> None:
    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
