"""Detection data in the formats users have: the same scenes written as a COCO file and as a YOLO folder
read back to the same boxes, and a detector trained on a COCO folder (RGB, resized) end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import edgekit_cli


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """40 builtin:mnist-detect test scenes written as PNGs (RGB, 80x64: not square), with a COCO file and YOLO labels."""
    from PIL import Image

    from edgekit.data import load_data
    from edgekit.detection.boxes import unpad

    ds = load_data("builtin:mnist-detect")
    root = tmp_path_factory.mktemp("scenes")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    w, h = 80, 64
    images, annotations = [], []
    for i in range(40):
        name = f"scene{i:03d}.png"
        Image.fromarray(ds.x_test[i, ..., 0]).convert("RGB").resize((w, h)).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        lines = []
        for cls, x0, y0, x1, y1 in unpad(ds.y_test[i]):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(cls) + 100,
                                "bbox": [float(v) for v in (x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h)],
                                "area": 1.0, "iscrowd": 0})
            lines.append(f"{int(cls)} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}")
        (root / "labels" / name.replace(".png", ".txt")).write_text("\n".join(lines) + "\n")
    (root / "instances.json").write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": c + 100, "name": f"digit {c}"} for c in range(10)]}))
    (root / "classes.txt").write_text("\n".join(f"digit {c}" for c in range(10)) + "\n")
    return root, ds


def test_coco_and_yolo_read_back_the_same_boxes(scenes):
    from edgekit.data import load_data

    root, ds = scenes
    coco = load_data(str(root / "instances.json"), image_size=48)
    yolo = load_data(str(root), image_size=48)
    assert coco.task == yolo.task == "detection"
    assert coco.labels == yolo.labels == [f"digit {c}" for c in range(10)]  # COCO ids 100.. become classes 0..
    assert coco.x_train.shape[1:] == (48, 48, 3)
    for split in ("train", "val", "test"):  # the same seeded split, the same boxes (to float rounding)
        a, b = coco.labels_of(split), yolo.labels_of(split)
        np.testing.assert_allclose(a, b, atol=1e-5)
    # and the boxes are the scenes' own: every box of the 40 scenes, in 0..1, classes as written
    every = np.concatenate([coco.y_train, coco.y_val, coco.y_test]).reshape(-1, 5)
    every = every[every[:, 0] >= 0]
    truth = ds.y_test[:40].reshape(-1, 5)
    truth = truth[truth[:, 0] >= 0]
    assert len(every) == len(truth)
    key = lambda rows: sorted(map(tuple, np.round(rows, 4)))  # noqa: E731
    assert key(every) == key(truth)


def test_a_detector_trains_on_a_coco_file_and_says_when_it_found_nothing(scenes, tmp_path):
    """One epoch on 40 images reads the COCO file, trains, scores and keeps the run, and fails saying
    that the detector found nothing yet (an exit 0 with mAP 0.0000 would hide it)."""
    root, _ = scenes
    r = edgekit_cli("train", "detector", "--data", root / "instances.json", "--image-size", "48", "--epochs", "1",
                    "--width", "0.25", "--out", tmp_path / "run")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "train FAILED" in r.stderr and "test mAP@0.5 0.0" in r.stderr, r.stderr
    assert "the detector found no object in any test image after 1 epoch: it has not learnt yet" in r.stderr, r.stderr
    record = json.loads((tmp_path / "run" / "edgekit.json").read_text())
    assert record["task"] == "detection" and record["input_shape"] == [48, 48, 3]
    assert record["labels"][3] == "digit 3" and record["metrics"]["test_map50"] < 0.01
    assert record["metrics"]["test_detections_per_image"] == 0 and record["training"]["problems"]
