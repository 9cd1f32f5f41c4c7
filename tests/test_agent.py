"""``edgekit agent`` on 127.0.0.1 in a subprocess, standing in for a board, and ``bench --device``.

The agent is started as a user starts it, in a Python where importing TensorFlow fails (the
``edgekit[agent]`` install has none), and everything goes through its HTTP API.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import REPO, edgekit_cli

TOKEN = "test-token-0123456789"


@contextlib.contextmanager
def agent(tmp_path, *, env: dict | None = None, args: tuple = ()):
    """A running agent: yields its URL and process; stopped (killed) afterwards."""
    code = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "
            "from edgekit.cli import main; main(sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", code, "agent", "--port", "0", "--name", "testboard",
                             "--cache", str(tmp_path / "cache"), *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EDGEKIT_AGENT_TOKEN": TOKEN, **(env or {})})
    try:
        line = proc.stdout.readline()
        m = re.search(r"on (http://127\.0\.0\.1:\d+) ", line)
        assert m, line + proc.stderr.read()
        yield m.group(1), proc
    finally:
        proc.kill()
        proc.wait()


def _bench(url, *artifacts, out, token=TOKEN, extra=()):
    return edgekit_cli("bench", *artifacts, "--device", url, "--no-reference", "--data", "builtin:digits", "--repeats", "1",
                       "--runs", "30", "--min-time", "0.1", "--json", out, *extra, env={"EDGEKIT_AGENT_TOKEN": token})


@pytest.mark.timing
def test_bench_through_the_agent_gives_the_local_rows_sends_each_file_once_and_calibrates(digits_export, tmp_path):
    from edgekit.device_profiles import load_profile

    arts = [digits_export / "model_fp32.tflite", digits_export / "model_int8.tflite"]
    with agent(tmp_path) as (url, _):
        r = _bench(url, *arts, out=tmp_path / "dev.json")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "measured on testboard" in r.stdout and "MEASURED on testboard" in r.stdout
        first = json.loads((tmp_path / "dev.json").read_text())
        # `profiles calibrate` measures the reference workload there; estimates made with that profile
        # land near what the device then measures (here the 'device' is this host: within 30%)
        r = edgekit_cli("profiles", "calibrate", "raspberry-pi-4", "--device", url, "--runs", "10",
                        "--out", tmp_path / "board.yaml", env={"EDGEKIT_AGENT_TOKEN": TOKEN})
        assert r.returncode == 0, r.stdout + r.stderr
        assert "mobilenet_v1 on testboard" in r.stdout and "the profile said 75 ms" in r.stdout
        for _ in range(2):  # a miss of the estimate band is measured again once (see the band's note below)
            r = _bench(url, *arts, out=tmp_path / "dev2.json", extra=("--profile", str(tmp_path / "board.yaml")))
            assert r.returncode == 0, r.stdout + r.stderr
            assert "est. error" in r.stdout
            second = json.loads((tmp_path / "dev2.json").read_text())
            if all(0.5 <= 1 + row["estimate_error_pct"] / 100 <= 2.0 for row in second["rows"]):
                break
    r = edgekit_cli("bench", *arts, "--no-reference", "--data", "builtin:digits", "--repeats", "1", "--runs", "30",
                    "--min-time", "0.1", "--json", tmp_path / "local.json")
    assert r.returncode == 0, r.stderr
    local = {row["name"]: row for row in json.loads((tmp_path / "local.json").read_text())["rows"]}
    assert first["device"]["name"] == "testboard" and "litert" in first["device"]["runtimes"]
    assert first["device"]["uploads"]["sent"] == 3  # two artifacts and one input array
    assert second["device"]["uploads"] == {"sent": 0, "cached": 3, "bytes": 0}  # the cache: nothing sent again
    for row in first["rows"]:
        ref = local[row["name"]]
        assert row["status"] == "ok" and row["measured_on"]["device"] == "testboard"
        assert row["accuracy"] == ref["accuracy"] and row["input_dtype"] == ref["input_dtype"]
        assert row["runtime_version"] == ref["runtime_version"]
        # the same worker on the same machine: the same latency, within the noise of a shared CI host
        assert 0.5 < row["latency_ms"]["p50"] / ref["latency_ms"]["p50"] < 2.0, (row["latency_ms"], ref["latency_ms"])
    board = load_profile(tmp_path / "board.yaml")
    assert board.name == "testboard" and "measured on testboard" in board.throughput.reference.source
    for row in second["rows"]:
        assert row["profile"] == "testboard" and row["estimate"]["kind"] == "estimate"
        # The 'device' is this host, so the calibrated factor (the reference measured there over the
        # same reference measured here) is near 1, and the estimate near the device's measurement, both
        # ways. Both sides time the reference alike (calibration.REFERENCE_TIMING: the best of 5 bursts'
        # p50s); 8 runs, 16 factors: 0.84-1.05 (one reading a side, as before, gave 0.92-1.98 and failed
        # CI once at 1.98). CI's 2-core host then measured 1.438 once (stop 37, a busy neighbour during
        # one side's bursts): the band is 1.6 both ways in log (0.625-1.6), which a thread-count mix-up
        # (~1.8x) or a doubled factor still fails. Estimate/measured also carries the
        # artifact's own p50 on each side (a 0.02 ms model, one burst, as bench times it): 0.61-1.62 in
        # the same runs, band 0.5-2; a busy host once read 2.05 on the 0.017 ms int8 file (stop 40), so a
        # miss is measured again once: an estimate that is wrong, not noisy, misses both times. The Pi 4's
        # own, uncalibrated figure would be ~20x off.
        factor, ratio = row["estimate"]["factor"], 1 + row["estimate_error_pct"] / 100
        assert 1 / 1.6 <= factor <= 1.6, row["estimate"]
        assert 0.5 <= ratio <= 2.0, (row["estimate_error_pct"], row["estimate"])
    # the gate takes device rows like any other: a CI job with a board attached gates on its latency
    r = edgekit_cli("baseline", tmp_path / "dev2.json", "--out", tmp_path / "base.json")
    assert r.returncode == 0, r.stderr
    r = edgekit_cli("check", tmp_path / "dev2.json", "--baseline", tmp_path / "base.json")
    assert r.returncode == 0, r.stdout + r.stderr
    for row in second["rows"]:
        row["latency_ms"] = {k: v * 3 for k, v in row["latency_ms"].items()}
    (tmp_path / "slower.json").write_text(json.dumps(second))
    r = edgekit_cli("check", tmp_path / "slower.json", "--baseline", tmp_path / "base.json")
    assert r.returncode == 1 and "latency" in r.stdout + r.stderr, r.stdout + r.stderr


def test_wrong_token_bad_uploads_and_files_are_refused_in_one_line(digits_export, tmp_path):
    from edgekit.agent.client import RemoteDevice
    from edgekit.errors import InputError

    with agent(tmp_path, args=("--max-upload-mb", "1")) as (url, proc):
        r = _bench(url, digits_export / "model_int8.tflite", out=tmp_path / "x.json", token="wrong")
        assert r.returncode == 2 and r.stderr.startswith("edgekit: error: the agent at") and "refused the token" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
        device = RemoteDevice(url, TOKEN)
        big = tmp_path / "big.tflite"
        big.write_bytes(b"\0\0\0\0TFL3" + os.urandom(2_000_000))
        not_tflite = tmp_path / "fake.tflite"
        not_tflite.write_bytes(b"#!/bin/sh\nrm -rf /\n" * 10)
        for path, message in ((big, "at most 1 MB"), (not_tflite, "not a .tflite file")):
            with pytest.raises(InputError, match=message):
                device.ensure_artifact(path)
        data = (digits_export / "model_int8.tflite").read_bytes()
        with pytest.raises(InputError, match="sha256"):  # sent under another file's name
            device._request("PUT", f"/v1/artifacts/{'0' * 64}?format=tflite", data, timeout=30)
        with pytest.raises(InputError, match="takes .tflite and .onnx"):
            device._request("PUT", f"/v1/artifacts/{hashlib.sha256(b'x').hexdigest()}?format=py", b"x", timeout=30)
        pickled = tmp_path / "p.npz"
        np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
        with pytest.raises(InputError, match="not a NumPy .npz of plain arrays|not numeric"):
            blob = pickled.read_bytes()
            device._request("PUT", f"/v1/inputs/{hashlib.sha256(blob).hexdigest()}", blob, timeout=30)
        assert sorted(os.listdir(tmp_path / "cache" / "artifacts")) == [] and os.listdir(tmp_path / "cache" / "tmp") == []
        assert proc.poll() is None  # still serving


def test_a_crashing_model_costs_its_row_and_two_clients_are_served_one_at_a_time(digits_export, tmp_path):
    from edgekit.agent.client import RemoteDevice

    crash = digits_export / "model_fp32.tflite"
    name = hashlib.sha256(crash.read_bytes()).hexdigest() + ".tflite"
    x = np.zeros((1, 8, 8, 1), np.float32)
    with agent(tmp_path, env={"EDGEKIT_FAULT_INJECT": f"worker:{name}"}) as (url, proc):
        device = RemoteDevice(url, TOKEN)
        r = device.run("litert", crash, x, timing={"warmup": 1, "runs": 5, "min_time_s": 0})
        assert not r.ok and "crashed (SIGSEGV)" in r.error and "on testboard" in r.error
        windows = []

        def client():
            d = RemoteDevice(url, TOKEN)
            res = d.run("litert", digits_export / "model_int8.tflite", x, timing={"warmup": 1, "runs": 10, "min_time_s": 1.0})
            windows.append(res.reply["agent_window"])

        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(windows) == 2 and proc.poll() is None
        (a0, a1), (b0, b1) = sorted(windows)
        assert a1 <= b0, windows  # the second measurement started after the first ended


def test_an_agent_killed_mid_run_gives_failed_rows_and_exit_1(tmp_path):
    from conftest import mlperf

    model = mlperf("vww_96_float.tflite")  # slow enough (~0.3 ms) that 100,000 timed runs take many seconds
    with agent(tmp_path) as (url, proc):
        bench = subprocess.Popen([sys.executable, "-m", "edgekit", "bench", str(model),
                                  "--device", url, "--no-reference", "--repeats", "2",
                                  "--runs", "100000", "--min-time", "60", "--json", str(tmp_path / "b.json")],
                                 cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "EDGEKIT_AGENT_TOKEN": TOKEN})
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not os.listdir(tmp_path / "cache" / "inputs"):
                time.sleep(0.2)  # the inputs arrived: the measurement is under way
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            out, err = bench.communicate(timeout=120)
        finally:  # a bench that hangs is stopped here, not left to run beside the next tests
            if bench.poll() is None:
                bench.kill()
                bench.communicate()
    assert bench.returncode == 1, out + err
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert rows and all(r["status"] == "failed" for r in rows)
    assert "cannot reach the agent" in rows[0]["error"] and "Traceback" not in out + err
