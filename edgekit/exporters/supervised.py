"""``edgekit export`` under supervision: the export runs in a child process, so a converter that
crashes (a bad graph can SIGSEGV TFLite's or tf2onnx's native code) cannot take edgekit down.

The child runs :func:`edgekit.exporters.pipeline.export_model` and records which conversion it
is starting. When it dies from a signal, the parent records that (format, quant) as
``export_failed`` naming the signal and runs the export again without it, so every other
artifact is still made; the dead child's staging folder is removed by the next run. Errors the
child raises on purpose come back with their message and exit code.

Example:
    >>> manifest = export_supervised("runs/demo", ["tflite"], ["fp32"], "out", log=print)   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.artifact import Manifest
from edgekit.errors import EdgekitError, ModelLoadError, first_line
from edgekit.exporters import CALIBRATED
from edgekit.files import atomic_write_json
from edgekit.runtimes.process_tree import child_env, die_with_parent

FAULT_ENV = "EDGEKIT_FAULT_INJECT"  # "tflite:fp16": the child kills itself with SIGSEGV there (tests)


class ChildError(EdgekitError):
    """An error the export child raised on purpose, with the child's message and exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def export_supervised(model, formats: list[str], quants: list[str], out, *, log: Callable[[str], None],
                      progress: Callable[[str], None] | None = None, server: ExportServer | None = None,
                      **kwargs: Any) -> Manifest:
    """Like ``export_model``, in a child process; a converter crash becomes an export_failed artifact.
    ``log`` gets the child's lines, ``progress`` its ``"[k/N] exporting ..."`` steps.

    ``server``: an :class:`ExportServer` whose child serves this export and the next ones (one
    TensorFlow import for many exports, as ``edgekit tune`` makes); by default a child of its own."""
    failed: dict[tuple[str, str], str] = {}
    int8_in_child = False

    def route(line: str) -> None:
        if STEP not in line:
            return log(line)
        before, step = line.split(STEP, 1)  # after what native code wrote without a newline, if anything
        if before:
            log(before)
        if progress:
            progress(step)

    while True:
        with tempfile.TemporaryDirectory(prefix="edgekit-export-") as tmp:
            tmp = Path(tmp)
            options = kwargs.get("options")
            request = {"model": str(model), "formats": formats, "quants": quants, "out": str(out),
                       "kwargs": {**kwargs, "options": dataclasses.asdict(options) if options else None},
                       "failed_before": [[f, q, why] for (f, q), why in failed.items()],
                       "int8_in_child": int8_in_child}
            (tmp / "request.json").write_text(json.dumps(request))
            code = (server or ExportServer(serve=False)).run(tmp, route)
            reply = json.loads((tmp / "reply.json").read_text()) if (tmp / "reply.json").is_file() else None
            started = (tmp / "started").read_text().strip() if (tmp / "started").is_file() else None
        if reply is not None:
            if reply["ok"]:
                return Manifest.load(Path(out))
            if reply.get("interrupted"):
                raise KeyboardInterrupt
            raise ChildError(reply["error"], reply["exit_code"])
        sig = signal.Signals(-code).name if code < 0 else f"exit code {code}"
        if not started:
            raise ModelLoadError(f"edgekit's export process died ({sig}) before converting anything, loading {model}")
        fmt, quant = started.split(" ", 1)
        if fmt == "tflite" and quant in FULL_INTEGER and not int8_in_child:
            # the int8 calibration crashed the export child: again, with it in a child of its own, whose
            # crash is an error the int8 export answers with its float fallback (tflite.py)
            int8_in_child = True
            log(f"{fmt} {quant}: the converter crashed ({sig}); exporting again with int8 calibration isolated")
            continue
        if (fmt, quant) in failed:  # died again on a conversion already skipped: do not loop
            raise ModelLoadError(f"edgekit's export process died ({sig}) again after skipping {fmt} {quant}")
        failed[(fmt, quant)] = f"the {fmt} converter crashed ({sig}) converting to {quant}; the other artifacts were made"
        log(f"{fmt} {quant}: the converter crashed ({sig}); exporting the rest again without it")


FULL_INTEGER = CALIBRATED  # TFLite modes whose calibration runs the model in the converter
DONE = "\x00edgekit-export-done"  # the line a serving child prints after each request
STEP = "\x00edgekit-export-step "  # the prefix of a line saying which artifact the child starts


