"""A detector judged: mAP against labels (the COCO evaluation, pycocotools) and parity with its source.

mAP@0.5 and mAP@0.5:0.95 are COCO's own ``COCOeval`` figures (101-point interpolated AP, up to 100
detections per image, all object sizes), on boxes scaled to a 1000-unit image. Parity matches each
of the source's detections to the artifact's of the same class by IoU (greedy, best score first).

Example:
    >>> import numpy as np
    >>> labels = np.array([[[1, 0.1, 0.1, 0.4, 0.4]]], np.float32)
    >>> found = {"boxes": labels[:, :, 1:], "scores": np.ones((1, 1)), "classes": np.ones((1, 1)),
    ...          "count": np.ones(1)}
    >>> mean_average_precision(labels, found)["map50"]
    1.0
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from edgekit.detection.boxes import detections_of, iou, unpad

SCALE = 1000.0  # boxes in 0..1 as COCO pixel boxes (sizes only matter to COCO's small/medium/large split)


def mean_average_precision(labels: np.ndarray, outputs: dict) -> dict[str, float]:
    """``{"map50", "map"}`` (mAP@0.5 and mAP@0.5:0.95) of a detector's ``outputs`` against padded ``labels``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    n = min(len(labels), len(np.asarray(outputs["count"]).reshape(-1)))
    images, annotations, results, classes = [], [], [], set()
    for i in range(n):
        images.append({"id": i, "width": SCALE, "height": SCALE})
        for cls, x0, y0, x1, y1 in unpad(labels[i]):
            classes.add(int(cls))
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(cls) + 1,
                                "bbox": _xywh((x0, y0, x1, y1)), "area": float((x1 - x0) * (y1 - y0) * SCALE ** 2),
                                "iscrowd": 0})
        boxes, scores, cls = detections_of(outputs, i)
        results += [{"image_id": i, "category_id": int(c) + 1, "bbox": _xywh(b), "score": float(s)}
                    for b, s, c in zip(boxes, scores, cls, strict=True)]
    if not annotations:
        return {"map50": float("nan"), "map": float("nan")}
    if not results:
        return {"map50": 0.0, "map": 0.0}
    categories = sorted(classes | {r["category_id"] - 1 for r in results})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c + 1, "name": str(c)} for c in categories]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"map50": round(max(float(ev.stats[1]), 0.0), 5), "map": round(max(float(ev.stats[0]), 0.0), 5)}


def as_labels(outputs: dict, *, min_score: float = 0.0) -> np.ndarray:
    """A detector's detections as padded labels: what another detector is judged against (its source)."""
    from edgekit.detection.boxes import padded_labels

    n = len(np.asarray(outputs["count"]).reshape(-1))
    per = []
    for i in range(n):
        boxes, scores, cls = detections_of(outputs, i)
        keep = scores >= min_score
        per.append([(c, *b) for b, c in zip(boxes[keep], cls[keep], strict=True)])
    return padded_labels(per, max_boxes=max(1, max((len(p) for p in per), default=1)))


def match(reference: dict, outputs: dict, *, min_iou: float = 0.99, margin: float = 0.02) -> dict:
    """How far an artifact's detections are the source's: each side's detections matched to the other's
    (same class, IoU >= ``min_iou``). A detection whose score is within ``margin`` of the lowest score
    either side kept may be kept by one and not the other (float rounding at the threshold): those
    need not match. Returns counts, the matched fractions and the worst IoU, score and box-corner differences of matched pairs."""
    n = len(np.asarray(reference["count"]).reshape(-1))
    floor = _lowest_kept(reference, outputs) + margin
    total = matched = total_out = matched_out = 0
    worst_iou, worst_score, worst_box = 1.0, 0.0, 0.0
    for i in range(n):
        rb, rs, rc = detections_of(reference, i)
        ob, os_, oc = detections_of(outputs, i)
        pairs = _greedy(rb, rs, rc, ob, oc, min_iou)
        ref_hit, out_hit = {r for r, _o, _v in pairs}, {o for _r, o, _v in pairs}
        # every detection counts, but one left unmatched near the lowest score kept may be the other side's
        # threshold rounding: it is left out of the share
        total += len(rs) - sum(1 for r in range(len(rs)) if r not in ref_hit and rs[r] < floor)
        matched += len(ref_hit)
        total_out += len(os_) - sum(1 for o in range(len(os_)) if o not in out_hit and os_[o] < floor)
        matched_out += len(out_hit)
        for r, o, v in pairs:
            worst_iou = min(worst_iou, v)
            worst_score = max(worst_score, abs(float(rs[r]) - float(os_[o])))
            worst_box = max(worst_box, float(np.abs(rb[r] - ob[o]).max()))
    return {"detections": total, "matched": matched, "recall": round(matched / total, 5) if total else 1.0,
            "precision": round(matched_out / total_out, 5) if total_out else 1.0,
            "min_iou": round(worst_iou, 5), "max_score_diff": float(f"{worst_score:.4g}"),
            "max_box_diff": float(f"{worst_box:.4g}")}


def _greedy(rb, rs, rc, ob, oc, min_iou: float) -> list[tuple[int, int, float]]:
    if not len(rb) or not len(ob):
        return []
    m = iou(rb, ob)
    m[rc[:, None] != oc[None, :]] = 0
    taken, pairs = set(), []
    for r in np.argsort(-rs):
        order = [o for o in np.argsort(-m[r]) if o not in taken and m[r, o] >= min_iou]
        if order:
            taken.add(order[0])
            pairs.append((int(r), int(order[0]), float(m[r, order[0]])))
    return pairs


def _lowest_kept(*outs: dict) -> float:
    lows = []
    for o in outs:
        counts = np.rint(np.asarray(o["count"]).reshape(-1)).astype(int)
        s = [np.asarray(o["scores"])[i, :k] for i, k in enumerate(counts) if k]
        if s:
            lows.append(float(np.concatenate(s).min()))
    return min(lows) if lows else 0.0


def _xywh(b) -> list[float]:
    x0, y0, x1, y1 = (float(v) * SCALE for v in b)
    return [x0, y0, x1 - x0, y1 - y0]
