"""Run the packaged model on a Raspberry Pi (or any machine) with LiteRT and NumPy only.

    python3 run.py --sample 0                 # one of the test samples shipped in samples.json
    python3 run.py input.npy                  # raw input(s), as in the training data, shape (H, W, C) or (N, H, W, C)
    python3 run.py photo.jpg                  # an image (needs Pillow), resized to the model's input
    python3 run.py --watch /var/lib/model/in  # classify every .npy dropped into a folder (the systemd unit does this)

The preprocessing the model was trained with is in model_card.json and applied here:
((x * scale + offset) - mean) / std. Prints one JSON line per input: label, score, latency.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CARD = json.loads((HERE / "model_card.json").read_text())


def interpreter(threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        sys.exit("run.py: ai-edge-litert is not installed: pip install -r requirements.txt")
    it = Interpreter(model_path=str(HERE / "model.tflite"), num_threads=threads)
    it.allocate_tensors()
    return it


def preprocess(raw):
    p = CARD["preprocessing"]
    x = np.asarray(raw, dtype=np.float32) * np.float32(p.get("scale", 1.0)) + np.float32(p.get("offset", 0.0))
    if p.get("mean") is not None:
        x = x - np.asarray(p["mean"], dtype=np.float32).reshape(x.shape[1:])
    if p.get("std") is not None:
        x = x / np.asarray(p["std"], dtype=np.float32).reshape(x.shape[1:])
    return x.astype(np.float32)


def load(path_or_sample):
    shape = CARD["input"]["shape"][1:]
    if isinstance(path_or_sample, int):
        s = json.loads((HERE / "samples.json").read_text())["samples"][path_or_sample]
        return np.asarray(s["raw"], dtype=np.float32).reshape(1, *shape)
    path = Path(path_or_sample)
    if not path.is_file():
        sys.exit(f"run.py: {path} does not exist")
    if path.suffix == ".npy":
        x = np.load(path, allow_pickle=False).astype(np.float32)
        return x.reshape(-1, *shape)
    try:
        from PIL import Image
    except ImportError:
        sys.exit("run.py: images need Pillow: pip install pillow (or pass an .npy)")
    h, w = shape[0], shape[1]
    channels = shape[2] if len(shape) > 2 else 1
    img = Image.open(path).convert("L" if channels == 1 else "RGB").resize((w, h))
    x = np.asarray(img, dtype=np.float32) / 255.0 * CARD["input"]["raw_max"]
    return x.reshape(1, *shape)


def predict(it, raw):
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results = []
    for x in preprocess(raw):
        x = x[None]
        if inp["dtype"] in (np.int8, np.uint8):  # a full-integer model: quantize at the boundary
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        it.reset_all_variables()  # a fused LSTM keeps its state between invocations: start each input from zero
        it.set_tensor(inp["index"], x)
        t0 = time.perf_counter()
        it.invoke()
        ms = (time.perf_counter() - t0) * 1e3
        y = it.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] in (np.int8, np.uint8):
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        y = y.reshape(-1)
        best = int(y.argmax())
        results.append({"label": CARD["labels"][best], "index": best, "score": round(float(y[best]), 6),
                        "latency_ms": round(ms, 3)})
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the packaged model with LiteRT.")
    ap.add_argument("input", nargs="?", help="an .npy of raw inputs or an image")
    ap.add_argument("--sample", type=int, help="one of the samples in samples.json")
    ap.add_argument("--watch", help="classify every .npy that appears in this folder")
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args(argv)
    it = interpreter(a.threads)
    if a.watch:
        folder = Path(a.watch)
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            for f in sorted(folder.glob("*.npy")):
                result = predict(it, load(f))
                f.with_suffix(".json").write_text(json.dumps(result))
                f.unlink()
                print(json.dumps({"file": f.name, "results": result}), flush=True)
            time.sleep(0.2)
    if a.sample is None and not a.input:
        ap.error("pass an input file, --sample N or --watch DIR")
    for r in predict(it, load(a.sample if a.sample is not None else a.input)):
        print(json.dumps(r))


if __name__ == "__main__":
    main()
