"""Shared console helpers for the commands: one console, a status spinner on terminals."""

from __future__ import annotations

import contextlib
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


def quiet_tensorflow() -> None:
    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
