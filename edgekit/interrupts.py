"""Ctrl-C that ends in one line, not in TensorFlow's clean-up tracebacks.

A KeyboardInterrupt can land inside an ``__init__`` of TensorFlow's C-API wrappers (for
instance ``ScopedTFImportGraphDefOptions`` while a converter imports a graph). The half-built
object is collected as the interrupt unwinds, its ``__del__`` fails on the attribute it never
got, and Python prints "Exception ignored in ... Traceback ..." to stderr. After a Ctrl-C
that is noise: edgekit is stopping and cleaning up on purpose. :func:`quiet_after_ctrl_c`
keeps Python's own Ctrl-C (a KeyboardInterrupt) and, from the moment it fires, silences
those "Exception ignored" reports. Before a Ctrl-C nothing changes.

Example:
    >>> quiet_after_ctrl_c()   # in a process's entry point, on the main thread   # doctest: +SKIP
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType


def _silent(_unraisable: object) -> None:
    """An unraisablehook that reports nothing."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    sys.unraisablehook = _silent
    raise KeyboardInterrupt


def quiet_after_ctrl_c() -> None:
    """Make SIGINT raise KeyboardInterrupt as usual and silence "Exception ignored" reports after it.

    Does nothing off the main thread (only it may set signal handlers) or when SIGINT already
    has a handler other than Python's default one (the caller chose what Ctrl-C does).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return
    signal.signal(signal.SIGINT, _interrupt)
