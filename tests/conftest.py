"""Shared fixtures: one small trained digits run and its TFLite export, made once per session."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEKIT_FIXTURES", REPO.parent / "shared" / "fixtures" / "mlperf-tiny"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every process a test starts inherits this tag, so a leaked one is traced to this pytest process
# (pytest-xdist runs several side by side).
TEST_TAG = f"EDGEKIT_TEST_PROCESS={os.getpid()}"
os.environ["EDGEKIT_TEST_PROCESS"] = str(os.getpid())


REQUIRED = os.environ.get("EDGEKIT_REQUIRE_FIXTURES") == "1"  # CI (.ci/run): what a test needs must be here
HAS_CHROMIUM = bool(shutil.which("chromium") or shutil.which("chromium-browser") or os.environ.get("EDGEKIT_CHROMIUM"))
# A browser test skips on a developer's machine without Chromium and runs (so fails, naming what is
# missing) in CI: a check that never ran is no pass.
needs_chromium = pytest.mark.skipif(not HAS_CHROMIUM and not REQUIRED,
                                    reason="Chromium is not installed (make install installs it as root)")


def mlperf(name: str) -> Path:
    """Path of an MLPerf Tiny fixture. Missing, the test is skipped on a developer's machine and
    fails in CI (``EDGEKIT_REQUIRE_FIXTURES=1``, set by .ci/run): a check that never ran is no pass."""
    path = FIXTURES / name
    if not path.exists():
        message = f"MLPerf Tiny fixture {name} not found in {FIXTURES} (set EDGEKIT_FIXTURES)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return path


def class_seeking_inputs(predict, shape, lo: float, hi: float, classes: int, per_class: int, *, seed: int = 0,
                         steps: int = 40) -> np.ndarray:
    """Inputs on which a classifier predicts every class: from uniform noise in ``[lo, hi]``, a few
    steps of signed gradient ascent on each target class's log-probability, clipped to the range.

    Generated parity inputs on which the float model predicts one class make top-1 agreement void
    (any export that answers that class passes); these span the classes, so agreement means
    something. ``predict`` maps a float32 tensor batch to probabilities (TF, differentiable)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = tf.Variable(rng.uniform(lo, hi, (classes * per_class, *shape)).astype(np.float32))
    target = np.repeat(np.arange(classes), per_class)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.math.log(tf.gather(predict(x), target, batch_dims=1) + 1e-9))
        x.assign(tf.clip_by_value(x + (hi - lo) * 0.01 * tf.sign(tape.gradient(loss, x)), lo, hi))
    return x.numpy()


def edgekit_cli(*args: str, env: dict | None = None, timeout: float = 600, wrap=()) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would (``wrap``: a command it runs under, e.g. setpriv)."""
    return subprocess.run(
        [*wrap, sys.executable, "-m", "edgekit", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A CNN trained on builtin:digits (a few epochs: enough for >90% accuracy)."""
    from edgekit.trainer.fit import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    train("cnn", "builtin:digits", out, epochs=12, verbose=0, log=lambda s: None)
    return out


@pytest.fixture(scope="session")
def digits_export(digits_run, tmp_path_factory) -> Path:
    """digits_run exported to TFLite in every quant mode."""
    from edgekit.exporters.pipeline import export_model

    out = tmp_path_factory.mktemp("export") / "export"
    export_model(digits_run, ["tflite"], ["fp32", "fp16", "dynamic", "int8"], out, log=lambda s: None)
    return out


@contextlib.contextmanager
def package_page(folder: Path):
    """A web package served by ``edgekit serve``'s server and opened in headless Chromium, ready
    (``window.edgekitReady``); yields ``(page, errors)``, the page's uncaught errors collected."""
    import threading

    from playwright.sync_api import sync_playwright

    from edgekit.package.serve import make_server
    from edgekit.runtimes.js_env import chromium_binary
    from edgekit.runtimes.tfjs_browser import CHROMIUM_ARGS

    server = make_server(folder, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_binary(), args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for_function("window.edgekitReady === true", timeout=60000)
            yield page, errors
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _started_here() -> dict[int, str]:
    """Live processes that carry this pytest process's tag, whatever their parent (a child still
    attached, an orphan re-parented to init or to a subreaper), but not pytest itself."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            mine = TEST_TAG.encode() in (d / "environ").read_bytes().split(b"\0")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if mine and state != "Z":  # a zombie has finished; only its parent's wait is missing
            out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return out


def _reap(before: set[int], grace_s: float) -> dict[int, str]:
    """Processes started here that are not in ``before`` and still run after ``grace_s``: killed, and returned."""
    deadline = time.time() + grace_s
    while (left := {p: c for p, c in _started_here().items() if p not in before}) and time.time() < deadline:
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_session():
    """Once more at the end: anything started by a session fixture, or adopted by a subreaper, is gone
    too (this fixture is set up first and torn down last)."""
    before = set(_started_here())
    yield
    left = _reap(before, grace_s=5)
    assert not left, f"processes left running at the end of the session: {sorted(left.values())}"


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    """Nothing a test started may keep running after it, attached or not: a leaked worker timing a
    model eats a core that every later measurement in the run depends on. Module and session
    fixtures are set up before this one, so what they keep for later tests is not counted."""
    before = set(_started_here())
    yield
    left = _reap(before, grace_s=5)
    assert not left, f"processes left running after the test: {sorted(left.values())}"
