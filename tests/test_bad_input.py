"""Bad input over every command: one line naming the problem, a non-zero exit, no traceback, nothing written.

Each case builds its input in a fresh folder, runs the real CLI, and checks the four promises.
"""

from __future__ import annotations

import os

import pytest
from conftest import edgekit_cli


def _corrupt(src, dst, how):
    data = src.read_bytes()
    dst.write_bytes({"truncated": data[: len(data) // 3], "flipped": bytes(b ^ 0xFF if i % 97 == 0 else b for i, b in enumerate(data)),
                     "empty": b"", "random": os.urandom(2048)}[how])
    return dst


def _cases(digits_run, digits_export, t):
    """(command, args) pairs; ``t`` is a fresh folder; OUT paths live under t/out*."""
    tfl = digits_export / "model_fp32.tflite"
    nan = t / "nan.npz"
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 16, (20, 8, 8, 1)).astype(np.float32)
    x[3, 2, 2, 0] = np.nan
    np.savez(nan, x_train=x, x_test=x)
    wrong = t / "wrong.npz"
    np.savez(wrong, x_train=np.zeros((10, 5, 5, 3), np.float32), x_test=np.zeros((10, 5, 5, 3), np.float32))
    badyaml = t / "bad.yaml"
    badyaml.write_text("name: [b\n")
    typo = t / "typo.yaml"
    typo.write_text("name: myboard\ncpu_cors: 4\n")
    empty = t / "empty.npz"
    np.savez(empty, x_train=np.zeros((0, 8, 8, 1), np.float32), y_train=np.zeros(0, np.int64),
             x_test=np.zeros((0, 8, 8, 1), np.float32), y_test=np.zeros(0, np.int64))
    inf = t / "inf.npz"
    x_inf = x.copy()
    x_inf[3] = 0
    x_inf[5, 1, 1, 0] = np.inf
    np.savez(inf, x_train=x_inf, x_test=x_inf)
    labels20 = t / "labels20.npz"
    np.savez(labels20, x_train=x[:10], y_train=np.arange(10) + 10, x_test=x[:10], y_test=np.arange(10) + 10)
    a_file = _text(t / "a_file", "x")
    ro = t / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    return {
        "train missing data": ["train", "cnn", "--data", t / "nope.npz", "--out", t / "out1"],
        "train unknown recipe": ["train", "cnnn", "--data", "builtin:digits", "--out", t / "out2"],
        "train folder as file": ["train", "cnn", "--data", t, "--out", t / "out3"],
        "export missing model": ["export", t / "missing.keras", "--out", t / "out4"],
        "export empty .keras": ["export", _corrupt(tfl, t / "empty.keras", "empty"), "--out", t / "out5"],
        "export random .keras": ["export", _corrupt(tfl, t / "random.keras", "random"), "--out", t / "out6"],
        "export truncated .h5": ["export", _corrupt(tfl, t / "trunc.h5", "truncated"), "--out", t / "out7"],
        "export NaN calibration": ["export", digits_run, "--quant", "int8", "--calib", nan, "--out", t / "out8"],
        "export wrong-shape calibration": ["export", digits_run, "--quant", "int8", "--calib", wrong, "--out", t / "out9"],
        "export unwritable out": ["export", digits_run, "--out", ro / "sub"],
        "export out is a file": ["export", digits_run, "--out", a_file],
        "export out on a read-only filesystem": ["export", digits_run, "--out", "/proc/edgekit-out"],
        "export inf calibration": ["export", digits_run, "--quant", "int8", "--calib", inf, "--out", t / "out15"],
        "train empty data set": ["train", "cnn", "--data", empty, "--out", t / "out16"],
        "export unknown flag": ["export", digits_run, "--quantt", "int8", "--out", t / "out10"],
        "export bad uniform calib": ["export", digits_run, "--quant", "int8", "--calib", "uniform:5,1", "--out", t / "out11"],
        "bench truncated .tflite": ["bench", _corrupt(tfl, t / "trunc.tflite", "truncated")],
        "bench bit-flipped .tflite": ["bench", _corrupt(tfl, t / "flip.tflite", "flipped")],
        "bench random .onnx": ["bench", _corrupt(tfl, t / "rand.onnx", "random")],
        "bench empty model.json": ["bench", _empty_tfjs(t)],
        "bench wrong data shape": ["bench", tfl, "--data", wrong],
        "bench bad profile YAML": ["bench", tfl, "--profile", badyaml],
        "bench unknown profile": ["bench", tfl, "--profile", "raspberry-pi-6"],
        "bench mistyped profile key": ["bench", tfl, "--profile", typo],
        "bench labels that do not match the model": ["bench", tfl, "--data", labels20],
        "bench zero runs": ["bench", tfl, "--runs", "0"],
        "bench --ops with zero runs": ["bench", tfl, "--ops", "--ops-runs", "0"],
        "inspect --explore of a model": ["inspect", digits_run, "--explore"],
        "tune zero heartbeat": ["tune", "mlp", "--data", "builtin:digits", "--out", t / "tune", "--heartbeat", "0"],
        "tune --device not a URL": ["tune", "mlp", "--data", "builtin:digits", "--out", t / "tune", "--device", "board:8765",
                                    "--token", "x"],
        "inspect missing": ["inspect", t / "missing.keras"],
        "inspect .tflite": ["inspect", tfl],
        "inspect --html without --quant": ["inspect", digits_run, "--html", t / "q.html"],
        "profiles show missing file": ["profiles", "show", t / "nope.yaml"],
        "check missing report": ["check", t / "nope.json", "--baseline", t / "b.json"],
        "check not a report": ["check", _text(t / "r.json", "[1, 2]"), "--baseline", t / "b.json"],
        "baseline not JSON": ["baseline", _text(t / "r2.json", "{oops"), "--out", t / "out12.json"],
        "package unknown target": ["package", tfl, "--target", "watch", "--out", t / "out13"],
        "package missing artifact": ["package", t / "nope.tflite", "--target", "rpi", "--out", t / "out14"],
        "serve not a package": ["serve", t],
        "detector box outside the image": ["train", "detector", "--data", _yolo(t, "outside", "0 0.9 0.5 0.4 0.2\n"),
                                           "--out", t / "out17"],
        "detector empty label file": ["train", "detector", "--data", _yolo(t, "empty_label", ""), "--out", t / "out18"],
        "detector class id out of range": ["train", "detector", "--data", _yolo(t, "class_range", "2 0.5 0.5 0.2 0.2\n"),
                                           "--out", t / "out19"],
        "detector COCO file naming missing images": ["train", "detector", "--data", _coco_missing(t), "--out", t / "out20"],
        "classifier on detection data": ["train", "cnn", "--data", "builtin:mnist-detect", "--out", t / "out21"],
        "export --nms on a classifier": ["export", digits_run, "--nms", "on", "--out", t / "out22"],
        "export --max-detections 0": ["export", digits_run, "--max-detections", "0", "--out", t / "out23"],
    }


