"""``edgekit export``: load the source, convert to every (format, quant), run each artifact
against the source, and write ``manifest.json``.

Artifacts are written in a staging folder inside OUT and moved into place only when whole;
bad input (exit 2) leaves OUT as it was. A converter failure or a failed parity check is
recorded as a failure in the manifest and makes the command exit 1, never a success.

Example:
    >>> manifest = export_model("runs/demo", ["tflite"], ["fp32", "int8"], "runs/demo/export")  # doctest: +SKIP
    >>> [a.status for a in manifest.artifacts]                                                  # doctest: +SKIP
    ['ok', 'ok']
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit import status
from edgekit.artifact import Manifest
from edgekit.detection.export import with_nms_options
from edgekit.errors import EdgekitError, ExportError, UsageError
from edgekit.exporters import EXPORTERS, get_exporter
from edgekit.exporters.base import ExportOptions
from edgekit.exporters.int8_search import mix_for_speed, repair_within_budget
from edgekit.exporters.validation import ParityCase, validate
from edgekit.files import check_writable_dir
from edgekit.io_spec import rows
from edgekit.model_loading import load_source
from edgekit.parity import is_classifier, is_detections, named, output_kind
from edgekit.run_record import tool_versions
from edgekit.source_model import SourceModel


def export_model(
    model: str | Path,
    formats: list[str],
    quants: list[str],
    out: str | Path,
    *,
    calib: str | None = None,
    options: ExportOptions | None = None,
    parity_samples: int = 200,
    min_agreement: float | None = None,
    safe_mode: bool = True,
    log: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
    on_start: Callable[[str, str], None] | None = None,
    failed_before: dict[tuple[str, str], str] | None = None,
) -> Manifest:
    """Export ``model`` to each format x quant into ``out``; returns the written manifest. ``log`` gets a
    line per artifact made; ``progress`` gets ``"[k/N] exporting FORMAT QUANT"`` as each one starts."""
    options = options or ExportOptions()
    out = Path(out)
    plan = _plan(formats, quants)
    options.validate()
    if options.opset is not None and "onnx" in formats:
        from edgekit.exporters.onnx_opset import check_opset

        check_opset(options.opset)
    if "tfjs" in formats:  # TF.js artifacts are validated in Node: say so before converting anything
        from edgekit.runtimes.js_env import js_dir, node_binary

        node_binary()
        js_dir()
    check_writable_dir(out, flag="--out")
    if progress:
        progress(f"loading {model}")
    source = load_source(model, safe_mode=safe_mode)
    try:
        loaded = source
        source = with_nms_options(source, options)
        if options.nms == "off":
            shapes = ", ".join(f"{o.name} {(1, *o.shape)}" for o in source.outputs)
            log(f"note: --nms off: the artifacts return {shapes}, one row per grid cell; the app keeps each box's "
                "best class, drops those under its score threshold and runs NMS (docs/formats.md)")
        _fix_input_shapes(source, options.input_shape, plan)
        calibration, parity_inputs, data_note, parity_labels = _data_for(source, calib, plan, parity_samples,
                                                                         options.calib_samples)
        created_out = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(out)
        staging = out / f".edgekit-staging-{os.getpid()}"
        staging.mkdir(exist_ok=True)
        try:
            reference = source.predict(parity_inputs)
            classifier = is_classifier(reference)
            case = ParityCase(parity_inputs, reference, parity_labels, classifier, min_agreement)
            classes = _predicted_classes(reference) if classifier else None
            if classes == 1 and rows(parity_inputs) > 1:
                log(f"note: on the parity inputs ({data_note}) the source model predicts one class for all "
                    f"{rows(parity_inputs)}: top-1 agreement cannot tell a working export from one that always answers "
                    "that class (max diff and cosine still compare the scores); pass --calib DATA with real inputs")
            artifacts = []
            for k, (fmt, quant) in enumerate(plan, 1):
                if failed_before and (fmt, quant) in failed_before:  # crashed an earlier attempt (supervised.py)
                    from edgekit.artifact import Artifact

                    art = Artifact(format=fmt, quant=quant, path="", status=status.EXPORT_FAILED,
                                   error=failed_before[(fmt, quant)], seconds=0.0)
                    artifacts.append(art)
                    log(_summary_line(art, out))
                    continue
                if progress:
                    progress(f"[{k}/{len(plan)}] exporting {fmt} {quant}")
                if on_start:
                    on_start(fmt, quant)
                art = _export_one(get_exporter(fmt), source, staging, quant, calibration, options, case)
                if quant == "mixed" and art.path and (staging / art.path).is_file():
                    art = mix_for_speed(art, source, staging, calibration, options, case, log)
                if options.max_drop is not None and quant == "int8" and art.parity:
                    art = repair_within_budget(art, source, staging, calibration, options, case, log)
                artifacts.append(art)
                log(_summary_line(art, out))
            # Only now, with every artifact whole, do files move into OUT.
            for art in artifacts:
                if art.path and (staging / art.path).exists():
                    _move_into_place(staging / art.path, out / art.path)
            from edgekit.macs import graph_macs

            manifest = Manifest(
                source={**source.describe(), "path": str(Path(source.path).resolve()),
                        "path_from_manifest": os.path.relpath(Path(source.path).resolve(), out.resolve()),
                        "data": data_note, "classifier": classifier, "parity_classes": classes,
                        "macs": graph_macs(source), "layers": _layer_names(source), **_detector_info(source)},
                artifacts=artifacts,
                io=model_io(source, reference),
                run=_run_info(source),
                versions=tool_versions("tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert", "onnx", "onnxruntime",
                                       "tf2onnx", "tensorflowjs", "numpy"),
            )
            if (out / "manifest.json").is_file():
                try:
                    old = Manifest.load(out)
                    old.artifacts = [a for a in old.artifacts if a.path and (out / a.path).exists()]
                    manifest = old.merge(manifest)
                except EdgekitError:
                    pass  # an unreadable old manifest is replaced
            if source is not loaded:  # NMS set at export: the Keras model as exported is the reference bench runs
                tmp_model = out / f".{AS_EXPORTED}.partial-{os.getpid()}.keras"
                source.keras_model.save(str(tmp_model))
                os.replace(tmp_model, out / AS_EXPORTED)
                manifest.source["as_exported"] = AS_EXPORTED
            manifest.save(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created_out and not any(out.iterdir()):
                out.rmdir()
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return manifest
    finally:
        source.close()


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders left in OUT by an export that died (a converter crash kills the
    process before it can clean up); a folder of a process still running is left alone."""
    for d in out.glob(".edgekit-staging-*"):
        try:
            pid = int(d.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


def _move_into_place(src: Path, dst: Path) -> None:
    """Rename ``src`` onto ``dst``; a folder artifact (TF.js) replaces an older folder of that name."""
    if src.is_dir() and dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def _plan(formats: list[str], quants: list[str]) -> list[tuple[str, str]]:
    plan = [(f, q) for f in formats for q in quants if q in EXPORTERS[f][2]]
    if not plan:
        raise UsageError(f"None of the quant modes {', '.join(quants)} applies to {', '.join(formats)}")
    return plan


def calibration_data(source: SourceModel, calib: str | None, calib_samples: int = 200):
    """``(calibration inputs, a note saying what they are)`` for int8, as ``export`` picks them."""
    calibration, _, _, _ = _data_for(source, calib, [("tflite", "int8")], 1, calib_samples)
    spec = calib or ((source.run.data or {}).get("spec") if source.run else None)
    return calibration, f"{spec}, {rows(calibration)} samples"


def _data_for(source: SourceModel, calib: str | None, plan, parity_samples: int, calib_samples: int = 200):
    """Calibration inputs (train split) as the model's call takes them, held-out parity inputs (test
    split) by input name, a note, and the parity inputs' labels where the data has them (for ``max_drop``)."""
    from edgekit.data.inputs import model_inputs

    run = source.run
    spec = calib or (run.data.get("spec") if run else None)
    needs = [f"{f} {q}" for f, q in plan if q in get_exporter(f).needs_calibration]
    if spec is None and needs:
        takes = (f"an .npz with arrays {', '.join(t.name for t in source.inputs)}, or uniform:LO,HI"
                 if len(source.inputs) > 1 else
                 "an .npz, an image folder, a .csv, builtin:digits, or uniform:LO,HI for generated inputs")
        raise UsageError(f"{', '.join(needs)} needs calibration data", hint=f"pass --calib DATA ({takes})")
    # a bare model: --calib data is taken as model-ready inputs; the run's own data: exactly the
    # preprocessing training used; other data: that data set's own preprocessing
    own = run is not None and spec == run.data.get("spec")
    data = model_inputs(spec, source.inputs, prep=run.prep if own else None, use_data_prep=run is not None and not own,
                        image_size=(run.prep.image_size or [None])[0] if run else None, train_rows=calib_samples,
                        test_rows=parity_samples, keras_model=source.keras_model)
    calibration = data.train
    return calibration, data.test, data.note, data.labels.get("y")


def _fix_input_shapes(source: SourceModel, text: str | None, plan) -> None:
    """``--input-shape`` fixes unknown non-batch dims; without it, TFLite and TF.js refuse such an input in one line."""
    from edgekit.io_spec import parse_input_shapes, unknown_dims

    own = [str(t.name).split(":")[0] for t in getattr(source.keras_model, "inputs", None) or []]
    aliases = {k: s.name for k, s in zip(own, source.inputs, strict=False) if k != s.name}  # the Keras name of 'input'
    shapes = parse_input_shapes(text, source.inputs, aliases) if text else {}
    open_dims = [s for s in unknown_dims(source.inputs) if s.name not in shapes or None in shapes[s.name]]
    fixed_formats = sorted({f for f, _ in plan} & {"tflite", "tfjs"})
    if open_dims and fixed_formats:
        s = open_dims[0]
        example = ",".join("128" if d is None else str(d) for d in s.shape)
        name = next((k for k, v in aliases.items() if v == s.name), s.name)
        verb = "needs" if len(fixed_formats) == 1 else "need"
        raise UsageError(f"input '{name}' has an unknown dimension ({', '.join('None' if d is None else str(d) for d in s.shape)} "
                         f"after the batch axis): {' and '.join(fixed_formats)} {verb} it fixed, and parity a shape to run at",
                         hint=f"pass --input-shape {name}={example}; ONNX keeps it dynamic")
    source.fix_shapes(shapes)


def _export_one(exporter, source, staging, quant, calibration, options, case: ParityCase):
    from edgekit.artifact import Artifact

    t0 = time.perf_counter()
    try:
        art = exporter.export(source, staging, quant=quant, calibration=calibration, options=options)
    except ExportError as e:
        return Artifact(format=exporter.name, quant=quant, path="", status=status.EXPORT_FAILED, error=str(e),
                        seconds=round(time.perf_counter() - t0, 2))
    art.seconds = round(time.perf_counter() - t0, 2)
    return validate(art, staging / art.path, quant, case)


def _predicted_classes(reference) -> int:
    """How many classes the source predicts on the parity inputs (the fewest over probability outputs)."""
    return min(len(np.unique(o.reshape(len(o), -1).argmax(1))) for o in named(reference).values() if is_classifier(o))


def model_io(source: SourceModel, reference: dict) -> dict:
    """The source model's IO spec as a manifest keeps it: every input and output by name, shape and
    dtype, each output with the kind its values on the parity inputs show (:func:`parity.output_kind`)."""
    return {"inputs": [t.to_dict() for t in source.inputs],
            "outputs": [{**t.to_dict(), "kind": "detections" if is_detections(reference) else output_kind(reference[t.name])}
                        for t in source.outputs]}


AS_EXPORTED = "source_as_exported.keras"  # a detector whose NMS the export set, as it was exported


def _detector_info(source: SourceModel) -> dict:
    """A detector's NMS settings, as its artifacts carry them (the manifest, model cards, the web page)."""
    if source.framework != "keras3" or source.keras_model is None:
        return {}
    from edgekit.detection.postprocess import settings_of

    settings = settings_of(source.keras_model)
    return {"nms": settings} if settings else {}


def _run_info(source: SourceModel):
    if source.run is None:
        return None
    r = source.run
    return {"labels": r.labels, "preprocessing": r.preprocessing, "data": r.data, "input_shape": r.input_shape, "task": r.task}


def _summary_line(art, out: Path) -> str:
    size = _human_size(art.size_bytes) if art.size_bytes else "-"
    if art.status == status.EXPORT_FAILED:
        return f"{art.format} {art.quant}: export failed after {art.seconds:.1f}s: {art.error}"
    p = art.parity or {}
    if p.get("kind") == "detections":
        line = (f"detections: {p['same_detections']:.3f} the source's (IoU >= 0.99), mAP@0.5 vs source "
                f"{p['map50_vs_source']:.3f}, max box diff {p['max_abs_diff']:.2g}")
        verdict = "export success" if art.ok else "export FAILED validation"
        return (f"{art.format} {art.quant}: {verdict} {art.seconds:.1f}s, {size}, {line}, saved as '{out / art.path}'"
                + ("" if art.ok else f": {art.error}"))
    parity = (f"agreement {p.get('top1_agreement', float('nan')):.3f}, max diff {p.get('max_abs_diff', float('nan')):.2g}, "
              f"cosine {p.get('cosine', float('nan')):.4f}") if p else "not run"
    if p.get("outputs"):
        parity += f" ({len(p['outputs'])} outputs, worst: {p['worst_output']})"
    if art.details.get("float_ops"):
        ops = art.details["float_ops"]
        parity += f"; {sum(ops.values())} op(s) run in float32 ({', '.join(sorted(ops))}: no integer kernel)"
    verdict = "export success" if art.ok else "export FAILED validation"
    if str(art.details.get("quantization", "")).startswith("weight-only"):
        verdict += " (weight-only quantization: compute stays float32)"
    tail = "" if art.ok else f": {art.error}"
    return f"{art.format} {art.quant}: {verdict} {art.seconds:.1f}s, {size}, {parity}, saved as '{out / art.path}'{tail}"


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _layer_names(source) -> list[str] | None:
    """The Keras model's layer names (per-operator profiles map converted nodes back to them)."""
    layers = getattr(source.keras_model, "layers", None) if source.framework in ("keras3", "tf_keras") else None
    return [layer.name for layer in layers] if layers else None
