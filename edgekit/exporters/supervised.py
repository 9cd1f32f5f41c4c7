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
from edgekit.files import atomic_write_json
from edgekit.runtimes.process_tree import child_env, die_with_parent

FAULT_ENV = "EDGEKIT_FAULT_INJECT"  # "tflite:fp16": the child kills itself with SIGSEGV there (tests)


class ChildError(EdgekitError):
    """An error the export child raised on purpose, with the child's message and exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def export_supervised(model, formats: list[str], quants: list[str], out, *, log: Callable[[str], None],
                      **kwargs: Any) -> Manifest:
    """Like ``export_model``, in a child process; a converter crash becomes an export_failed artifact."""
    failed: dict[tuple[str, str], str] = {}
    while True:
        with tempfile.TemporaryDirectory(prefix="edgekit-export-") as tmp:
            tmp = Path(tmp)
            options = kwargs.get("options")
            request = {"model": str(model), "formats": formats, "quants": quants, "out": str(out),
                       "kwargs": {**kwargs, "options": dataclasses.asdict(options) if options else None},
                       "failed_before": [[f, q, why] for (f, q), why in failed.items()]}
            (tmp / "request.json").write_text(json.dumps(request))
            with open(tmp / "stderr.txt", "w+") as child_stderr:
                proc = subprocess.Popen([sys.executable, "-m", "edgekit.exporters.supervised", str(tmp)],
                                        stdout=subprocess.PIPE, stderr=child_stderr, text=True, bufsize=1,
                                        stdin=subprocess.DEVNULL, env=child_env())
                try:
                    for line in proc.stdout:
                        log(line.rstrip("\n"))
                    code = proc.wait()
                except BaseException:  # Ctrl-C: make sure the child stops too and cleans up, then stop
                    try:
                        proc.send_signal(signal.SIGINT)  # a terminal's Ctrl-C already sent it; a `kill -INT` did not
                        proc.wait(timeout=60)
                    except (subprocess.TimeoutExpired, ProcessLookupError):
                        proc.kill()
                    raise  # the child's stderr is dropped: after a Ctrl-C it is clean-up noise
                reply = json.loads((tmp / "reply.json").read_text()) if (tmp / "reply.json").is_file() else None
                started = (tmp / "started").read_text().strip() if (tmp / "started").is_file() else None
                if not (reply or {}).get("interrupted"):  # what a converter said on stderr, passed on
                    child_stderr.seek(0)
                    sys.stderr.write(child_stderr.read())
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
        if (fmt, quant) in failed:  # died again on a conversion already skipped: do not loop
            raise ModelLoadError(f"edgekit's export process died ({sig}) again after skipping {fmt} {quant}")
        failed[(fmt, quant)] = f"the {fmt} converter crashed ({sig}) converting to {quant}; the other artifacts were made"
        log(f"{fmt} {quant}: the converter crashed ({sig}); exporting the rest again without it")


def _child(folder: str) -> int:
    from edgekit.interrupts import quiet_after_ctrl_c

    die_with_parent()  # an export whose CLI was killed stops converting too
    quiet_after_ctrl_c()
    tmp = Path(folder)
    request = json.loads((tmp / "request.json").read_text())
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
    sys.exit(_child(sys.argv[1]))
