"""Device profiles: the schema and its messages, bench per profile, estimates, checks, the HTML report."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import HAS_CHROMIUM, REQUIRED, edgekit_cli, needs_chromium

from edgekit.device_profiles import builtin_names, load_profile

BUILTIN = ["host", "mobile-cpu", "raspberry-pi-4", "raspberry-pi-5", "raspberry-pi-zero-2", "browser-desktop", "browser-mobile",
           "cortex-m4f", "cortex-m7", "esp32-s3"]


def test_builtin_profiles_load_and_say_where_their_figures_come_from():
    assert builtin_names() == BUILTIN
    for name in BUILTIN[1:]:
        p = load_profile(name)
        t = p.throughput
        assert p.estimates and p.threads and ((p.memory_mb and p.storage_mb) or (p.sram_kb and p.flash_kb))
        assert t.reference.latency_ms > 0 and len(t.reference.source) > 30 and t.peak_gmacs_fp32 > 0
        assert t.reference.runtime in p.runtimes
    assert load_profile("raspberry-pi-4").cpu["model"] == "Cortex-A72" and load_profile("raspberry-pi-4").threads == 4
    r = edgekit_cli("profiles", "list")
    assert r.returncode == 0 and all(n in r.stdout for n in BUILTIN)
    r = edgekit_cli("profiles", "show", "raspberry-pi-4")
    assert r.returncode == 0 and "XNNPACK README" in r.stdout and "75 ms" in r.stdout


@pytest.mark.parametrize("text,expect", [
    ("name: b\nkind: board\nruntimes: [litert]\nformats: [tflite]\nthread: 4\n", "unknown key 'thread'. Did you mean 'threads'?"),
    ("name: b\nkind: board\nruntimes: [litert]\nformats: [tflite]\nthreads: four\n", "'threads' must be an integer or null, got 'four'"),
    ("name: b\nkind: bord\nruntimes: [litert]\nformats: [tflite]\n", "Did you mean 'board'?"),
    ("name: b\nkind: board\nruntimes: [litrt]\nformats: [tflite]\n", "unknown runtime 'litrt' in 'runtimes'. Did you mean 'litert'?"),
    ("name: b\nkind: board\nruntimes: [litert]\nformats: [tflite]\n", "a board profile needs 'throughput'"),
    ("name: b\nkind: board\nruntimes: [litert]\nformats: [tflite]\nthroughput: {peak_gmacs_fp32: 1, peak_gmacs_int8: 2, "
     "reference: {workload: mobilenet_v1, runtime: litert, latency_ms: 5, threads: 1, sorce: x}}\n",
     "unknown key 'throughput.reference.sorce'. Did you mean 'source'?"),
    ("name: [b\n", "is not valid YAML at line 2"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_a_bad_profile_file_names_the_key_and_the_fix(tmp_path, text, expect):
    f = tmp_path / "board.yaml"
    f.write_text(text)
    r = edgekit_cli("profiles", "show", f)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr


def test_unknown_profile_name_suggests_the_closest(digits_export):
    r = edgekit_cli("bench", digits_export, "--profile", "raspbery-pi-4")
    assert r.returncode == 2 and "Did you mean 'raspberry-pi-4'?" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def profile_report(digits_run, tmp_path_factory):
    """The digits model as TFLite fp32/int8 and TF.js fp32, benched for a board, a browser and a user's own profile."""
    from edgekit.exporters.pipeline import export_model

    tmp = tmp_path_factory.mktemp("profiles")
    export_model(digits_run, ["tflite", "tfjs"], ["fp32", "int8"], tmp / "exp", log=lambda s: None)
    board = tmp / "tiny-board.yaml"
    text = (load_profile("raspberry-pi-4").path and open(load_profile("raspberry-pi-4").path).read())
    board.write_text(text.replace("name: raspberry-pi-4", "name: tiny-board").replace("memory_mb: 1024", "memory_mb: 5")
                     .replace("latency_budget_ms: null", "latency_budget_ms: 0.001"))
    profiles = f"raspberry-pi-4,{board}" + (",browser-desktop" if HAS_CHROMIUM or REQUIRED else "")
    # --runtime: the boards on LiteRT, the browser on TF.js (tests/test_web_engines.py runs the other web engines)
    r = edgekit_cli("bench", tmp / "exp", "--profile", profiles, "--runtime", "litert,tfjs-browser", "--repeats", "2",
                    "--runs", "50", "--min-time", "0.1",
                    "--json", tmp / "b.json", "--html", tmp / "b.html", "--markdown", tmp / "b.md")
    assert r.returncode == 0, r.stderr
    return json.loads((tmp / "b.json").read_text()), tmp, r.stdout


