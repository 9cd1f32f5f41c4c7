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

from edgekit.artifact import Manifest
from edgekit.data import load_data
from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import EdgekitError, ExportError, ShapeError, UsageError
from edgekit.exporters import EXPORTERS, get_exporter
from edgekit.exporters.base import ExportOptions
from edgekit.files import check_writable_dir, path_size, sha256_path
from edgekit.generated_inputs import generate, id_range, is_integer
from edgekit.io_spec import rows, take
from edgekit.parity import check as check_parity
from edgekit.parity import compare, is_classifier, output_kind, points_lost
from edgekit.run_record import tool_versions
from edgekit.runtimes import runtime_for_format
from edgekit.runtimes.isolated import run_isolated
from edgekit.shapes import fits
from edgekit.source_model import SourceModel, load_source

GENERATED_SAMPLES = 64
SPREAD_ERROR = 0.25  # a repair that keeps more than this share of the layers in float says so, with --quant mixed


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
    progress: Callable[[str], object] | None = None,
    on_start: Callable[[str, str], None] | None = None,
    failed_before: dict[tuple[str, str], str] | None = None,
) -> Manifest:
    """Export ``model`` to each format x quant into ``out``; returns the written manifest."""
    options = options or ExportOptions()
    out = Path(out)
    plan = _plan(formats, quants)
    options.validate()
    if options.opset is not None and "onnx" in formats:
        from edgekit.exporters.onnx import check_opset

        check_opset(options.opset)
    if "tfjs" in formats:  # TF.js artifacts are validated in Node: say so before converting anything
        from edgekit.runtimes.js_env import js_dir, node_binary

        node_binary()
        js_dir()
    check_writable_dir(out, flag="--out")
    source = load_source(model, safe_mode=safe_mode)
    try:
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
            classes = _predicted_classes(reference) if classifier else None
            if classes == 1 and rows(parity_inputs) > 1:
                log(f"note: on the parity inputs ({data_note}) the source model predicts one class for all "
                    f"{rows(parity_inputs)}: top-1 agreement cannot tell a working export from one that always answers "
                    "that class (max diff and cosine still compare the scores); pass --calib DATA with real inputs")
            artifacts = []
            for fmt, quant in plan:
                if failed_before and (fmt, quant) in failed_before:  # crashed an earlier attempt (supervised.py)
                    from edgekit.artifact import Artifact

                    art = Artifact(format=fmt, quant=quant, path="", status="export_failed",
                                   error=failed_before[(fmt, quant)], seconds=0.0)
                    artifacts.append(art)
                    log(_summary_line(art, out))
                    continue
                if on_start:
                    on_start(fmt, quant)
                label = f"{fmt} {quant}"
                ctx = progress(f"exporting {label}") if progress else None
                if ctx is not None:
                    ctx.__enter__()
                try:
                    art = _export_one(get_exporter(fmt), source, staging, quant, calibration, options,
                                      parity_inputs, reference, classifier, min_agreement)
                    if quant == "mixed" and art.path and (staging / art.path).is_file():
                        art = _speed_mix(art, source, staging, calibration, options, parity_inputs, reference,
                                         parity_labels, classifier, min_agreement, log)
                    if options.max_drop is not None and quant == "int8" and art.parity:
                        art = _within_budget(art, source, staging, calibration, options, parity_inputs, reference,
                                             parity_labels, classifier, min_agreement, log)
                finally:
                    if ctx is not None:
                        ctx.__exit__(None, None, None)
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
                        "macs": graph_macs(source)},
                artifacts=artifacts,
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
    """Calibration inputs (train split), held-out parity inputs (test split), prepared, a note, and the
    parity inputs' labels where the data has them (for ``max_drop``)."""
    run = source.run
    spec = calib or (run.data.get("spec") if run else None)
    needs_calib = any(q in get_exporter(f).needs_calibration for f, q in plan)
    want = tuple(d for d in source.input_shape)
    if source.multi_input:
        return (*_named_data_for(source, spec, needs_calib, plan, parity_samples, calib_samples), None)
    if spec is None:
        if needs_calib:
            raise UsageError(
                f"{', '.join(f'{f} {q}' for f, q in plan if q in get_exporter(f).needs_calibration)} needs calibration data",
                hint="pass --calib DATA (an .npz, an image folder, a .csv, builtin:digits, or uniform:LO,HI for generated inputs)",
            )
        if is_integer(source.input_dtype):
            ids = id_range(source.keras_model)
            return (None, generate(want, source.input_dtype, GENERATED_SAMPLES, id_range=ids),
                    f"generated integer ids in [{ids[0]}, {ids[1]}]", None)
        return None, generate(want, "float32", GENERATED_SAMPLES), "generated uniform(0,1) inputs", None
    if spec.startswith("uniform:"):
        return (*_uniform_data(spec, want, parity_samples, source.input_dtype), None)
    ds = load_data(spec, image_size=(run.prep.image_size or [None])[0] if run else None)
    if run is None:
        prep = Preprocessing()  # a bare model: --calib data is taken as model-ready inputs
    elif spec == run.data.get("spec"):
        prep = run.prep  # the run's own data: exactly the preprocessing training used
    else:
        prep = ds.preprocessing
    calibration = ds.prepared("train", prep, limit=calib_samples)
    got = tuple(calibration.shape[1:])
    if not fits(want, got):
        raise ShapeError(
            f"Calibration data {spec} has samples of shape {got}, but the model takes {tuple(want)}",
            hint="pass data shaped like the model's input",
        )
    if not np.isfinite(calibration).all():
        raise ShapeError(f"Calibration data {spec} contains NaN or inf", hint="clean the data first")
    parity = ds.prepared("test", prep, limit=parity_samples)
    labels = np.asarray(ds.y_test[: len(parity)]) if ds.has_labels else None
    return calibration, parity, f"{spec} (test split, {len(parity)} samples)", labels


