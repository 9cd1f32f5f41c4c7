"""``edgekit package ARTIFACT --target web|android|ios|rpi --out DIR`` and ``edgekit serve DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

PACKAGE_HELP = """Package an exported model for a web page, an Android or iOS app, a Raspberry Pi or a microcontroller.

web takes a TF.js folder, a .tflite or an .onnx; android, ios and rpi need a .tflite file; mcu
needs a full-integer int8 .tflite (C++ sources for TFLite Micro). Labels and the
training preprocessing travel with the model (from the export's manifest, or --labels). A model
with several inputs and outputs is fed by name and shows every output; --data DATA.npz ships
samples for it.
An existing OUT is never half-overwritten.

Example: edgekit package runs/demo/export/model_fp32_tfjs --target web --out dist/web
"""

SERVE_HELP = """Serve a web package on 127.0.0.1 (Ctrl-C stops it).

Example: edgekit serve dist/web
"""


def package(
    artifact: Path = typer.Argument(..., help="An exported artifact: a .tflite file or a TF.js model folder."),
    target: str = typer.Option(..., "--target", "-t", help="web, android, ios, rpi or mcu."),
    out: Path = typer.Option(..., "--out", "-o", help="The package folder to write."),
    labels: Path = typer.Option(None, "--labels", help="Labels, one per line (default: from the export's run)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT (atomically)."),
    data: Path = typer.Option(None, "--data", help="Samples for a model with several inputs: an .npz keyed by input names."),
) -> int:
    from edgekit.cli.output import console
    from edgekit.package import TARGETS, package_artifact

    out = package_artifact(artifact, target, out, labels=labels, overwrite=overwrite, data=data)
    con = console()
    con.print(f"{target} package: {out} ({TARGETS[target][1]})")
    if target == "web":
        con.print(f"try it: edgekit serve {out}")
    elif target == "rpi":
        con.print(f"try it: python3 {out / 'run.py'} --sample 0")
    elif target == "mcu":
        con.print(f"build it with TFLite Micro for your board: {out / 'README.md'}")
    return 0


def serve(
    directory: Path = typer.Argument(..., help="A folder from `edgekit package --target web`."),
    port: int = typer.Option(8000, "--port", help="Port on 127.0.0.1 (the next free one if busy)."),
) -> int:
    from edgekit.cli.output import console
    from edgekit.package.serve import make_server

    server = make_server(directory, port=port)
    host, p = server.server_address[:2]
    console().print(f"serving {directory} at http://{host}:{p}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
