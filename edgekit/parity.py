"""Parity of an artifact's outputs with its source model's: agreement, error, similarity.

Example:
    >>> import numpy as np
    >>> ref = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    >>> p = compare(ref, ref + 0.01)
    >>> p["top1_agreement"], round(p["max_abs_diff"], 3)
    (1.0, 0.01)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.io_spec import as_named

# Minimum parity an export must reach to count as valid, per quant mode. Top-1 agreement
# applies to classifiers only (outputs that are probability rows); cosine to every model.
THRESHOLDS: dict[str, dict[str, float]] = {
    "fp32": {"top1_agreement": 0.99, "cosine": 0.999},
    "fp16": {"top1_agreement": 0.99, "cosine": 0.999},
    "dynamic": {"top1_agreement": 0.95, "cosine": 0.99},
    "int8": {"top1_agreement": 0.90, "cosine": 0.95},
    "int16x8": {"top1_agreement": 0.90, "cosine": 0.95},  # an integer mode: judged as int8
    # --quant mixed: int8 with some operators in float, held to int8's thresholds (the float part may
    # only make it closer to the source); its search also judges every candidate by these
    "mixed": {"top1_agreement": 0.90, "cosine": 0.95},
    "uint8": {"top1_agreement": 0.90, "cosine": 0.95},  # TF.js weight-only uint8
}


# Several outputs: an output that is not a probability row (a regression value, boxes, sigmoid scores)
# is also judged on its mean absolute error relative to the spread (std) of the source's values.
RELATIVE_ERROR = {"fp32": 1e-3, "fp16": 2e-2, "dynamic": 0.1, "int8": 0.2, "int16x8": 0.2, "mixed": 0.2, "uint8": 0.2}


def compare(reference, outputs) -> dict[str, Any]:
    """Top-1 agreement, max/mean absolute difference and mean per-sample cosine similarity.

    For several outputs (dicts by output name) each output is compared on its own (``"outputs"``),
    and the top-level keys hold the worst of them, so that reports and the gate keep their keys;
    ``"worst_output"`` names the output with the lowest cosine."""
    reference, outputs = named(reference), named(outputs)
    if len(reference) == 1 and len(outputs) == 1:  # one output: judged as it is, whatever its name
        return _compare_one(next(iter(reference.values())), next(iter(outputs.values())))
    if is_detections(reference):
        return compare_detections(reference, outputs)
    return _compare_outputs(reference, outputs)


def compare_detections(reference: dict, outputs: dict) -> dict[str, Any]:
    """A detector's outputs against its source's, as detections (:mod:`edgekit.detection.metrics`):
    ``same_detections``, the share of detections either side matched on the other (same class, IoU
    >= 0.99); ``top1_agreement``, the same at IoU >= 0.5; ``map50_vs_source``, mAP@0.5 with the source's
    detections as the truth; the largest box-corner difference (0..1 of the image) and score difference of matched detections."""
    from edgekit.detection.metrics import as_labels, match, mean_average_precision

    missing = [n for n in reference if n not in outputs]
    if missing:
        raise ValueError(f"the artifact returns no output named {', '.join(missing)} (it has {', '.join(outputs)})")
    finite = all(bool(np.isfinite(np.asarray(outputs[n])).all()) for n in reference)
    n = len(np.asarray(reference["count"]).reshape(-1))
    if not finite:
        return {"samples": n, "kind": "detections", "finite": False, "top1_agreement": 0.0, "same_detections": 0.0,
                "map50_vs_source": 0.0, "max_abs_diff": float("nan"), "mean_abs_diff": float("nan"), "cosine": None}
    strict, loose = match(reference, outputs, min_iou=0.99), match(reference, outputs, min_iou=0.5)
    ref_truth = as_labels(reference)
    vs_source = mean_average_precision(ref_truth, outputs)["map50"] if (ref_truth[..., 0] >= 0).any() else 1.0
    return {
        "samples": n,
        "kind": "detections",
        "finite": True,
        "same_detections": min(strict["recall"], strict["precision"]),
        "top1_agreement": min(loose["recall"], loose["precision"]),
        "map50_vs_source": vs_source,
        "detections": strict["detections"],
        "min_iou": strict["min_iou"] if strict["matched"] else loose["min_iou"],
        "max_score_diff": loose["max_score_diff"],
        "max_abs_diff": loose["max_box_diff"],  # of matched detections' box corners (0..1 of the image)
        "mean_abs_diff": loose["max_box_diff"],
        "cosine": None,
    }


def closeness(parity: dict[str, Any]) -> float:
    """One number for how close an artifact is to its source (higher is closer), to rank candidates by:
    cosine similarity, or for a detector mAP@0.5 against the source's detections."""
    value = parity["map50_vs_source"] if parity.get("kind") == "detections" else parity["cosine"]
    return float(value) if value is not None and np.isfinite(value) else -1.0


