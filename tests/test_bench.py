"""Bench: the report a user reads, measured by running the artifacts; failures contained."""

from __future__ import annotations

import json

from conftest import edgekit_cli, mlperf


def test_bench_report_fields_and_accuracy(digits_export, tmp_path):
    js, md = tmp_path / "b.json", tmp_path / "b.md"
    r = edgekit_cli("bench", digits_export, "--runs", "50", "--min-time", "0.05", "--json", js, "--markdown", md)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(js.read_text())
    rows = report["rows"]
    assert [(x["runtime"], x["quant"]) for x in rows] == [
        ("keras", "fp32"), ("litert", "fp32"), ("litert", "fp16"), ("litert", "dynamic"), ("litert", "int8")]
    keras_acc = rows[0]["accuracy"]
    for row in rows:
        assert row["status"] == "ok"
        lat = row["latency_ms"]
        assert lat["count"] >= 50 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert row["init_ms"] > 0 and row["first_ms"] > 0 and row["peak_rss_mb"] > 10
    for row in rows[1:]:
        assert row["agreement"] >= 0.97 and abs(row["accuracy"] - keras_acc) <= 0.01
    assert rows[1]["max_abs_diff"] < 1e-4
    # LiteRT workers do not load TensorFlow: their memory is the runtime's, far below Keras's.
    assert rows[1]["peak_rss_mb"] < rows[0]["peak_rss_mb"] / 2
    assert report["machine"]["cores"] >= 1 and report["settings"]["threads"] == 1
    text = md.read_text()
    assert "| model_int8.tflite | tflite | int8 | litert |" in text
    assert "model_int8.tflite" in r.stdout


def test_corrupt_artifact_is_a_failed_row_not_a_crash(digits_export, tmp_path):
    """Among good artifacts, a corrupt one is a failed row with its reason, the others are measured, exit 1;
    alone, it is bad input: one line, exit 2."""
    good = digits_export / "model_fp32.tflite"
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(good.read_bytes()[:2000])
    r = edgekit_cli("bench", good, bad, "--runs", "10", "--min-time", "0", "--repeats", "1", "--data", "builtin:digits",
                    "--json", tmp_path / "r.json")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    rows = {row["name"]: row for row in json.loads((tmp_path / "r.json").read_text())["rows"]}
    assert rows["model_fp32.tflite"]["status"] == "ok" and rows["model_fp32.tflite"]["latency_ms"]["p50"] > 0
    assert rows["model_fp32.tflite"]["accuracy"] > 0.8
    assert rows["truncated.tflite"]["status"] == "failed" and "not a valid .tflite" in rows["truncated.tflite"]["error"]
    r = edgekit_cli("bench", bad, "--json", tmp_path / "alone.json")
    assert r.returncode == 2 and "truncated.tflite cannot be loaded" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "alone.json").exists()


def test_authors_int8_file_runs_with_generated_inputs(tmp_path):
    r = edgekit_cli("bench", mlperf("ad01_int8.tflite"), mlperf("ad01_fp32.tflite"), "--runs", "20", "--min-time", "0",
                    "--json", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [row["quant"] for row in rows] == ["int8", "fp32"]
    assert rows[0]["input_dtype"] == "int8" and rows[0]["accuracy"] is None
    assert "generated" in rows[0]["data"]


def test_wrong_data_shape_is_a_usage_error(digits_export):
    r = edgekit_cli("bench", digits_export / "model_fp32.tflite", "--data", str(mlperf("calibration_samples.npz")))
    assert r.returncode == 2 and "shape" in r.stderr and "Traceback" not in r.stderr


def test_a_manifest_naming_files_outside_its_folder_is_refused(digits_export, tmp_path):
    import json
    import shutil

    folder = tmp_path / "exp"
    shutil.copytree(digits_export, folder)
    m = json.loads((folder / "manifest.json").read_text())
    m["artifacts"][0]["path"] = "../../../etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(m))
    r = edgekit_cli("bench", folder)
    assert r.returncode == 2 and "leaves the manifest's folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_version_1_manifest_still_benches_and_keeps_its_io(digits_export, tmp_path):
    """A folder exported before manifest version 2 (the IO spec in source and details.io) is read as before."""
    import shutil

    from edgekit.artifact import Manifest

    m = json.loads((digits_export / "manifest.json").read_text())
    assert m["manifest_version"] == 2 and m["io"]["outputs"] == [
        {"name": "output", "shape": [10], "dtype": "float32", "kind": "probabilities"}]
    int8 = next(a for a in m["artifacts"] if a["quant"] == "int8")
    assert int8["io"]["inputs"][0]["dtype"] == "int8" and int8["io"]["inputs"][0]["quantization"]["scale"] > 0
    folder = tmp_path / "v1"
    folder.mkdir()
    shutil.copy(digits_export / int8["path"], folder)
    v1 = {"manifest_version": 1, "source": m["source"], "run": m["run"], "versions": m["versions"],
          "artifacts": [{**{k: v for k, v in int8.items() if k != "io"}, "details": {**int8["details"], "io": int8["io"]}}]}
    (folder / "manifest.json").write_text(json.dumps(v1))
    old = Manifest.load(folder)
    assert old.artifacts[0].io == int8["io"] and "io" not in old.artifacts[0].details
    assert [t["name"] for t in old.io["inputs"]] == ["input"]
    r = edgekit_cli("bench", folder, "--runs", "10", "--min-time", "0", "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(x["quant"], x["status"]) for x in rows] == [("fp32", "ok"), ("int8", "ok")]  # the source, and the file
    assert rows[1]["agreement"] >= 0.97


def test_python_api_bench_and_in_process_export(digits_run, digits_export, tmp_path):
    """edgekit.bench returns the report the CLI writes; edgekit.export(isolate=False) converts in this process."""
    import edgekit

    report = edgekit.bench([str(digits_export / "model_fp32.tflite")], runs=10, min_time_s=0, repeats=1,
                           data="builtin:digits")
    rows = {r["runtime"]: r for r in report["rows"]}
    assert set(rows) == {"keras", "litert"} and rows["litert"]["accuracy"] > 0.9
    assert rows["litert"]["agreement"] == 1.0 and rows["litert"]["latency_ms"]["p50"] > 0
    from edgekit.exporters import supervised

    def no_child(*a, **k):
        raise AssertionError("isolate=False must not start the converter child")

    real = supervised.export_supervised
    supervised.export_supervised = no_child
    try:
        manifest = edgekit.export(str(digits_run), ["tflite"], ["fp32"], str(tmp_path / "exp"), isolate=False,
                                  log=lambda s: None)
    finally:
        supervised.export_supervised = real
    assert manifest.artifacts[0].ok and (tmp_path / "exp" / "model_fp32.tflite").is_file()
