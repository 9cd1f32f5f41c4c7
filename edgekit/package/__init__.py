"""``edgekit package``: the last step, a folder ready for a web page, a phone app, a Raspberry Pi or a
microcontroller (:mod:`edgekit.package.mcu`).

Every package carries the model, ``labels.txt``, ``model_card.json`` (every input and output by
name with the artifact's tensor names, shapes, dtypes and int8 parameters, labels, the training
preprocessing, parity) and, where the run's data is known (or ``data`` is given for a model with
several inputs), ``samples.json`` (raw test samples with labels), so a deployed model gives the
answer it gave in Python. A model with several inputs and outputs is fed by name and every output
(head) is shown. A package is built in a staging folder and renamed into place whole; an existing
OUT is never half-overwritten (``--overwrite`` swaps it atomically).

Example:
    >>> package_artifact("runs/demo/export/model_fp32_tfjs", "web", "dist/web")     # doctest: +SKIP
    >>> package_artifact("runs/demo/export/model_int8.tflite", "rpi", "dist/rpi")   # doctest: +SKIP
    >>> package_artifact("runs/demo/export/model_int8.tflite", "mcu", "dist/mcu")   # doctest: +SKIP
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

# target -> (formats it takes, what the package is)
TARGETS = {
    "web": (("tfjs", "tflite", "onnx"), "a static web page running the model in the browser, on wasm: TF.js for a TF.js "
            "folder, LiteRT.js for a .tflite, ONNX Runtime Web for an .onnx"),
    "android": (("tflite",), "an assets folder and a Kotlin snippet for the LiteRT Interpreter"),
    "ios": (("tflite",), "an assets folder and a Swift snippet for the TensorFlow Lite / LiteRT Interpreter"),
    "rpi": (("tflite",), "a folder with a LiteRT + NumPy runner, pinned aarch64 requirements and a systemd unit"),
    "mcu": (("tflite",), "C++ sources for TFLite Micro: the model as a C array, a resolver with exactly its "
            "operators, the measured arena size, and a main.cc that runs one sample"),
}
# The web page's engine for each format, and the npm package files it ships (js/node_modules).
WEB_ENGINES = {"tfjs": "tfjs", "tflite": "litert", "onnx": "ort"}

# The versions the Raspberry Pi runner was tested with (the host's pins: wheels exist for aarch64).
RPI_REQUIREMENTS = "ai-edge-litert==2.3.0\nnumpy==2.4.6\n# optional, for images: pillow>=10\n"


def package_artifact(artifact: str | Path, target: str, out: str | Path, *, labels: str | Path | None = None,
                     overwrite: bool = False, data: str | Path | None = None) -> Path:
    """Build the ``target`` package of ``artifact`` in ``out``; returns ``out``.

    ``data``: an ``.npz`` keyed by input names whose test split gives the samples of a model with
    several inputs (a trained single-input model takes its samples from its run's data).
    """
    if target not in TARGETS:
        raise UsageError(f"Unknown target '{target}'.{suggest(target, TARGETS)} Targets: {', '.join(TARGETS)}")
    artifact, out = Path(artifact), Path(out)
    if artifact.is_file() and artifact.name == "model.json":
        artifact = artifact.parent
    if not artifact.exists():
        raise InputError(f"{artifact} does not exist", hint="pass an artifact from an `edgekit export` folder")
    fmt = format_of_path(artifact)
    takes = TARGETS[target][0]
    if fmt not in takes:
        what = {"tfjs": "a TF.js model folder", "tflite": "a .tflite file", "onnx": "an .onnx file", "keras": "a Keras model"}
        needs = " or ".join(what[f] for f in takes)
        raise UsageError(
            f"The {target} target needs {needs}, "
            f"and {artifact.name} is {what.get(fmt, 'not an artifact edgekit knows')}",
            hint=f"export one with `edgekit export MODEL --format {takes[0]} --quant fp32` and package that",
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} already exists and is not empty", hint="pick another --out, or pass --overwrite")
    check_writable_dir(out, flag="--out")
    if target == "mcu":  # what a microcontroller cannot run is refused before anything is read or written
        from edgekit.package.mcu import check_runs_on_tflm

        check_runs_on_tflm(artifact)
    spec = package_spec(artifact, Path(labels) if labels else None)
    if data is not None and spec["data"]:
        raise UsageError(f"--data ships samples for a model without a training run; this model's samples come from "
                         f"its run's data ({spec['data']})", hint="drop --data")
    if fmt == "tfjs":
        from edgekit.tfjs_model import read_tfjs_model

        read_tfjs_model(artifact)  # refuse a broken or hostile folder before copying it anywhere
    staging = out.parent / f".{out.name}.edgekit-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        samples = raw_samples(spec, data=Path(data) if data else None)
        {"web": _web, "android": _mobile, "ios": _mobile, "rpi": _rpi, "mcu": _mcu}[target](artifact, staging, spec,
                                                                                           samples, target)
        if spec["labels"]:
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
    from edgekit.runtimes.browser import engine_files
    from edgekit.runtimes.js_env import js_dir

    fmt = format_of_path(artifact)
    engine = WEB_ENGINES[fmt]
    (dst / "model").mkdir()
    if fmt == "tfjs":
        from edgekit.tfjs_model import read_tfjs_model

        model = read_tfjs_model(artifact)
        shutil.copy2(model.json_path, dst / "model" / "model.json")
        for shard in model.shards:  # checked to lie inside the model's folder
            rel = shard.relative_to(model.dir.resolve())
            (dst / "model" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shard, dst / "model" / rel)
        spec["model_file"] = "model/model.json"
    else:
        spec["model_file"] = f"model/model.{fmt}"
        shutil.copy2(artifact, dst / spec["model_file"])
    spec["engine"] = engine
    for url, f in _web_engine_files(engine, js_dir(), engine_files).items():  # from the installed npm packages
        (dst / url).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst / url)
    shutil.copy2(TEMPLATES / "web_index.html", dst / "index.html")
    engine_name, folder = {"tfjs": ("TF.js (wasm backend)", "tfjs/"), "litert": ("LiteRT.js (wasm, XNNPACK)", "litertjs/"),
                           "ort": ("ONNX Runtime Web (wasm)", "ort/")}[engine]
    (dst / "README.md").write_text(
        f"# {spec['artifact']} in the browser\n\nServe this folder over HTTP and open it (browsers refuse wasm from "
        f"file://):\n\n    edgekit serve .\n\nor copy it to any static host. `index.html` loads {engine_name} from "
        f"`{folder}`, the model from `{spec['model_file']}`, and applies the training preprocessing from "
        "`model_card.json` (and the int8 scale and zero point of a full-integer model). Draw, upload an image, or run "
        "one of the samples. `engine/` holds the adapter edgekit's own browser runtime uses for this engine.\n")


def _web_engine_files(engine: str, jsd: Path, engine_files) -> dict[str, Path]:
    """Package path -> file: the engine's adapter and its npm files, without the test page or runner,
    and for LiteRT.js only the single-threaded builds the page loads (with and without relaxed SIMD)."""
    out = {}
    for url, f in engine_files(engine, jsd).items():
        if url in ("/", "/src/runner-core.mjs"):
            continue
        if url.startswith("/litertjs/core/wasm/") and not f.name.startswith(("litert_wasm_internal", "litert_wasm_compat")):
            continue
        out[f"engine/{f.name}" if url.startswith("/src/engines/") else url.lstrip("/")] = f
    return out


def _mobile(artifact: Path, dst: Path, spec, samples, target) -> None:
    assets = dst / "assets"
    assets.mkdir()
    shutil.copy2(artifact, assets / "model.tflite")
    (dst / "README.md").write_text((TEMPLATES / f"{target}_README.md").read_text() + _io_section(spec, target)
                                   + (_detector_section(spec, target) if spec.get("task") == "detection" else ""))
    if spec["labels"]:
        (assets / "labels.txt").write_text("\n".join(spec["labels"]) + "\n")
    (assets / "model_card.json").write_text(json.dumps(spec, indent=2))


def _rpi(artifact: Path, dst: Path, spec, samples, target) -> None:
    shutil.copy2(artifact, dst / "model.tflite")
    shutil.copy2(TEMPLATES / "rpi_run.py", dst / "run.py")
    (dst / "requirements.txt").write_text(RPI_REQUIREMENTS)
    shutil.copy2(TEMPLATES / "rpi_edgekit-model.service", dst / "edgekit-model.service")
    shutil.copy2(TEMPLATES / "rpi_README.md", dst / "README.md")


def _mcu(artifact: Path, dst: Path, spec, samples, target) -> None:
    from edgekit.package.mcu import write_mcu_package

    write_mcu_package(artifact, dst, spec, samples)


def _detector_section(spec, target: str) -> str:
    """A detector's README part: its four outputs and the loop that draws them."""
    nms = spec.get("nms") or {}
    k = nms.get("max_detections", "K")
    quantized = any(o.get("quantization") for o in spec["outputs"])
    deq = (" Its outputs are int8: dequantize each (`(q - zero_point) * scale`, the table above) before reading them, "
           "`count` and `classes` too." if quantized else "")
    loop = {"android": f"""```kotlin
// after interpreter.runSignature(inputs, outputs): boxes [1][{k}][4], scores [1][{k}], classes [1][{k}], count [1]
val n = (outputs["count"] as FloatArray)[0].roundToInt()
for (i in 0 until n) {{
    val (x0, y0, x1, y1) = boxes[0][i]                 // 0..1 of the image
    val label = labels[classes[0][i].roundToInt()]
    canvas.drawRect(x0 * bitmap.width, y0 * bitmap.height, x1 * bitmap.width, y1 * bitmap.height, boxPaint)
    canvas.drawText("$label ${{"%.2f".format(scores[0][i])}}", x0 * bitmap.width, y0 * bitmap.height - 4, textPaint)
}}
```""", "ios": f"""```swift
// after invoke: boxes [1, {k}, 4], scores [1, {k}], classes [1, {k}], count [1] (Float32 arrays)
let n = Int(count[0].rounded())
for i in 0..<n {{
    let rect = CGRect(x: CGFloat(boxes[4*i]) * size.width, y: CGFloat(boxes[4*i+1]) * size.height,
                      width: CGFloat(boxes[4*i+2] - boxes[4*i]) * size.width,
                      height: CGFloat(boxes[4*i+3] - boxes[4*i+1]) * size.height)
    let label = labels[Int(classes[i].rounded())]
    context.stroke(rect)                                          // the box, in the image's points
    (label + String(format: " %.2f", scores[i]) as NSString).draw(at: rect.origin, withAttributes: attrs)
}}
```"""}[target]
    return (f"\n## A detector: four outputs, NMS inside\n\n"
            f"Non-max suppression ran inside the model (at most {k} detections, IoU {nms.get('iou', '-')}, "
            f"lowest score {nms.get('score', '-')}). The outputs, fixed in size:\n\n"
            f"- `boxes` [1, {k}, 4]: `[x0, y0, x1, y1]` in 0..1 of the input image's width and height, best first\n"
            f"- `scores` [1, {k}]: the class's score\n- `classes` [1, {k}]: the class id, an index into `labels.txt`\n"
            f"- `count` [1]: how many of the {k} slots hold a detection (the rest are zeros)\n\n"
            f"Bind them by name (the signature's), not by position.{deq} Draw them over the image:\n\n{loop}\n")


def _io_section(spec, target: str) -> str:
    """The README part that lists every input and output: bind them by signature name."""
    def rows(ts):
        return "\n".join(f"| {t['name']} | `{t['artifact_name']}` | {t['shape'][1:]} | {t['artifact_dtype']} | "
                         + (f"scale {t['quantization']['scale']:.6g}, zero point {t['quantization']['zero_point']}"
                            if t.get("quantization") else "-") + f" | {t.get('kind', '')} |" for t in ts)

    call = {"android": "`interpreter.runSignature(inputs, outputs)` with maps keyed by these names",
            "ios": "`try interpreter.signatureRunner(with: \"serving_default\")`, then `invoke(with:)` with "
                   "inputs keyed by these names"}[target]
    head = "| name | tensor | shape | dtype | int8 | kind |\n|---|---|---|---|---|---|\n"
    return (f"\n## Inputs and outputs\n\n"
            "The snippet above takes tensor 0 in and out. A model with several inputs or outputs binds its tensors "
            f"by the names of its `serving_default` signature, never by position (the converter reorders and "
            f"renames them): {call}. "
            "Quantize a float input and dequantize an output with the scale and zero point below where given.\n\n"
            f"Inputs:\n\n{head}{rows(spec['inputs'])}\n\nOutputs:\n\n{head}{rows(spec['outputs'])}\n")