def _yolo(t, name, second_label):
    """A YOLO folder (images/, labels/, classes.txt with two names) whose second image's label file is ``second_label``."""
    import numpy as np
    from PIL import Image

    d = t / name
    (d / "images").mkdir(parents=True)
    (d / "labels").mkdir()
    for i, label in enumerate(["0 0.5 0.5 0.2 0.2\n", second_label, "1 0.3 0.3 0.1 0.1\n"]):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(d / "images" / f"im{i}.png")
        (d / "labels" / f"im{i}.txt").write_text(label)
    (d / "classes.txt").write_text("cat\ndog\n")
    return d


def _coco_missing(t):
    import json

    path = t / "instances.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "gone.jpg", "width": 32, "height": 32}],
                                "annotations": [], "categories": [{"id": 1, "name": "cat"}]}))
    return path


def _text(path, text):
    path.write_text(text)
    return path


def _empty_tfjs(t):
    d = t / "empty_tfjs"
    d.mkdir()
    (d / "model.json").write_text("")
    return d


CASES = ["train missing data", "train unknown recipe", "train folder as file", "export missing model",
         "export empty .keras", "export random .keras", "export truncated .h5", "export NaN calibration",
         "export wrong-shape calibration", "export unwritable out", "export out is a file",
         "export out on a read-only filesystem", "export inf calibration", "train empty data set",
         "export unknown flag", "export bad uniform calib",
         "bench truncated .tflite", "bench bit-flipped .tflite", "bench random .onnx", "bench empty model.json",
         "bench wrong data shape", "bench bad profile YAML", "bench unknown profile", "bench mistyped profile key",
         "bench labels that do not match the model", "bench zero runs", "bench --ops with zero runs", "inspect missing",
         "inspect --explore of a model", "tune zero heartbeat", "tune --device not a URL",
         "inspect .tflite", "inspect --html without --quant", "profiles show missing file", "check missing report", "check not a report",
         "baseline not JSON", "package unknown target", "package missing artifact", "serve not a package",
         "detector box outside the image", "detector empty label file", "detector class id out of range",
         "detector COCO file naming missing images", "classifier on detection data", "export --nms on a classifier",
         "export --max-detections 0"]


# Root writes anywhere: the unwritable-OUT case runs as root without the capabilities that let it
# (CAP_DAC_OVERRIDE and friends), so the folder's 0500 mode applies as it does to any user.
AS_A_USER = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"] if os.geteuid() == 0 else []


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clean_line(case, digits_run, digits_export, tmp_path):
    """Every case is bad input: exit 2 (docs/testing.md), exactly one line on stderr naming the
    problem, no traceback, nothing written."""
    args = _cases(digits_run, digits_export, tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    r = edgekit_cli(*args, timeout=300, wrap=AS_A_USER if case == "export unwritable out" else ())
    assert "Traceback" not in r.stdout + r.stderr, f"{case}:\n{r.stderr}"
    assert r.returncode == 2, f"{case}: exit {r.returncode}, not 2\n{r.stdout}\n{r.stderr}"
    errors = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("edgekit: error:"), f"{case}:\n{r.stderr}"
    if case == "export unwritable out":
        assert "cannot be written (pick a folder you can write to)" in errors[0], errors[0]
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == before, f"{case} left {set(after) - set(before)}"
    staging = list(tmp_path.rglob(".edgekit-staging-*"))
    assert not staging, f"{case} left a staging folder {staging}"