def _fix_input_shapes(source: SourceModel, text: str | None, plan) -> None:
    """``--input-shape`` fixes unknown non-batch dims; without it, TFLite and TF.js refuse such an input in one line."""
    from edgekit.io_spec import parse_input_shapes, unknown_dims

    aliases = {}
    if not source.multi_input and getattr(source.keras_model, "inputs", None):
        aliases = {str(source.keras_model.inputs[0].name).split(":")[0]: source.inputs[0].name}
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


def _named_data_for(source: SourceModel, spec: str | None, needs_calib: bool, plan, parity_samples: int,
                    calib_samples: int):
    """Several inputs: calibration and parity inputs as dicts by input name (edgekit.data.named_inputs)."""
    from edgekit.data.named_inputs import generated, load_named_npz, parse_ranges

    names = [t.name for t in source.inputs]
    if spec is None:
        if needs_calib:
            raise UsageError(
                f"{', '.join(f'{f} {q}' for f, q in plan if q in get_exporter(f).needs_calibration)} needs calibration data",
                hint=f"pass --calib DATA (an .npz with arrays {', '.join(names)}, or uniform:LO,HI)")
        return None, generated(source.inputs, GENERATED_SAMPLES, keras_model=source.keras_model), "generated inputs"
    if spec.startswith("uniform:"):
        ranges = parse_ranges(spec, names)
        calibration = generated(source.inputs, 200, ranges=ranges, seed=0)
        parity = generated(source.inputs, parity_samples, ranges=ranges, seed=1)
        return calibration, parity, f"generated {spec} inputs ({parity_samples} held out)"
    train, test, _ = load_named_npz(spec, source.inputs)
    calibration = {k: v[:calib_samples] for k, v in train.items()}
    parity = {k: v[:parity_samples] for k, v in test.items()}
    return calibration, parity, f"{spec} (test split, {len(next(iter(parity.values())))} samples)"


