"""The processes a runtime started: found through /proc, so they can be measured and stopped.

Playwright starts Chromium in a process group of its own, so stopping a worker's group is
not enough to stop its browser; its descendants are found by parent id instead.

Example:
    >>> os.getpid() in descendants(os.getppid()) or True
    True
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...); empty where /proc is absent."""
    if not Path("/proc").is_dir():
        return []
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and every descendant, wherever their group is."""
    below = descendants(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in [pid, *below]:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


PARENT_ENV = "EDGEKIT_PARENT_PID"  # set by whoever starts a worker or an export child: see die_with_parent


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child that must not outlive this process (it calls :func:`die_with_parent`)."""
    return dict(os.environ, **extra, **{PARENT_ENV: str(os.getpid())})


def die_with_parent() -> None:
    """Make this process die when the one named by ``$EDGEKIT_PARENT_PID`` does (Linux), and exit
    now if it already has.

    A worker whose parent was killed (an agent stopped with SIGKILL, a CI job cancelled) would
    otherwise keep timing a model for as long as it was told to, eating a core of the machine
    that later measurements run on.
    """
    parent_pid = int(os.environ.pop(PARENT_ENV, "") or 0)  # popped: this process's own children get their own
    if not parent_pid:
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


def status_kb(pid: int, field: str) -> int | None:
    """A field of /proc/PID/status in kB (VmHWM, VmRSS), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
