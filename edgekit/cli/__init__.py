"""The ``edgekit`` command line. Start-up imports typer and rich only: ``--help`` is instant.

Every command module is thin: it parses flags and calls the library, importing the heavy
stacks (TensorFlow, LiteRT) inside the command body.

Example:
    $ edgekit train cnn --data builtin:mnist --out runs/demo
    $ edgekit export runs/demo --format tflite --quant all --out runs/demo/export
    $ edgekit bench runs/demo/export --json runs/demo/bench.json
"""

from __future__ import annotations

import os
import sys

import typer

import edgekit

app = typer.Typer(
    name="edgekit",
    help="Take a Keras model from training to a device: train, export (TFLite, ONNX, TF.js), validate, benchmark per device profile.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"edgekit {edgekit.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """edgekit: train, export, validate and benchmark edge models."""


from edgekit.cli import agent as _agent  # noqa: E402
from edgekit.cli import bench as _bench  # noqa: E402
from edgekit.cli import check as _check  # noqa: E402
from edgekit.cli import export as _export  # noqa: E402
from edgekit.cli import inspect as _inspect  # noqa: E402
from edgekit.cli import package as _package  # noqa: E402
from edgekit.cli import profiles as _profiles  # noqa: E402
from edgekit.cli import train as _train  # noqa: E402
from edgekit.cli import tune as _tune  # noqa: E402


def _help(text: str) -> str:
    """Join the lines of each paragraph so that the terminal wraps them; keep indented lines
    (examples) and paragraph breaks as written."""
    out: list[str] = []
    for para in text.strip().split("\n\n"):
        lines, buf = [], []
        for ln in para.splitlines():
            if ln.startswith("  ") or ln.startswith("Example"):
                if buf:
                    lines.append(" ".join(buf))
                    buf = []
                lines.append(ln)
            else:
                buf.append(ln.strip())
        if buf:
            lines.append(" ".join(buf))
        out.append("\n\n".join(lines) if any(ln.startswith("  ") for ln in lines) else "\n".join(lines))
    return "\n\n".join(out)


app.command("train", help=_help(_train.HELP), no_args_is_help=True)(_train.train)
app.command("export", help=_help(_export.HELP), no_args_is_help=True)(_export.export)
app.command("bench", help=_help(_bench.HELP), no_args_is_help=True)(_bench.bench)
app.command("check", help=_help(_check.CHECK_HELP), no_args_is_help=True)(_check.check)
app.command("baseline", help=_help(_check.BASELINE_HELP), no_args_is_help=True)(_check.baseline)
app.command("inspect", help=_help(_inspect.HELP), no_args_is_help=True)(_inspect.inspect)
app.command("package", help=_help(_package.PACKAGE_HELP), no_args_is_help=True)(_package.package)
app.command("serve", help=_help(_package.SERVE_HELP), no_args_is_help=True)(_package.serve)
app.command("tune", help=_help(_tune.HELP), no_args_is_help=True)(_tune.tune)
app.command("agent", help=_help(_agent.HELP))(_agent.agent)
app.add_typer(_profiles.app, name="profiles")


def _fail(message: str, code: int) -> None:
    print(f"edgekit: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``edgekit`` console script: one line per error, never a traceback."""
    from edgekit.errors import EdgekitError
    from edgekit.interrupts import quiet_after_ctrl_c

    quiet_after_ctrl_c()
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        rv = command.main(args=args, prog_name="edgekit", standalone_mode=False)
    except typer.Exit as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # typer turns Ctrl-C into Exit(130)
            _fail("interrupted; nothing half-written was left behind", 130)
        sys.exit(e.exit_code)
    except typer.TyperException as e:  # typer's usage errors: unknown option, missing argument, ...
        if not e.format_message():  # no arguments: typer already printed the help
            sys.exit(e.exit_code)
        ctx = getattr(e, "ctx", None)
        where = f"'{ctx.command_path} --help'" if ctx is not None else "'edgekit --help'"
        _fail(f"{e.format_message()} (see {where})", 2)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted; nothing half-written was left behind", 130)
    except EdgekitError as e:
        _fail(str(e), e.exit_code)
    except Exception as e:
        if os.environ.get("EDGEKIT_DEBUG"):
            raise
        _fail(f"internal error: {type(e).__name__}: {e} (set EDGEKIT_DEBUG=1 for the traceback, and please report it)", 3)
    if rv == 130:  # typer turned Ctrl-C into a returned 130 (no edgekit command returns it itself)
        _fail("interrupted; nothing half-written was left behind", 130)
    sys.exit(rv if isinstance(rv, int) else 0)