def _uniform_data(spec: str, shape, parity_samples: int, dtype: str = "float32"):
    """``uniform:LO,HI``: seeded inputs shaped like the model's, uniform in [LO, HI]: for models that come
    without data (calibration then covers the range you name; parity on such inputs is weaker evidence).
    For an integer input (token ids) they are integers in [LO, HI]."""
    try:
        lo, hi = (float(v) for v in spec.split(":", 1)[1].split(","))
    except ValueError:
        raise UsageError(f"--calib {spec} should be uniform:LO,HI, e.g. uniform:0,255") from None
    if not lo < hi:
        raise UsageError(f"--calib {spec}: LO must be below HI")
    calibration = generate(shape, dtype, 200, value_range=(lo, hi), id_range=(lo, hi), seed=0)
    parity = generate(shape, dtype, parity_samples, value_range=(lo, hi), id_range=(lo, hi), seed=1)
    kind = "integer ids" if is_integer(dtype) else "inputs"
    return calibration, parity, f"generated uniform({lo:g},{hi:g}) {kind} ({len(parity)} held out)"


def _export_one(exporter, source, staging, quant, calibration, options, parity_inputs, reference, classifier, min_agreement):
    from edgekit.artifact import Artifact

    t0 = time.perf_counter()
    try:
        art = exporter.export(source, staging, quant=quant, calibration=calibration, options=options)
    except ExportError as e:
        return Artifact(format=exporter.name, quant=quant, path="", status="export_failed", error=str(e),
                        seconds=round(time.perf_counter() - t0, 2))
    art.seconds = round(time.perf_counter() - t0, 2)
    return _export_one_validate(art, staging / art.path, quant, parity_inputs, reference, classifier, min_agreement)


def _export_one_validate(art, path, quant, parity_inputs, reference, classifier, min_agreement):
    """Size, hash, and parity of the file at ``path`` run in its own runtime."""
    art.size_bytes = path_size(path)
    art.sha256 = sha256_path(path)
    art.status, art.error = "ok", None
    result = run_isolated(runtime_for_format(art.format), path, parity_inputs, timing=None)
    if not result.ok:
        art.status, art.error = "validation_failed", f"the exported file does not run: {result.error}"
        return art
    art.details["runtime"] = result.reply.get("runtime")
    float_ops = result.reply.get("artifact_info", {}).get("float_ops")
    if float_ops and quant in ("int8", "int16x8") and "fallback" not in art.details:
        art.details["float_ops"] = float_ops  # an integer model with ops that run in float: said, not hidden
    art.details.setdefault("operators", result.reply.get("artifact_info", {}).get("ops", {}))
    if result.reply.get("artifact_info", {}).get("io"):  # each input and output: source and artifact names, dtype, int8 params
        art.details["io"] = result.reply["artifact_info"]["io"]
    try:
        art.parity = compare(reference, result.outputs)
    except ValueError as e:  # an output missing by name
        art.status, art.error = "validation_failed", f"the exported file's outputs do not match the source's: {e}"
        return art
    problems = check_parity(art.parity, quant, classifier=classifier, min_agreement=min_agreement)
    if problems:
        art.status, art.error = "validation_failed", "parity with the source failed: " + "; ".join(problems)
    return art


def _drop_points(outputs, reference, labels) -> float:
    """Points lost against the float model, judged by each output's kind (:func:`edgekit.parity.points_lost`)."""
    return points_lost(reference, outputs, labels)[0]


