"""The error types users see.

Every error edgekit raises on purpose is an :class:`EdgekitError`: the CLI prints its
message on one line and exits with its ``exit_code``, never with a traceback. Messages
say what happened and how to fix it, in the user's words.

Example:
    >>> raise InputError("model.tflite does not exist", hint="check the path")
    Traceback (most recent call last):
    edgekit.errors.InputError: model.tflite does not exist (check the path)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgekitError(Exception):
    """Base class: a problem edgekit can explain to the user. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class UsageError(EdgekitError):
    """A flag or argument value that edgekit does not accept."""


class InputError(EdgekitError):
    """A file, folder or data set that is missing, unreadable or of the wrong shape."""


class ModelLoadError(InputError):
    """A model file that cannot be read as the format it claims to be."""


class ShapeError(InputError):
    """Data whose shape or dtype does not fit the model."""


class ExportError(EdgekitError):
    """A converter failed on a model it was given. Exit code 1: the input was valid."""

    exit_code = 1


class ValidationError(EdgekitError):
    """An exported artifact ran but disagrees with its source beyond tolerance."""

    exit_code = 1


class TrainingFailed(EdgekitError):
    """Training ran but did not learn what it should (NaN loss, validation at chance...). Exit code 1."""

    exit_code = 1


class RuntimeFailure(EdgekitError):
    """A runtime crashed, hung or refused an artifact while running it."""

    exit_code = 1


def first_line(e: BaseException, *, with_type: bool = False, limit: int = 300) -> str:
    """The first meaningful line of an exception's message (rules of ``=`` skipped), for one-line errors.

    Example:
        >>> first_line(ValueError("bad shape\\nmore detail"), with_type=True)
        'ValueError: bad shape'
        >>> first_line(RuntimeError())
        'RuntimeError'
    """
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not set(ln.strip()) <= {"="}]
    if not lines:
        return type(e).__name__
    return f"{type(e).__name__}: {lines[0][:limit]}" if with_type else lines[0][:limit]


def suggest(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``.

    Example:
        >>> suggest("tflit", ["tflite", "onnx"])
        " Did you mean 'tflite'?"
    """
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def parse_choices(value: str, choices: Iterable[str], *, what: str, flag: str,
                  all_means: Iterable[str] | None = None) -> list[str]:
    """Split a comma list such as ``"fp32,int8"`` and check each name; ``all`` means every one
    (or ``all_means``, where some choices are made only on request).

    Example:
        >>> parse_choices("fp32,int8", ["fp32", "fp16", "int8"], what="quant mode", flag="--quant")
        ['fp32', 'int8']
    """
    choices = list(choices)
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    if not names:
        raise UsageError(f"{flag} is empty. Choose from: {', '.join(choices)}, or all.")
    if "all" in names:
        return list(all_means) if all_means is not None else choices
    for name in names:
        if name not in choices:
            raise UsageError(
                f"Unknown {what} '{name}' for {flag}.{suggest(name, choices)} "
                f"Choose from: {', '.join(choices)}, or all."
            )
    return list(dict.fromkeys(names))