def is_detections(outputs) -> bool:
    """True when outputs by name are a detector's (``boxes``, ``scores``, ``classes``, ``count``)."""
    from edgekit.detection.boxes import is_detections as named_detections

    return isinstance(outputs, dict) and named_detections(outputs)


def named(batch) -> dict:
    """Outputs by name: a dict as it is, one array as the one output (``output``)."""
    return as_named(batch, "output")


def _compare_outputs(reference: dict, outputs: dict) -> dict[str, Any]:
    missing = [n for n in reference if n not in outputs]
    if missing:
        raise ValueError(f"the artifact returns no output named {', '.join(missing)} (it has {', '.join(outputs)})")
    per = {}
    for name, ref in reference.items():
        m = _compare_one(ref, outputs[name])
        flat = np.asarray(ref, np.float64).reshape(len(ref), -1)
        if flat.shape[1] == 1 and m["finite"]:  # one value per sample: cosine over the batch, not of 1-vectors
            out = np.asarray(outputs[name], np.float64).reshape(-1)
            den = np.linalg.norm(flat) * np.linalg.norm(out)
            m["cosine"] = round(float((flat.reshape(-1) @ out) / den), 6) if den > 0 else 1.0
        m["kind"] = output_kind(ref)
        m["relative_error"] = float(f"{m['mean_abs_diff'] / max(float(flat.std()), 1e-12):.4g}") if m["finite"] else float("nan")
        per[name] = m
    worst = min(per, key=lambda n: (per[n]["finite"], per[n]["cosine"]))
    probs = [m["top1_agreement"] for m in per.values() if m["kind"] == "probabilities"]
    return {
        "samples": next(iter(per.values()))["samples"],
        "top1_agreement": min(probs) if probs else per[worst]["top1_agreement"],
        "max_abs_diff": max(m["max_abs_diff"] for m in per.values()),
        "mean_abs_diff": max(m["mean_abs_diff"] for m in per.values()),
        "cosine": per[worst]["cosine"],
        "finite": all(m["finite"] for m in per.values()),
        "worst_output": worst,
        "outputs": per,
    }