def _within_budget(art, source, staging, calibration, options, parity_inputs, reference, labels, classifier,
                   min_agreement, log):
    """``--max-drop``: an int8 artifact that loses more is repaired by keeping its worst layers in float
    (TFLite: :mod:`edgekit.quantize.tflite_repair`; ONNX: :mod:`edgekit.quantize.onnx_repair`),
    re-validated, and recorded as ``details.mixed``."""
    from edgekit.quantize.tflite_repair import repair_tflite_int8

    path = staging / art.path
    runtime = runtime_for_format(art.format)

    def parity(outputs) -> list[str]:
        """The checks the artifact's validation applies: a candidate that keeps the accuracy but
        disagrees with the source more than an int8 file may is outside the budget too."""
        return check_parity(compare(reference, outputs), "int8", classifier=classifier, min_agreement=min_agreement)

    plain = run_isolated(runtime, path, parity_inputs, timing=None)
    drop = _drop_points(plain.outputs, reference, labels) if plain.ok else 100.0
    problems = parity(plain.outputs) if plain.ok else ["it does not run"]
    metric = points_lost(reference, plain.outputs, labels)[1] if plain.ok else "it does not run"
    art.details["int8_drop_points"] = {"plain": round(drop, 3), "metric": metric, "budget": options.max_drop}
    if drop <= options.max_drop and not problems:
        return art
    if source.has_recurrent_layers and art.format == "tflite":
        art.details["mixed"] = {"result": "not searched: calibration runs of recurrent layers can crash LiteRT"}
        return art
    why = (f"{drop:.2f} points of {metric} lost (budget {options.max_drop:g})" if drop > options.max_drop else
           f"{drop:.2f} points of {metric} lost, within the budget, but {'; '.join(problems)}")
    log(f"{art.format} int8: {why}: searching layers to keep in float")

    def evaluate(data: bytes) -> tuple[float, list[str]]:
        trial = staging / f".repair-{art.path}"
        trial.write_bytes(data)
        try:
            if art.format == "onnx":  # in this process, stopping once it must miss: see drop_here
                return drop_here(trial, parity_inputs, reference, labels, options.max_drop, parity=parity)
            r = run_isolated(runtime, trial, parity_inputs, timing=None)
        finally:
            trial.unlink()
        return (_drop_points(r.outputs, reference, labels), parity(r.outputs)) if r.ok else (100.0, ["it does not run"])

    try:
        if art.format == "tflite":
            flatbuffer, record = repair_tflite_int8(source.saved_model_dir(), calibration, options, evaluate,
                                                    options.max_drop)
        else:
            flatbuffer, record = get_exporter(art.format).repair_int8(
                source, calibration, options, art.details.get("int8_layout", "qdq-s8s8"), evaluate, options.max_drop)
    except ExportError as e:
        art.details["mixed"] = {"result": f"search failed: {e.message}"}
        return art
    record["plain_int8"] = {"drop_points": round(drop, 3), "size_bytes": art.size_bytes}
    if flatbuffer is None:
        art.details["mixed"] = record
        art.status, art.error = "validation_failed", f"int8: {why}, and {record['result']}"
        return art
    plain_bytes = path.read_bytes()
    path.write_bytes(flatbuffer)
    record["latency_ms"] = _p50s({"plain_int8": plain_bytes, "mixed": flatbuffer}, staging, parity_inputs, art.format)
    repaired = _export_one_validate(art, path, "int8", parity_inputs, reference, classifier, min_agreement)
    repaired.details["mixed"] = record
    repaired.details.pop("float_ops", None)  # float by choice, named in details.mixed.kept
    repaired.details["compute"] = f"int8, {record['result']}"
    if record.get("float_io"):
        repaired.details.update(input_dtype=source.input_dtype if is_integer(source.input_dtype) else "float32",
                                output_dtype="float32")
    repaired.details["int8_drop_points"]["mixed"] = round(evaluate(flatbuffer)[0], 3)
    if len(record["kept"]) > SPREAD_ERROR * record["layers_quantized"]:
        record["hint"] = (f"{len(record['kept'])} of {record['layers_quantized']} layers kept in float: the int8 error "
                          "is spread over the network, not in a few layers; --quant mixed keeps whole operator types "
                          "in float instead, and may give a smaller and faster file")
        log(f"{art.format} int8: {record['hint']}")
    return repaired