def test_bench_per_profile_runs_the_profile_runtime_threads_and_labels_estimates(profile_report):
    report, _, stdout = profile_report
    rows = [r for r in report["rows"] if r["profile"] == "raspberry-pi-4"]
    assert [(r["format"], r["quant"], r["runtime"]) for r in rows] == [("tflite", "fp32", "litert"), ("tflite", "int8", "litert")]
    cores = len(os.sched_getaffinity(0))
    for r in rows:
        est = r["estimate"]
        assert est["kind"] == "estimate" and est["factor"] > 0
        assert est["latency_ms"] == pytest.approx(r["latency_ms"]["p50"] * est["factor"], rel=1e-3)
        assert est["reference"]["device_ms"] > 0 and est["reference"]["host_ms"] > 0
        assert r["threads"] == min(4, cores)
        assert len(r["repeats"]["p50_ms"]) == 2 and r["repeats"]["p50_cv"] is not None
        # the digits cnn: 8x8x32x9 + 8x8x32x32x9 + 4x4x64x32x9 + 4x4x64x64x9 + 1024x10
        assert r["macs"] == 1503232 and 0 < est["roofline"] < 1
        assert r["verdict"] == "pass" and r["checks"]["memory"]["ok"] and r["checks"]["storage"]["ok"]
    fp32, int8 = rows
    assert fp32["estimate"]["reference"]["quant"] == "fp32" and int8["estimate"]["reference"]["quant"] == "int8"
    assert "XNNPACK" in fp32["estimate"]["reference"]["source"]
    assert any(n.startswith("raspberry-pi-4: skipped model_fp32_tfjs") and "tfjs runs on tfjs-node" in n for n in report["notes"])
    assert "profile raspberry-pi-4 (estimates)" in stdout and "ESTIMATE" in stdout


def test_a_profile_limit_that_is_broken_fails_its_verdict(profile_report):
    report, _, _ = profile_report
    rows = [r for r in report["rows"] if r["profile"] == "tiny-board"]
    assert rows
    for r in rows:
        assert r["verdict"] == "fail: memory, latency budget", r["verdict"]
        assert r["checks"]["memory"]["limit_mb"] == 5 and not r["checks"]["latency_budget"]["ok"]
    from edgekit.reports.render import DEVICE_COLUMNS, device_cells

    cells = dict(zip(DEVICE_COLUMNS, device_cells(rows[0]), strict=True))
    budget = rows[0]["checks"]["latency_budget"]
    # the value, the limit and the verdict, never a value under a heading that names the limit
    assert cells["est. / budget ms"] == f"~{budget['value_ms']:.3g} / {budget['limit_ms']:g} OVER", cells
    assert cells["peak / limit MB"].endswith(" / 5 OVER"), cells


@needs_chromium
def test_browser_profile_runs_tfjs_in_chromium_and_html_report_renders(profile_report):
    from playwright.sync_api import sync_playwright

    from edgekit.runtimes.js_env import chromium_binary
    from edgekit.runtimes.tfjs_browser import CHROMIUM_ARGS

    report, tmp, _ = profile_report
    rows = [r for r in report["rows"] if r["profile"] == "browser-desktop"]
    assert [(r["format"], r["quant"], r["runtime"]) for r in rows] == [("tfjs", "fp32", "tfjs-browser")]
    for r in rows:
        assert r["status"] == "ok" and r["estimate"]["reference"]["workload"] == "mobilenet_v2" and r["backend"] == "wasm"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto((tmp / "b.html").as_uri())
        images = page.evaluate("() => [...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 200])")
        headings = page.evaluate("() => [...document.querySelectorAll('h2')].map(h => h.textContent)")
        browser.close()
    assert [ok for _, ok in images] == [True] * len(images)
    alts = [a for a, _ in images]
    assert alts[:5] == ["host: accuracy vs latency", "raspberry-pi-4: accuracy vs latency", "tiny-board: accuracy vs latency",
                        "browser-desktop: accuracy vs latency", "latency histograms"]
    assert alts[5:] == [f"training history of {report['rows'][0]['source']}"]  # the run's history.png, shown
    assert "Profile browser-desktop (estimates)" in headings
    assert "### profile raspberry-pi-4" in (tmp / "b.md").read_text()