def _compare_one(reference: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    finite = bool(np.isfinite(out).all())
    diff = np.abs(ref - out)
    num = (ref * out).sum(axis=1)
    den = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.where(den > 0, num / np.where(den > 0, den, 1), np.where(np.abs(num) == 0, 1.0, 0.0))
    return {
        "samples": int(len(ref)),
        "top1_agreement": round(float((ref.argmax(1) == out.argmax(1)).mean()), 5),
        "max_abs_diff": float(f"{np.nanmax(diff):.4g}") if finite else float("nan"),
        "mean_abs_diff": float(f"{np.nanmean(diff):.4g}") if finite else float("nan"),
        "cosine": round(float(np.nanmean(cos)), 6) if finite else float("nan"),
        "finite": finite,
    }


def is_classifier(reference) -> bool:
    """True when an output looks like class probabilities (non-negative rows summing to 1); for several
    outputs (a dict by name), when any of them does. A detector is not one."""
    if is_detections(named(reference)):
        return False
    return any(_probability_rows(v) for v in named(reference).values())


def _probability_rows(values) -> bool:
    ref = np.asarray(values).reshape(len(values), -1)
    return ref.shape[1] > 1 and bool((ref >= -1e-6).all()) and bool(np.allclose(ref.sum(1), 1.0, atol=1e-3))


def output_kind(reference: np.ndarray) -> str:
    """What an output holds, judged from the source's values: ``probabilities`` (rows summing to 1:
    a softmax), ``scores`` (every value in [0, 1]: sigmoids, one decision per label) or ``values``.

    >>> output_kind(np.array([[0.2, 0.8]])), output_kind(np.array([[0.2, 0.9]])), output_kind(np.array([[-3.0]]))
    ('probabilities', 'scores', 'values')
    """
    if _probability_rows(reference):
        return "probabilities"
    flat = np.asarray(reference).reshape(len(reference), -1)
    return "scores" if bool((flat >= 0).all() and (flat <= 1).all()) else "values"


# what one point lost means, per output kind (docs/formats.md, "--max-drop")
POINT_METRICS = {"probabilities": "top-1 agreement", "scores": "per-label agreement",
                 "values": "mean error, % of the values' spread"}


def points_lost(reference, outputs, labels=None) -> tuple[float, str]:
    """Points an artifact's ``outputs`` lose against the source's ``reference``, judged by each output's
    kind (:func:`output_kind`), and the metric: probabilities, of accuracy with ``labels`` (of the first
    probability output) or else of top-1 agreement; scores, of per-label agreement at 0.5; values, the
    mean absolute error in percent of the source values' spread (standard deviation). With several
    outputs, the worst, named.

    >>> ref = np.array([[0.1, 0.9], [0.8, 0.2]])
    >>> points_lost(ref, ref[::-1])
    (100.0, 'top-1 agreement')
    >>> tags, probs = np.array([[0.1, 0.9, 0.2, 0.7]]), np.array([[0.3, 0.7]])
    >>> points_lost({"tags": tags, "class": probs}, {"tags": np.array([[0.1, 0.4, 0.2, 0.7]]), "class": probs})
    (25.0, "per-label agreement of output 'tags'")
    """
    reference, outputs = named(reference), named(outputs)
    if is_detections(reference):  # mAP@0.5 points: against the labels where the data has boxes, else the source's
        from edgekit.detection.metrics import as_labels, mean_average_precision

        truth = labels if labels is not None and np.ndim(labels) == 3 else as_labels(reference)
        lost = mean_average_precision(truth, reference)["map50"] - mean_average_precision(truth, outputs)["map50"]
        return float(lost * 100), "mAP@0.5" if truth is labels else "mAP@0.5 against the source's detections"
    if len(reference) == 1 and len(outputs) == 1:
        return _points_one(next(iter(reference.values())), next(iter(outputs.values())), labels)
    first_probs = next((n for n, v in reference.items() if output_kind(v) == "probabilities"), None)
    worst = max(((*_points_one(v, outputs[n], labels if n == first_probs else None), n) for n, v in reference.items()),
                key=lambda t: t[0])
    return worst[0], f"{worst[1]} of output '{worst[2]}'"


def _points_one(reference: np.ndarray, outputs: np.ndarray, labels) -> tuple[float, str]:
    n = len(reference)
    ref = np.asarray(reference, np.float64).reshape(n, -1)
    out = np.asarray(outputs, np.float64).reshape(n, -1)
    if not np.isfinite(out).all():
        return 100.0, "finite outputs"
    kind = output_kind(reference)
    if kind == "probabilities":
        got, want = out.argmax(1), ref.argmax(1)
        if labels is not None and len(labels) == n:
            return float(((want == labels).mean() - (got == labels).mean()) * 100), "accuracy"
        return float((1 - (got == want).mean()) * 100), POINT_METRICS[kind]
    if kind == "scores":
        return float((1 - ((ref >= 0.5) == (out >= 0.5)).mean()) * 100), POINT_METRICS[kind]
    return float(np.abs(ref - out).mean() / max(float(ref.std()), 1e-12) * 100), POINT_METRICS[kind]


def check(parity: dict[str, Any], quant: str, *, classifier: bool, min_agreement: float | None = None) -> list[str]:
    """Reasons the parity fails its thresholds (empty when it passes). With several outputs every output
    is checked on its own (top-1 agreement for probability outputs, relative error for the others) and
    each reason names its output."""
    if parity.get("kind") == "detections":
        return check_detections(parity, quant)
    if "outputs" in parity:
        problems = []
        for name, m in parity["outputs"].items():
            mine = check(m, quant, classifier=m["kind"] == "probabilities", min_agreement=min_agreement)
            limit = RELATIVE_ERROR.get(quant, RELATIVE_ERROR["int8"])
            if m["kind"] != "probabilities" and m.get("finite", True) and m["relative_error"] > limit:
                mine.append(f"mean error {m['relative_error']:.3g} of the values' spread > {limit}")
            problems += [f"output '{name}': {p}" for p in mine]
        return problems
    if not parity.get("finite", True):
        return ["outputs contain NaN or inf"]
    limits = dict(THRESHOLDS.get(quant, THRESHOLDS["int8"]))
    if min_agreement is not None:
        limits["top1_agreement"] = min_agreement
    problems = []
    if classifier and parity["top1_agreement"] < limits["top1_agreement"]:
        problems.append(f"top-1 agreement {parity['top1_agreement']:.3f} < {limits['top1_agreement']}")
    if parity["cosine"] < limits["cosine"]:
        problems.append(f"cosine {parity['cosine']:.4f} < {limits['cosine']}")
    return problems


# A detector's artifact: fp32 must find the source's detections (same class, IoU >= 0.99); other modes are
# judged by mAP@0.5 with the source's detections as the truth (int8's 0.90, as top-1 agreement).
DETECTION_THRESHOLDS = {"fp32": {"same_detections": 0.99}, "fp16": {"map50_vs_source": 0.97},
                        "dynamic": {"map50_vs_source": 0.90}}


def check_detections(parity: dict[str, Any], quant: str) -> list[str]:
    """Reasons a detector's parity fails ``quant``'s thresholds (:data:`DETECTION_THRESHOLDS`)."""
    if not parity.get("finite", True):
        return ["outputs contain NaN or inf"]
    limits = DETECTION_THRESHOLDS.get(quant, {"map50_vs_source": 0.90})
    problems = []
    if "same_detections" in limits and parity["same_detections"] < limits["same_detections"]:
        problems.append(f"{parity['same_detections']:.3f} of the detections are the source's (same class, IoU >= 0.99) "
                        f"< {limits['same_detections']}")
    if "map50_vs_source" in limits and parity["map50_vs_source"] < limits["map50_vs_source"]:
        problems.append(f"mAP@0.5 against the source's detections {parity['map50_vs_source']:.3f} < {limits['map50_vs_source']}")
    return problems
