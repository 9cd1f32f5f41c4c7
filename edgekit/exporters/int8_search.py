"""The int8 searches as the export runs them: ``--max-drop`` (repair an int8 file that loses too
much by keeping its worst layers in float) and ``--quant mixed`` (the fastest file within the
budget). The searches themselves live in :mod:`edgekit.quantize`; here they are given the
export's parity case to judge candidates by, its staging folder, and the validation the chosen
file then gets.

Example:
    >>> art = repair_within_budget(art, source, staging, calibration, options, case, log=print)  # doctest: +SKIP
    >>> art.details["int8_drop_points"]                                                          # doctest: +SKIP
    {'plain': 81.0, 'metric': 'accuracy', 'budget': 1.0, 'mixed': -0.2}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit import status
from edgekit.artifact import Artifact
from edgekit.errors import ExportError
from edgekit.exporters import get_exporter
from edgekit.exporters.validation import ParityCase, validate
from edgekit.generated_inputs import is_integer
from edgekit.io_spec import take
from edgekit.parity import named, output_kind, points_lost
from edgekit.quantize.backends import backend_for
from edgekit.runtimes import runtime_for_format
from edgekit.runtimes.isolated import run_isolated

SPREAD_ERROR = 0.25  # a repair that keeps more than this share of the layers in float says so, with --quant mixed


def repair_within_budget(art: Artifact, source, staging: Path, calibration, options, case: ParityCase, log) -> Artifact:
    """``--max-drop``: an int8 artifact that loses more is repaired by keeping its worst layers in float
    (the format's backend in :mod:`edgekit.quantize.backends`), re-validated, and recorded as ``details.repair``."""
    path = staging / art.path
    runtime = runtime_for_format(art.format)

    def parity(outputs) -> list[str]:
        """The checks the artifact's validation applies: a candidate that keeps the accuracy but
        disagrees with the source more than an int8 file may is outside the budget too."""
        return case.problems(outputs, "int8")

    plain = run_isolated(runtime, path, case.inputs, timing=None)
    drop, metric = case.points(plain.outputs) if plain.ok else (100.0, "it does not run")
    problems = parity(plain.outputs) if plain.ok else ["it does not run"]
    art.details["int8_drop_points"] = {"plain": round(drop, 3), "metric": metric, "budget": options.max_drop}
    if drop <= options.max_drop and not problems:
        return art
    if source.has_recurrent_layers and art.format == "tflite":
        art.details["repair"] = {"result": "not searched: calibration runs of recurrent layers can crash LiteRT"}
        return art
    why = (f"{drop:.2f} points of {metric} lost (budget {options.max_drop:g})" if drop > options.max_drop else
           f"{drop:.2f} points of {metric} lost, within the budget, but {'; '.join(problems)}")
    log(f"{art.format} int8: {why}: searching layers to keep in float")

    def evaluate(data: bytes) -> tuple[float, list[str]]:
        trial = staging / f".repair-{art.path}"
        trial.write_bytes(data)
        try:
            if art.format == "onnx":  # in this process, stopping once it must miss: see drop_here
                return drop_here(trial, case.inputs, case.reference, case.labels, options.max_drop, parity=parity)
            r = run_isolated(runtime, trial, case.inputs, timing=None)
        finally:
            trial.unlink()
        return (case.points(r.outputs)[0], parity(r.outputs)) if r.ok else (100.0, ["it does not run"])

    try:
        float_model = get_exporter(art.format).float_model(source, calibration, options, art.details)
        flatbuffer, record = backend_for(art.format).repair(float_model, options, evaluate, options.max_drop)
    except ExportError as e:
        art.details["repair"] = {"result": f"search failed: {e.message}"}
        return art
    record["plain_int8"] = {"drop_points": round(drop, 3), "size_bytes": art.size_bytes}
    if flatbuffer is None:
        art.details["repair"] = record
        art.status, art.error = status.VALIDATION_FAILED, f"int8: {why}, and {record['result']}"
        return art
    plain_bytes = path.read_bytes()
    path.write_bytes(flatbuffer)
    record["latency_ms"] = p50s({"plain_int8": plain_bytes, "mixed": flatbuffer}, staging, case.inputs, art.format)
    repaired = validate(art, path, "int8", case)
    repaired.details["repair"] = record
    repaired.details.pop("float_ops", None)  # float by choice, named in details.repair.kept
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
    probs = named(reference)
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
            out = outputs[-1][name]
            right += int((out.reshape(len(out), -1).argmax(1) == target[i : i + chunk]).sum())
            at_least = (right_before - right - (n - min(i + chunk, n))) / n * 100
            if at_least > budget:
                return float(at_least), []
    except Exception:
        return 100.0, ["it does not run"]
    if not outputs:
        return 100.0, ["it does not run"]
    whole = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    drop = points_lost(reference, whole, labels)[0]
    return drop, (parity(whole) if parity is not None else [])


def mix_for_speed(art: Artifact, source, staging: Path, calibration, options, case: ParityCase, log) -> Artifact:
    """``--quant mixed``: replace the plain int8 file with the fastest candidate within the budget
    (:mod:`edgekit.quantize.speed_mix`), re-validate it, and record the search as ``details.mix``."""
    budget = options.max_drop if options.max_drop is not None else 1.0
    log(f"{art.format} mixed: measuring which operators to keep in float (budget {budget:g} point{'s' * (budget != 1)})")
    path = staging / art.path
    runtime = runtime_for_format(art.format)

    def evaluate(data: bytes) -> dict:
        trial = staging / f".mix-{art.path}"
        trial.write_bytes(data)
        r = run_isolated(runtime, trial, case.inputs, timing=None)
        trial.unlink()
        if not r.ok:
            return {"drop": 100.0, "parity": ["it does not run"]}
        # the validation the chosen file then gets, applied to every candidate: a mix that keeps the
        # accuracy but disagrees with the source more than an int8 file may is not within the budget
        return {"drop": case.points(r.outputs)[0], "parity": case.problems(r.outputs, "mixed")}

    def time_files(files: dict[str, bytes]) -> dict[str, float]:
        p50 = p50s(files, staging, case.inputs, art.format)
        return {name: (float("inf") if ms is None else ms) for name, ms in p50.items()}

    try:
        float_model = get_exporter(art.format).float_model(source, calibration, options, art.details)
        data, record = backend_for(art.format).mix(float_model, options, evaluate, time_files, budget)
    except ExportError as e:
        art.status, art.error = status.EXPORT_FAILED, f"the mixed-precision search failed: {e.message}"
        return art
    path.write_bytes(data)
    mixed = validate(art, path, "mixed", case)
    float_ops, float_nodes = record["float_ops"], record.get("float_nodes", [])
    layers = f"{len(float_nodes)} layer{'s' * (len(float_nodes) > 1)} ({', '.join(float_nodes)})" if float_nodes else ""
    mixed.details.update(mix=record, compute=(
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


def p50s(files: dict[str, bytes], staging: Path, inputs, fmt: str, rounds: int = 10) -> dict[str, float | None]:
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
