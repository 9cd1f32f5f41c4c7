"""``edgekit package`` and ``edgekit serve``: every target gives the answer edgekit's own runtime gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import edgekit_cli, needs_chromium


@pytest.fixture(scope="module")
def packaged(digits_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("package")
    r = edgekit_cli("export", digits_run, "--format", "tflite,tfjs,onnx", "--quant", "fp32,int8", "--out", tmp / "exp")
    assert r.returncode == 0, r.stderr
    out = {}
    for target, art in (("web", "model_fp32_tfjs"), ("rpi", "model_int8.tflite"), ("android", "model_int8.tflite"),
                        ("ios", "model_fp32.tflite"), ("web-litert", "model_int8.tflite"), ("web-ort", "model_int8.onnx")):
        r = edgekit_cli("package", tmp / "exp" / art, "--target", target.split("-")[0], "--out", tmp / target)
        assert r.returncode == 0, r.stderr
        out[target] = tmp / target
    return tmp, out


def _reference_labels(tmp, artifact, raw):
    """What edgekit's own runtime says for raw samples, with the run's preprocessing."""
    from edgekit.data.preprocessing import Preprocessing
    from edgekit.runtimes.isolated import run_isolated

    card = json.loads((tmp / "rpi" / "model_card.json").read_text())
    x = Preprocessing.from_dict(card["preprocessing"]).apply(raw)
    runtime = "tfjs-node" if artifact.endswith("_tfjs") else "onnxruntime" if artifact.endswith(".onnx") else "litert"
    r = run_isolated(runtime, tmp / "exp" / artifact, x)
    assert r.ok, r.error
    return [card["labels"][i] for i in r.output.argmax(axis=1)]


def _samples(pkg):
    """The raw samples of a one-input model's package, and samples.json."""
    s = json.loads((pkg / "samples.json").read_text())
    (name, shape), = s["inputs"].items()
    return np.asarray([v["inputs"][name] for v in s["samples"]], dtype=np.float32).reshape(-1, *shape), s


def test_every_package_carries_model_labels_preprocessing_and_samples(packaged):
    tmp, out = packaged
    for pkg in out.values():
        card = json.loads((pkg / "model_card.json").read_text())
        assert card["labels"] == [str(i) for i in range(10)] and card["preprocessing"]["scale"] == pytest.approx(1 / 16)
        assert card["input"]["shape"] == [None, 8, 8, 1] and (pkg / "labels.txt").read_text().split() == card["labels"]
        raw, s = _samples(pkg)
        assert len(raw) == 8 and len({v["labels"]["output"] for v in s["samples"]}) == 8  # one sample per class first
    assert (out["android"] / "assets" / "model.tflite").read_bytes() == (tmp / "exp" / "model_int8.tflite").read_bytes()
    assert "org.tensorflow.lite.Interpreter" in (out["android"] / "README.md").read_text()
    assert "import TensorFlowLite" in (out["ios"] / "README.md").read_text()
    assert "ai-edge-litert==" in (out["rpi"] / "requirements.txt").read_text()
    assert "ExecStart=" in (out["rpi"] / "edgekit-model.service").read_text()
    assert sorted(p.name for p in (out["web"] / "tfjs").iterdir()) == [
        "tf-backend-wasm.min.js", "tf.min.js", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm",
        "tfjs-backend-wasm.wasm"]