def drop_here(path: Path, inputs, reference, labels, budget: float, chunk: int = 100,
              parity: Callable | None = None) -> tuple[float, list[str]]:
    """Points an ONNX candidate of the repair search loses (:func:`edgekit.parity.points_lost`), run in ONNX
    Runtime in this process, ``chunk`` rows at a time, and the parity checks it fails (``parity(outputs)``,
    when it ran to the end).

    In this process: the search makes a dozen files from one graph that ONNX Runtime has already
    loaded and quantized, and a fresh worker for each would spend most of the search starting Python
    (0.4 s of a 0.45 s evaluation, measured); the file the search picks is validated in a worker like
    every artifact. Chunk by chunk: once the candidate must lose more than ``budget`` even if every
    remaining row came out right, the evaluation stops and returns that lower bound (a candidate that
    ruins the model is known after a few hundred rows). 100 points when it does not run.

    Example:
        >>> drop_here(Path("candidate.onnx"), x, reference, y, budget=1.0)   # doctest: +SKIP
        (0.2, [])
    """
    from edgekit.runtimes.onnxruntime import ONNXRuntime

    # the chunk-by-chunk lower bound needs a probability output (top-1 against labels or the source);
    # the final figure is points_lost over every output, by kind
    probs = reference if isinstance(reference, dict) else {None: reference}
    name = next((k for k, v in probs.items() if output_kind(v) == "probabilities"), False)
    n = len(next(iter(probs.values())))
    if name is not False:
        want = probs[name].reshape(n, -1).argmax(1)
        target = np.asarray(labels) if labels is not None and len(labels) == n else want
        right_before, right = int((want == target).sum()), 0
    outputs = []
    try:
        session = ONNXRuntime().load(str(path), threads=None)
        for i in range(0, n, chunk):
            outputs.append(session.run(take(inputs, i, i + chunk)))
            if name is False:
                continue
            out = outputs[-1][name] if name is not None else outputs[-1]
            right += int((out.reshape(len(out), -1).argmax(1) == target[i : i + chunk]).sum())
            at_least = (right_before - right - (n - min(i + chunk, n))) / n * 100
            if at_least > budget:
                return float(at_least), []
    except Exception:
        return 100.0, ["it does not run"]
    if not outputs:
        return 100.0, ["it does not run"]
    whole = ({k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]} if isinstance(outputs[0], dict)
             else np.concatenate(outputs))
    drop = points_lost(reference, whole, labels)[0]
    return drop, (parity(whole) if parity is not None else [])


def _speed_mix(art, source, staging, calibration, options, parity_inputs, reference, labels, classifier,
               min_agreement, log):
    """``--quant mixed``: replace the plain int8 file with the fastest candidate within the budget
    (:mod:`edgekit.quantize.speed_mix`), re-validate it, and record the search as ``details.mixed``."""
    budget = options.max_drop if options.max_drop is not None else 1.0
    log(f"{art.format} mixed: measuring which operators to keep in float (budget {budget:g} point{'s' * (budget != 1)})")
    path = staging / art.path
    runtime = runtime_for_format(art.format)

    def evaluate(data: bytes) -> dict:
        trial = staging / f".mix-{art.path}"
        trial.write_bytes(data)
        r = run_isolated(runtime, trial, parity_inputs, timing=None)
        trial.unlink()
        if not r.ok:
            return {"drop": 100.0, "parity": ["it does not run"]}
        # the validation the chosen file then gets, applied to every candidate: a mix that keeps the
        # accuracy but disagrees with the source more than an int8 file may is not within the budget
        parity = check_parity(compare(reference, r.outputs), "mixed", classifier=classifier, min_agreement=min_agreement)
        return {"drop": _drop_points(r.outputs, reference, labels), "parity": parity}

    def time_files(files: dict[str, bytes]) -> dict[str, float]:
        p50 = _p50s(files, staging, parity_inputs, art.format)
        return {name: (float("inf") if ms is None else ms) for name, ms in p50.items()}

    try:
        if art.format == "tflite":
            from edgekit.exporters.tflite import convert
            from edgekit.quantize.speed_mix import speed_mix_tflite
            from edgekit.tf_env import import_tensorflow

            fp32 = convert(import_tensorflow(), source.saved_model_dir(), "fp32", None, options, {})
            data, record = speed_mix_tflite(source.saved_model_dir(), calibration, options, evaluate, time_files,
                                            budget, fp32)
        else:
            data, record = get_exporter(art.format).speed_mix(
                source, calibration, options, art.details.get("int8_layout", "qdq-u8s8"), evaluate, time_files, budget)
    except ExportError as e:
        art.status, art.error = "export_failed", f"the mixed-precision search failed: {e.message}"
        return art
    path.write_bytes(data)
    mixed = _export_one_validate(art, path, "mixed", parity_inputs, reference, classifier, min_agreement)
    float_ops, float_nodes = record["float_ops"], record.get("float_nodes", [])
    layers = f"{len(float_nodes)} layer{'s' * (len(float_nodes) > 1)} ({', '.join(float_nodes)})" if float_nodes else ""
    mixed.details.update(mixed=record, compute=(
        "float32 (fp32 was the fastest within the budget)" if float_ops is None else
        f"int8, {', '.join(float_ops)}{' and ' + layers if layers else ''} in float32" if float_ops else
        f"int8, {layers} in float32" if layers else "int8 (every operator: it was the fastest)"))
    # the search keeps inputs and outputs float32 (integer ids stay integers)
    mixed.details.update(input_dtype=source.input_dtype if is_integer(source.input_dtype) else "float32",
                         output_dtype="float32")
    chosen, fp32 = record["mixed"], record["fp32"]
    log(f"{art.format} mixed: chose {mixed.details['compute']}: p50 {chosen['p50_ms'] / fp32['p50_ms']:.2f}x fp32's, "
        f"size {chosen['size_bytes'] / fp32['size_bytes']:.2f}x, {chosen['drop_points']:+g} points "
        f"({len(record['candidates'])} candidates, {record['seconds']:.1f} s)")
    if float_ops is None:
        mixed.details["weights"] = "float32"
        for key in ("int8_layout", "int8_layouts_tried", "int8_layout_reason", "per_channel", "calibration_method",
                    "calibration_samples", "reduce_range"):
            mixed.details.pop(key, None)
    return mixed


