"""Per-output metrics of a bench row with several outputs: accuracy where the data labels it, mean
absolute error for labelled values, agreement with the source model.

Example:
    >>> output_metrics({"label": probs}, {"y": y}, None)["label"]["accuracy"]   # doctest: +SKIP
    0.984
"""

from __future__ import annotations

import numpy as np

from edgekit.parity import compare


def output_metrics(out: dict, labels: dict | None, reference: dict | None) -> dict[str, dict]:
    """Per output: accuracy where the data has its labels (``y_<name>``, or ``y`` for the first probability
    output), mean absolute error for labelled values, and agreement with the source model's outputs."""
    from edgekit.parity import is_classifier

    metrics: dict[str, dict] = {name: {} for name in out}
    labels = dict(labels or {})
    if "y" in labels:
        first_probs = next((n for n, v in out.items() if is_classifier(v)), None)
        if first_probs is not None:
            labels.setdefault(f"y_{first_probs}", labels["y"])
    for name, values in out.items():
        lab = labels.get(f"y_{name}")
        if lab is None or len(lab) != len(values):
            continue
        flat = values.reshape(len(values), -1)
        if lab.size == len(lab) and flat.shape[1] > 1:  # one class id per sample: a classifier's accuracy
            metrics[name]["accuracy"] = round(float((flat.argmax(axis=1) == lab.reshape(-1)).mean()), 5)
        elif lab.size == values.size:  # values, boxes, multi-label scores: mean absolute error
            metrics[name]["mae"] = float(f"{np.abs(values - lab.reshape(values.shape)).mean():.4g}")
    if reference is not None:
        p = compare(reference, out)
        for name, m in p["outputs"].items():
            metrics[name].update(max_abs_diff=m["max_abs_diff"], cosine=m["cosine"], kind=m["kind"])
            if m["kind"] == "probabilities":
                metrics[name]["agreement"] = m["top1_agreement"]
    return metrics


def detection_metrics(out: dict, labels: dict | None, reference: dict | None) -> dict:
    """A detector's row: ``accuracy`` is its mAP@0.5 against the data's boxes (``metric`` says so) and
    ``map`` its mAP@0.5:0.95; against the source model's detections, ``agreement`` (the share matched,
    same class, IoU >= 0.5), ``same_detections`` (IoU >= 0.99) and ``map50_vs_source``."""
    from edgekit.detection.metrics import mean_average_precision

    row: dict = {"metric": "mAP@0.5"}
    y = (labels or {}).get("y")
    if y is not None and np.ndim(y) == 3:
        m = mean_average_precision(np.asarray(y), out)
        row.update(accuracy=m["map50"], map=m["map"])
    from edgekit.parity import is_detections

    if reference is not None and is_detections(reference):  # (a source without NMS: nothing to match)
        p = compare(reference, out)
        row.update(agreement=p["top1_agreement"], same_detections=p["same_detections"],
                   map50_vs_source=p["map50_vs_source"], max_abs_diff=p["max_abs_diff"])
    return row