def test_rpi_runner_needs_no_tensorflow_and_agrees_with_edgekit(packaged, tmp_path):
    tmp, out = packaged
    raw, _ = _samples(out["rpi"])
    want = _reference_labels(tmp, "model_int8.tflite", raw)
    np.save(tmp_path / "batch.npy", raw)
    # -S -I: no site hooks; a fresh interpreter in which importing tensorflow is made to fail
    code = ("import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = ['run.py', sys.argv[1]]; "
            "runpy.run_path('run.py', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "batch.npy")], cwd=out["rpi"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = [json.loads(ln)["label"] for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert got == want


def test_mobile_assets_run_with_the_card_preprocessing(packaged):
    """What an app does with the assets (model_card.json's preprocessing, then LiteRT) gives edgekit's answer."""
    from edgekit.data.preprocessing import Preprocessing
    from edgekit.runtimes.litert import LiteRTRuntime

    tmp, out = packaged
    for target, artifact in (("android", "model_int8.tflite"), ("ios", "model_fp32.tflite")):
        assets = out[target] / "assets"
        card = json.loads((assets / "model_card.json").read_text())
        raw, _ = _samples(out[target])
        session = LiteRTRuntime().load(str(assets / "model.tflite"))
        got = [card["labels"][i] for i in session.run(Preprocessing.from_dict(card["preprocessing"]).apply(raw))["output"].argmax(axis=1)]
        assert got == _reference_labels(tmp, artifact, raw)


@needs_chromium
@pytest.mark.parametrize("pkg,artifact,engine", [("web", "model_fp32_tfjs", "TF.js wasm"),
                                                 ("web-litert", "model_int8.tflite", "LiteRT.js wasm"),
                                                 ("web-ort", "model_int8.onnx", "ONNX Runtime Web wasm")])
def test_web_package_predicts_in_chromium_what_edgekit_predicts(packaged, tmp_path, pkg, artifact, engine):
    """One page for every engine: a TF.js folder, an int8 .tflite (quantized at its boundary in the page)
    and an int8 .onnx each answer, sample by sample, what edgekit's Python runtime answers."""
    from conftest import package_page

    tmp, out = packaged
    raw, _ = _samples(out[pkg])
    want = _reference_labels(tmp, artifact, raw)
    with package_page(out[pkg]) as (page, errors):
        shown = []
        for i in range(len(raw)):
            page.click(f"#sample-{i}")
            page.wait_for_function(f"window.edgekitPredictions === {i + 1}")
            shown.append(page.inner_text("#label"))
        latency = float(page.inner_text("#latency"))
        backend = page.inner_text("#backend")
        page.screenshot(path=str(tmp_path / "web.png"))
    assert errors == []
    assert shown == want
    assert 0 < latency < 1000 and backend == engine
    card = json.loads((out[pkg] / "model_card.json").read_text())
    assert (out[pkg] / card["model_file"]).is_file() and (out[pkg] / "engine" / f"{card['engine']}.mjs").is_file()


def test_a_regression_model_is_packaged_as_values_not_as_a_class(tmp_path):
    """One output that is not class scores: the card says `values` (the kind the export measured, in the
    manifest's IO spec), and the Pi runner prints the values, not the arg-max of a regression."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(inp)))
    model.save(tmp_path / "price.keras")
    r = edgekit_cli("export", tmp_path / "price.keras", "--format", "tflite", "--quant", "fp32", "--out", tmp_path / "exp")
    assert r.returncode == 0, r.stderr
    (tmp_path / "labels.txt").write_text("price\n")
    r = edgekit_cli("package", tmp_path / "exp" / "price_fp32.tflite", "--target", "rpi", "--labels",
                    tmp_path / "labels.txt", "--out", tmp_path / "rpi")
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "rpi" / "model_card.json").read_text())
    assert [o["kind"] for o in card["outputs"]] == ["values"]
    x = np.random.default_rng(0).uniform(0, 1, (3, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([sys.executable, "run.py", str(tmp_path / "x.npy")], cwd=tmp_path / "rpi",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert all("label" not in g for g in got), got
    assert np.allclose([g["values"][0] for g in got], model.predict(x, verbose=0)[:, 0], atol=1e-4)


def test_wrong_format_missing_labels_and_existing_out_are_clear(packaged, tmp_path):
    tmp, out = packaged
    r = edgekit_cli("package", tmp / "exp" / "model_int8.onnx", "--target", "android", "--out", tmp_path / "w")
    assert r.returncode == 2 and "needs a .tflite file" in r.stderr and "model_int8.onnx is an .onnx file" in r.stderr
    r = edgekit_cli("package", tmp / "exp" / "model_fp32_tfjs", "--target", "rpi", "--out", tmp_path / "r")
    assert r.returncode == 2 and "needs a .tflite file" in r.stderr and "--format tflite" in r.stderr
    bare = tmp_path / "bare.tflite"
    shutil.copy2(tmp / "exp" / "model_fp32.tflite", bare)
    r = edgekit_cli("package", bare, "--target", "rpi", "--out", tmp_path / "r")
    assert r.returncode == 2 and "No labels for bare.tflite" in r.stderr and "--labels FILE" in r.stderr
    assert not (tmp_path / "r").exists()
    r = edgekit_cli("package", bare, "--target", "rpi", "--out", tmp_path / "r", "--labels", tmp_path / "nope.txt")
    assert r.returncode == 2 and "Label file" in r.stderr and "does not exist" in r.stderr
    before = sorted(p.name for p in out["rpi"].iterdir())
    r = edgekit_cli("package", tmp / "exp" / "model_int8.tflite", "--target", "rpi", "--out", out["rpi"])
    assert r.returncode == 2 and "already exists" in r.stderr and "--overwrite" in r.stderr
    assert sorted(p.name for p in out["rpi"].iterdir()) == before
    for line in (r.stderr,):
        assert len(line.strip().splitlines()) == 1


def test_serve_sends_only_files_under_the_folder_with_isolation_headers_and_skips_a_busy_port(packaged, tmp_path):
    import http.client
    import socket

    from edgekit.package.serve import make_server

    _, out = packaged
    site = tmp_path / "site"
    shutil.copytree(out["web"], site)
    (tmp_path / "secret.txt").write_text("not for the web")
    (site / "link.txt").symlink_to(tmp_path / "secret.txt")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    server = make_server(site, port=port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert server.server_address[1] != port  # the busy port was skipped
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)

        def get(path):
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.msg, resp.read()  # headers: case-insensitive

        status, headers, body = get("/index.html")
        assert status == 200 and b"edgekit" in body
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        status, headers, _ = get("/tfjs/tfjs-backend-wasm.wasm")
        assert status == 200 and headers["Content-Type"] == "application/wasm"
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/link.txt"):
            status, _, body = get(path)
            assert status == 404 and b"not for the web" not in body, path
    finally:
        server.shutdown()
        server.server_close()
        busy.close()


def test_overwrite_swaps_the_package_whole_and_a_failed_build_leaves_the_old_one(packaged, tmp_path):
    tmp, out = packaged
    dst = tmp_path / "rpi"
    shutil.copytree(out["rpi"], dst)
    (dst / "old-marker.txt").write_text("from the previous package")
    before = sorted(p.name for p in dst.iterdir())
    r = edgekit_cli("package", tmp / "exp" / "model_int8.tflite", "--target", "rpi", "--out", dst, "--overwrite",
                    "--labels", tmp_path / "missing-labels.txt")
    assert r.returncode == 2 and "missing-labels.txt does not exist" in r.stderr
    assert sorted(p.name for p in dst.iterdir()) == before  # the old package, untouched
    r = edgekit_cli("package", tmp / "exp" / "model_fp32.tflite", "--target", "rpi", "--out", dst, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert not (dst / "old-marker.txt").exists()
    assert (dst / "model.tflite").read_bytes() == (tmp / "exp" / "model_fp32.tflite").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rpi.")] == []  # no staging or old copy left