def _p50s(files: dict[str, bytes], staging: Path, inputs, fmt: str, rounds: int = 10) -> dict[str, float | None]:
    """p50 latency (ms, 1 thread, batch 1) of each file in its format's runtime, measured together:
    in one worker process, in ``rounds`` interleaved rounds (the order reversed every other round);
    each file's best round.

    A shared machine has slow spells of a second or so (a 20 µs model measures 1.5x slower, then
    back), and they only ever slow a run down, so each file's fastest round is the one to compare
    (as ``timeit`` advises), and many short rounds (30 ms each) give every file many chances at a
    quiet moment: on a small ViT's six candidates, 3 rounds of 100 ms ranked them differently in 2
    runs of 6 (a file 1.4x slower in every round), 10 rounds of 30 ms the same way in 6 of 6, within
    3%. None for a file that does not run (then the others are timed alone)."""
    from edgekit.runtimes.isolated import time_together

    paths = {}
    for i, (name, data) in enumerate(files.items()):
        paths[name] = staging / f".timing-{i}.{fmt}"
        paths[name].write_bytes(data)

    def together(group: list[Path]) -> dict[str, list[float]]:
        r = time_together(runtime_for_format(fmt), group, inputs, threads=1, rounds=rounds,
                          timing={"warmup": 10, "runs": 100, "min_time_s": 0.03})
        return r.reply["p50_ms_rounds"] if r.ok else {}

    try:
        rounds_ms = together(list(paths.values()))
        if not rounds_ms:  # one of them does not run: the others alone
            rounds_ms = {k: v for path in paths.values() for k, v in together([path]).items()}
    finally:
        for path in paths.values():
            path.unlink(missing_ok=True)
    return {name: (min(rounds_ms[str(path)]) if str(path) in rounds_ms else None) for name, path in paths.items()}


def _predicted_classes(reference) -> int:
    """How many classes the source predicts on the parity inputs (the fewest over probability outputs)."""
    outs = reference.values() if isinstance(reference, dict) else [reference]
    return min(len(np.unique(o.reshape(len(o), -1).argmax(1))) for o in outs if is_classifier(o))


def _run_info(source: SourceModel):
    if source.run is None:
        return None
    r = source.run
    return {"labels": r.labels, "preprocessing": r.preprocessing, "data": r.data, "input_shape": r.input_shape, "task": r.task}


def _summary_line(art, out: Path) -> str:
    size = _human_size(art.size_bytes) if art.size_bytes else "-"
    if art.status == "export_failed":
        return f"{art.format} {art.quant}: export failed after {art.seconds:.1f}s: {art.error}"
    p = art.parity or {}
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