@pytest.mark.timing
def test_mobilenet_v2_estimate_on_raspberry_pi_4_lands_near_the_published_44_ms(tmp_path):
    """The calibration point: MobileNetV2 1.0 224 fp32 runs in about 44 ms on a Pi 4 (XNNPACK's figure).
    The estimate comes from MobileNet v1's published figure (75 ms), never from this one."""
    import keras

    from edgekit.bench.runner import run_bench
    from edgekit.device_profiles.calibration import reference_artifact
    from edgekit.exporters.pipeline import export_model
    from edgekit.runtimes.isolated import p50_together

    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None)
    model.save(tmp_path / "mnv2.keras")
    export_model(tmp_path / "mnv2.keras", ["tflite"], ["fp32"], tmp_path / "exp", parity_samples=4, log=lambda s: None)
    report = run_bench([str(tmp_path / "exp")], profiles="raspberry-pi-4", reference=False, repeats=1, runs=5, min_time_s=0.1)
    row = next(r for r in report["rows"] if r["profile"] == "raspberry-pi-4")
    assert row["macs"] == pytest.approx(300.8e6, rel=0.01)
    # the factor is the published reference over the reference measured here, in this run
    est = row["estimate"]
    assert est["factor"] == pytest.approx(75.0 / est["reference"]["host_ms"], rel=1e-3)
    assert est["reference"]["workload"] == "mobilenet_v1" and row["threads"] == min(4, len(os.sched_getaffinity(0)))
    # Where it lands, judged on the reference and MobileNetV2 timed together, interleaved, in one
    # worker with the profile's threads (separate measurements on a shared host drift apart: 42-88 ms
    # was seen that way). Measured alone, 4 runs of 7 rounds: 45.2-47.5 ms (+3% to +8%). Held to the
    # estimate's own +-30% target, both sides: a thread-count mix-up or a wrong workload is 2x off.
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    p50 = p50_together("litert", {"reference": reference_artifact("mobilenet_v1", "tflite", "fp32"),
                                  "mnv2": tmp_path / "exp" / "mnv2_fp32.tflite"}, x, threads=row["threads"], rounds=7,
                       timing={"warmup": 2, "runs": 10, "min_time_s": 0.0})
    landed = p50["mnv2"] * 75.0 / p50["reference"]
    assert 44 * 0.7 <= landed <= 44 * 1.3, (landed, p50)


def test_a_model_larger_than_the_devices_memory_is_not_run_there(digits_export, tmp_path):
    board = tmp_path / "tiny.yaml"
    board.write_text(open(load_profile("raspberry-pi-4").path).read().replace("name: raspberry-pi-4", "name: tiny")
                     .replace("memory_mb: 1024", "memory_mb: 0.1"))
    r = edgekit_cli("bench", digits_export / "model_fp32.tflite", "--profile", f"host,{board}", "--repeats", "1",
                    "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    assert [row["profile"] for row in report["rows"]] == ["host", "host"]
    assert any("is larger than the device's memory (0.1 MB): not run" in n for n in report["notes"])


def test_an_estimate_faster_than_the_device_can_compute_is_flagged_not_shown_as_fact():
    """The roofline is the estimate's sanity check: at 18 M MACs in 0.1 ms a Pixel 2 would compute
    180 GMAC/s, 4.8x its fp32 peak. Such a row says PEAK? (the factor does not fit the artifact)."""
    from edgekit.bench.estimate import estimate_row
    from edgekit.reports.render import DEVICE_COLUMNS, device_cells

    phone = load_profile("mobile-cpu")
    device_ms = phone.throughput.reference.latency_ms
    fast = estimate_row(0.1, macs=18_000_000, quant="fp32", fmt="tflite", profile=phone, host_ref_ms=device_ms)
    plausible = estimate_row(1.0, macs=18_000_000, quant="fp32", fmt="tflite", profile=phone, host_ref_ms=device_ms)
    assert fast["factor"] == 1 and fast["roofline"] > 1 and fast["above_peak"]
    assert 0.2 < plausible["roofline"] < 1 and not plausible["above_peak"] and not plausible["low_utilisation"]
    row = {"name": "m.tflite", "quant": "fp32", "runtime": "litert", "status": "ok", "latency_ms": {"p50": 0.1},
           "estimate": fast, "checks": {}}
    assert dict(zip(DEVICE_COLUMNS, device_cells(row), strict=True))["roofline"] == "479% PEAK?"