class ExportServer:
    """The export child, kept for several exports: TensorFlow is imported once (4 s of a small
    model's export). A crash ends the child; the next export starts a new one.

    Example:
        >>> with ExportServer() as server:                                                 # doctest: +SKIP
        ...     for run in runs:
        ...         export_supervised(run, ["tflite"], ["int8"], run / "export", log=print, server=server)
    """

    def __init__(self, serve: bool = True):
        self.serve = serve
        self.proc: subprocess.Popen | None = None
        self.stderr = None

    def __enter__(self) -> ExportServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, folder: Path, log: Callable[[str], None]) -> int:
        """Serve the request in ``folder``: its output lines to ``log``; 0, or the child's exit code
        (negative: the signal that killed it)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start(folder)
        self.stderr.seek(0, 2)
        mark = self.stderr.tell()
        if self.serve:
            try:
                self.proc.stdin.write(f"{folder}\n")
                self.proc.stdin.flush()
            except BrokenPipeError:  # the child died between two exports (killed from outside): a new one
                self._start(folder)
                mark = 0
                self.proc.stdin.write(f"{folder}\n")
                self.proc.stdin.flush()
        code = None
        try:
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                if line.endswith(DONE):  # after what native code wrote without a newline, if anything
                    if line[: -len(DONE)]:
                        log(line[: -len(DONE)])
                    code = 0
                    break
                log(line)
            if code is None:
                code = self.proc.wait()
        except BaseException:  # Ctrl-C: make sure the child stops too and cleans up, then stop
            try:
                self.proc.send_signal(signal.SIGINT)  # a terminal's Ctrl-C already sent it; a `kill -INT` did not
                self.proc.wait(timeout=60)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                self.proc.kill()
            self.close()
            raise  # the child's stderr is dropped: after a Ctrl-C it is clean-up noise
        reply = folder / "reply.json"
        if not (reply.is_file() and json.loads(reply.read_text()).get("interrupted")):
            self.stderr.seek(mark)  # what a converter said on stderr, passed on
            sys.stderr.write(self.stderr.read())
        if code != 0 or not self.serve:
            self.close()
        return code

    def _start(self, folder: Path) -> None:
        self.close()
        self.stderr = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "edgekit.exporters.supervised",
                                      "--serve" if self.serve else str(folder)],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1,
                                     stdin=subprocess.PIPE if self.serve else subprocess.DEVNULL, env=child_env())

    def close(self) -> None:
        """End the child (it exits when its input closes)."""
        if self.proc is not None:
            if self.proc.stdin:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


def _child(argv: list[str]) -> int:
    """``python -m edgekit.exporters.supervised FOLDER`` serves one request; ``--serve`` reads one
    folder per line from its input and prints :data:`DONE` after each, until its input closes."""
    from edgekit.interrupts import quiet_after_ctrl_c

    die_with_parent()  # an export whose CLI was killed stops converting too
    quiet_after_ctrl_c()
    if argv[1] != "--serve":
        return _serve_one(argv[1])
    for line in sys.stdin:
        _serve_one(line.strip())
        print(DONE, flush=True)
    return 0


def _serve_one(folder: str) -> int:
    from edgekit.exporters.tflite import CONVERT_HERE_ENV

    tmp = Path(folder)
    request = json.loads((tmp / "request.json").read_text())
    os.environ[CONVERT_HERE_ENV] = "0" if request.get("int8_in_child") else "1"
    from edgekit.exporters.base import ExportOptions

    if request["kwargs"].get("options") is not None:
        request["kwargs"]["options"] = ExportOptions(**request["kwargs"]["options"])
    fault = os.environ.get(FAULT_ENV)

    def on_start(fmt: str, quant: str) -> None:
        (tmp / "started").write_text(f"{fmt} {quant}")
        if fault == f"{fmt}:{quant}":
            os.kill(os.getpid(), signal.SIGSEGV)

    from edgekit.cli.output import quiet_tensorflow
    from edgekit.exporters.pipeline import export_model

    quiet_tensorflow()
    reply: dict[str, Any]
    try:
        export_model(request["model"], request["formats"], request["quants"], request["out"],
                     log=lambda line: print(line, flush=True), on_start=on_start,
                     progress=lambda step: print(STEP + step, flush=True),
                     failed_before={(f, q): why for f, q, why in request["failed_before"]},
                     **request["kwargs"])
        reply = {"ok": True}
    except KeyboardInterrupt:
        reply = {"ok": False, "interrupted": True}
    except EdgekitError as e:
        reply = {"ok": False, "error": str(e), "exit_code": e.exit_code}
    except Exception as e:  # a bug, not a crash of a converter: say so, as the CLI does
        reply = {"ok": False, "error": f"internal error: {first_line(e, with_type=True)} (please report it)", "exit_code": 3}
    atomic_write_json(tmp / "reply.json", reply)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv))
