"""The detector path end to end at small size: train on builtin:mnist-detect, export with NMS inside to
every format, run every artifact, judge by mAP. A detector trained for three epochs finds digits well
enough that its detections are many and varied: what the parity checks below must tell apart."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import edgekit_cli


@pytest.fixture(scope="module")
def detector_run(tmp_path_factory):
    from edgekit.trainer.fit import train

    out = tmp_path_factory.mktemp("det") / "run"
    record = train("detector", "builtin:mnist-detect", out, epochs=3, width=0.5, learning_rate=5e-3, verbose=0,
                   log=lambda s: None)
    return out, record


@pytest.fixture(scope="module")
def detector_export(detector_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "export"
    # fp32 only: int8 of a detector this short-trained is judged in benchmarks/detector.py on a trained one
    r = edgekit_cli("export", detector_run[0], "--format", "all", "--quant", "fp32", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout


def test_training_scores_the_test_split_by_map(detector_run):
    _, record = detector_run
    assert record.task == "detection"
    # three epochs at half width have begun to learn (untrained: 0.001; trained: benchmarks/detector.py)
    assert 0.04 < record.metrics["test_map50"] <= 1.0, record.metrics
    assert record.metrics["test_map"] < record.metrics["test_map50"]


def test_nms_is_one_operator_inside_every_artifact(detector_export):
    out, _ = detector_export
    from ai_edge_litert.interpreter import Interpreter

    ops = {op["op_name"] for op in Interpreter(model_path=str(out / "model_fp32.tflite"))._get_ops_details()}
    assert "NON_MAX_SUPPRESSION_V4" in ops, ops
    import onnx

    model = onnx.load(out / "model_fp32.onnx")
    assert "NonMaxSuppression" in {n.op_type for n in model.graph.node}
    # every Conv (tf2onnx folds BatchNormalization into it and names it Conv__N) keeps its Keras layer for
    # per-operator profiles (bench --ops), found through its weights' scope
    layers = json.loads(next(p.value for p in model.metadata_props if p.key == "edgekit.layers"))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 9 and all(layers.get(c, "").startswith(("conv2d", "head")) for c in convs), (convs, layers)
    topology = json.loads((out / "model_fp32_tfjs" / "model.json").read_text())["modelTopology"]
    assert "NonMaxSuppressionV4" in {n["op"] for n in topology["node"]}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["nms"] == {"max_detections": 20, "iou": 0.5, "score": 0.1}
    assert [o["name"] for o in manifest["io"]["outputs"]] == ["boxes", "scores", "classes", "count"]


def test_fp32_detections_are_the_source_models_in_every_format(detector_export):
    out, stdout = detector_export
    manifest = json.loads((out / "manifest.json").read_text())
    fp32 = [a for a in manifest["artifacts"] if a["quant"] == "fp32"]
    assert {a["format"] for a in fp32} == {"tflite", "onnx", "tfjs"}
    for a in fp32:
        p = a["parity"]
        assert a["status"] == "ok" and p["kind"] == "detections", a
        assert p["detections"] >= 100, p  # enough detections that matching them means something
        assert p["same_detections"] >= 0.99 and p["min_iou"] >= 0.99, a
    assert "detections: 1.000 the source's" in stdout


def test_the_check_fails_when_boxes_are_swapped_or_nms_is_dropped(detector_run, detector_export, tmp_path):
    from edgekit.parity import check, compare
    from edgekit.runtimes.isolated import run_isolated

    run, _ = detector_run
    out, _ = detector_export
    from edgekit.data import load_data
    from edgekit.model_loading import load_source

    x = load_data("builtin:mnist-detect").prepared("test", limit=100)
    source = load_source(run)
    ref = source.predict(x)
    got = run_isolated("litert", out / "model_fp32.tflite", x, timing=None).outputs
    assert check(compare(ref, got), "fp32", classifier=False) == []
    swapped = {**got, "boxes": got["boxes"][..., [1, 0, 3, 2]]}
    problems = check(compare(ref, swapped), "fp32", classifier=False)
    assert problems and "source's" in problems[0], problems
    assert check(compare(ref, swapped), "int8", classifier=False), "x/y swapped boxes pass as int8"
    # NMS left out of the graph: boxes and scores per cell, no count: not the source's detections
    r = edgekit_cli("export", run, "--format", "tflite", "--quant", "fp32", "--nms", "off", "--out", tmp_path / "raw")
    assert r.returncode == 0, r.stderr
    raw = run_isolated("litert", tmp_path / "raw" / "model_fp32.tflite", x, timing=None).outputs
    assert sorted(raw) == ["boxes", "scores"] and raw["boxes"].shape[1:] == (64, 4)
    with pytest.raises(ValueError, match="no output named"):
        compare(ref, raw)


def test_bench_shows_map_for_every_runtime(detector_run, detector_export, tmp_path):
    out, _ = detector_export
    report = tmp_path / "bench.json"
    r = edgekit_cli("bench", out, "--runs", "10", "--repeats", "1", "--samples", "300", "--json", report)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mAP@0.5" in r.stdout
    rows = json.loads(report.read_text())["rows"]
    ref = next(row for row in rows if row.get("is_reference"))
    assert ref["metric"] == "mAP@0.5" and ref["accuracy"] > 0.04 and 0 < ref["map"] < ref["accuracy"]
    for row in rows:
        if row.get("is_reference"):
            continue
        assert row["status"] == "ok" and row["metric"] == "mAP@0.5", row
        assert row["same_detections"] >= 0.99 and abs(row["accuracy"] - ref["accuracy"]) < 0.005, row  # Keras's
    runtimes = {row["runtime"] for row in rows}
    assert {"litert", "onnxruntime", "tfjs-node"} <= runtimes, runtimes
    assert np.isfinite([row["latency_ms"]["p50"] for row in rows]).all()
    # the gate: an mAP drop beyond its threshold fails, named as mAP
    baseline = tmp_path / "baseline.json"
    assert edgekit_cli("baseline", report, "--out", baseline).returncode == 0
    worse = json.loads(report.read_text())
    for row in worse["rows"]:
        if row["name"] == "model_fp32.tflite":
            row["accuracy"] = round(row["accuracy"] - 0.03, 5)
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    r = edgekit_cli("check", tmp_path / "worse.json", "--baseline", baseline)
    assert r.returncode == 1 and "mAP@0.5" in r.stdout and "points below" in r.stdout, r.stdout + r.stderr
    assert edgekit_cli("check", report, "--baseline", baseline).returncode == 0


def test_packages_show_the_detections(detector_export, tmp_path):
    """The web page draws each detection's box in its class's colour over the sample (LiteRT.js in Chromium),
    the same detections LiteRT gives here; run.py prints them and saves them drawn."""
    import subprocess
    import sys

    from conftest import package_page

    from edgekit.runtimes.isolated import run_isolated

    out, _ = detector_export
    web = tmp_path / "web"
    r = edgekit_cli("package", out / "model_fp32.tflite", "--target", "web", "--out", web)
    assert r.returncode == 0, r.stderr
    card = json.loads((web / "model_card.json").read_text())
    assert card["task"] == "detection" and card["nms"]["max_detections"] == 20
    assert next(o for o in card["outputs"] if o["name"] == "classes")["labels"] == [str(i) for i in range(10)]
    samples = json.loads((web / "samples.json").read_text())
    raw = np.asarray(samples["samples"][0]["inputs"]["image"], np.float32).reshape(1, 64, 64, 1)
    here = run_isolated("litert", out / "model_fp32.tflite", raw * card["preprocessing"]["scale"], timing=None).outputs
    n = int(here["count"][0])
    assert n >= 1, "no detection on sample 0"
    with package_page(web) as (page, errors):
        page.click("#sample-0")
        page.wait_for_function("window.lastPrediction && window.lastPrediction.detections", timeout=30000)
        found = page.evaluate("window.lastPrediction.detections.map(d => ({cls: d.class, box: [...d.box]}))")
        assert len(found) == n
        np.testing.assert_allclose([d["box"] for d in found], here["boxes"][0, :n], atol=1e-4)
        for d in found[-1:]:  # the last box drawn: its left edge, half way down, is in its class's colour
            x, y = round(d["box"][0] * 256), round((d["box"][1] + d["box"][3]) / 2 * 256)
            px = page.evaluate(f"[...document.getElementById('scene').getContext('2d').getImageData({x - 1}, {y}, 3, 1).data]")
            want = np.array([int(c, 16) for c in (PALETTE[d["cls"] % 10][i:i + 2] for i in (1, 3, 5))])
            got = np.array(px).reshape(3, 4)[:, :3]
            assert np.abs(got - want).sum(axis=1).min() < 90, (d, got.tolist(), want.tolist())
        assert not errors, errors
    rpi = tmp_path / "rpi"
    assert edgekit_cli("package", out / "model_fp32.tflite", "--target", "rpi", "--out", rpi).returncode == 0
    r = subprocess.run([sys.executable, str(rpi / "run.py"), "--sample", "0", "--save", str(tmp_path / "boxes.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout.strip().splitlines()[-1])
    assert line["count"] == n and np.allclose([d["box"] for d in line["detections"]], here["boxes"][0, :n], atol=1e-3)
    from PIL import Image

    assert Image.open(tmp_path / "boxes.png").size == (384, 384)


# the page's colour per class (edgekit/package/templates/web_index.html, COLOURS)
PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#fabebe"]
