"""Shared fixtures: one small trained digits run and its TFLite export, made once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEKIT_FIXTURES", REPO.parent / "shared" / "fixtures" / "mlperf-tiny"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mlperf(name: str) -> Path:
    """Path of an MLPerf Tiny fixture; skips the test when the fixtures are not present."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"MLPerf Tiny fixture {name} not found in {FIXTURES} (set EDGEKIT_FIXTURES)")
    return path


def edgekit_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "edgekit", *map(str, args)],
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
