"""Shared console helpers for the commands: one console, a status spinner on terminals."""

from __future__ import annotations

import contextlib
import sys


def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def status(message: str):
    """A transient spinner on a terminal; nothing in logs and pipes."""
    if sys.stdout.isatty():
        return console().status(message)
    return contextlib.nullcontext()


def quiet_tensorflow() -> None:
    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
