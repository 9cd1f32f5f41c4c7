"""``edgekit package``: the last step, a folder ready for a web page, a phone app or a Raspberry Pi.

Every package carries the model, ``labels.txt``, ``model_card.json`` (input and output spec,
labels, the training preprocessing, parity) and, where the run's data is known,
``samples.json`` (raw test samples with labels), so a deployed model gives the answer it gave
in Python. A package is built in a staging folder and renamed into place whole; an existing
OUT is never half-overwritten (``--overwrite`` swaps it atomically).

Example:
    >>> package_artifact("runs/demo/export/model_fp32_tfjs", "web", "dist/web")     # doctest: +SKIP
    >>> package_artifact("runs/demo/export/model_int8.tflite", "rpi", "dist/rpi")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from edgekit.errors import InputError, UsageError, suggest
from edgekit.files import check_writable_dir
from edgekit.package.spec import package_spec, raw_samples
from edgekit.runtimes import format_of_path

TEMPLATES = Path(__file__).parent / "templates"

# target -> (format it needs, what the package is)
TARGETS = {
    "web": ("tfjs", "a static web page running the model with TF.js (wasm) in the browser"),
    "android": ("tflite", "an assets folder and a Kotlin snippet for the LiteRT Interpreter"),
    "ios": ("tflite", "an assets folder and a Swift snippet for the TensorFlow Lite / LiteRT Interpreter"),
    "rpi": ("tflite", "a folder with a LiteRT + NumPy runner, pinned aarch64 requirements and a systemd unit"),
}

# The versions the Raspberry Pi runner was tested with (the host's pins: wheels exist for aarch64).
RPI_REQUIREMENTS = "ai-edge-litert==2.3.0\nnumpy==2.4.6\n# optional, for images: pillow>=10\n"


def package_artifact(artifact: str | Path, target: str, out: str | Path, *, labels: str | Path | None = None,
                     overwrite: bool = False) -> Path:
    """Build the ``target`` package of ``artifact`` in ``out``; returns ``out``."""
    if target not in TARGETS:
        raise UsageError(f"Unknown target '{target}'.{suggest(target, TARGETS)} Targets: {', '.join(TARGETS)}")
    artifact, out = Path(artifact), Path(out)
    if artifact.is_file() and artifact.name == "model.json":
        artifact = artifact.parent
    if not artifact.exists():
        raise InputError(f"{artifact} does not exist", hint="pass an artifact from an `edgekit export` folder")
    fmt = format_of_path(artifact)
    need = TARGETS[target][0]
    if fmt != need:
        flag = {"tfjs": "tfjs", "tflite": "tflite"}[need]
        raise UsageError(
            f"The {target} target needs a {'TF.js model folder' if need == 'tfjs' else '.tflite file'}, "
            f"and {artifact.name} is {'a ' + fmt + ' artifact' if fmt else 'not an artifact edgekit knows'}",
            hint=f"export one with `edgekit export MODEL --format {flag} --quant fp32` and package that",
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} already exists and is not empty", hint="pick another --out, or pass --overwrite")
    check_writable_dir(out, flag="--out")
    spec = package_spec(artifact, Path(labels) if labels else None)
    if fmt == "tfjs":
        from edgekit.tfjs_model import read_tfjs_model

        read_tfjs_model(artifact)  # refuse a broken or hostile folder before copying it anywhere
    staging = out.parent / f".{out.name}.edgekit-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        samples = raw_samples(spec)
        {"web": _web, "android": _mobile, "ios": _mobile, "rpi": _rpi}[target](artifact, staging, spec, samples, target)
        (staging / "labels.txt").write_text("\n".join(spec["labels"]) + "\n")
        (staging / "model_card.json").write_text(json.dumps(spec, indent=2))
        if samples:
            (staging / "samples.json").write_text(json.dumps(samples))
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _swap_into_place(staging: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.edgekit-old-{os.getpid()}"
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


def _web(artifact: Path, dst: Path, spec, samples, target) -> None:
    from edgekit.runtimes.js_env import js_dir
    from edgekit.runtimes.tfjs_browser import static_files
    from edgekit.tfjs_model import read_tfjs_model

    model = read_tfjs_model(artifact)
    (dst / "model").mkdir()
    shutil.copy2(model.json_path, dst / "model" / "model.json")
    for shard in model.shards:  # checked to lie inside the model's folder
        rel = shard.relative_to(model.dir.resolve())
        (dst / "model" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shard, dst / "model" / rel)
    (dst / "tfjs").mkdir()
    for url, f in static_files(js_dir()).items():  # the TF.js and wasm files from the installed npm packages
        if url.startswith("/tfjs/"):
            shutil.copy2(f, dst / "tfjs" / f.name)
    shutil.copy2(TEMPLATES / "web_index.html", dst / "index.html")
    (dst / "README.md").write_text(
        f"# {spec['artifact']} in the browser\n\nServe this folder over HTTP and open it (browsers refuse wasm from "
        "file://):\n\n    edgekit serve .\n\nor copy it to any static host. `index.html` loads TF.js "
        f"(wasm backend) from `tfjs/`, the model from `model/`, and applies the training preprocessing from "
        "`model_card.json`. Draw, upload an image, or run one of the samples.\n")


def _mobile(artifact: Path, dst: Path, spec, samples, target) -> None:
    assets = dst / "assets"
    assets.mkdir()
    shutil.copy2(artifact, assets / "model.tflite")
    shutil.copy2(TEMPLATES / f"{target}_README.md", dst / "README.md")
    (assets / "labels.txt").write_text("\n".join(spec["labels"]) + "\n")
    (assets / "model_card.json").write_text(json.dumps(spec, indent=2))


def _rpi(artifact: Path, dst: Path, spec, samples, target) -> None:
    shutil.copy2(artifact, dst / "model.tflite")
    shutil.copy2(TEMPLATES / "rpi_run.py", dst / "run.py")
    (dst / "requirements.txt").write_text(RPI_REQUIREMENTS)
    shutil.copy2(TEMPLATES / "rpi_edgekit-model.service", dst / "edgekit-model.service")
    shutil.copy2(TEMPLATES / "rpi_README.md", dst / "README.md")
