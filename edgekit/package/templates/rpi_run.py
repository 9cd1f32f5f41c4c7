"""Run the packaged model on a Raspberry Pi (or any machine) with LiteRT and NumPy only.

    python3 run.py --sample 0                 # one of the test samples shipped in samples.json
    python3 run.py input.npy                  # raw input(s), as in the training data, shape (H, W, C) or (N, H, W, C)
    python3 run.py inputs.npz                 # a model with several inputs: one array per input name
    python3 run.py photo.jpg                  # an image (needs Pillow), resized to the model's input
    python3 run.py --watch /var/lib/model/in  # run every .npy/.npz dropped into a folder (the systemd unit does this)
    python3 run.py photo.jpg --save boxes.png # a detector: its detections drawn on the image

The preprocessing the model was trained with is in model_card.json and applied here:
((x * scale + offset) - mean) / std. Prints one JSON line per input: the label, score and
latency; for a model with several outputs, every output (head) by name; for a detector, its detections
(label, score, box [x0, y0, x1, y1] in 0..1 of the image).
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


def tensors(it):
    """{card name: tensor detail} for inputs and outputs, bound by the artifact's names (a signature's
    where the model has one), never by position: converters reorder and rename tensors."""
    found_in = {d["name"]: d for d in it.get_input_details()}
    found_out = {d["name"]: d for d in it.get_output_details()}
    for key in it.get_signature_list():
        runner = it.get_signature_runner(key)
        found_in.update(runner.get_input_details())
        found_out.update(runner.get_output_details())

    def bind(card, found, details):
        if all(c["artifact_name"] in found for c in card):
            return {c["name"]: found[c["artifact_name"]] for c in card}
        return {c["name"]: d for c, d in zip(card, details)}  # noqa: B905  (a card for another file: in order)

    return (bind(CARD["inputs"], found_in, it.get_input_details()),
            bind(CARD["outputs"], found_out, it.get_output_details()))


def preprocess(raw, p):
    x = np.asarray(raw, dtype=np.float32) * np.float32(p.get("scale", 1.0)) + np.float32(p.get("offset", 0.0))
    if p.get("mean") is not None:
        x = x - np.asarray(p["mean"], dtype=np.float32).reshape(x.shape[1:])
    if p.get("std") is not None:
        x = x / np.asarray(p["std"], dtype=np.float32).reshape(x.shape[1:])
    return x.astype(np.float32)


def load(path_or_sample):
    """{input name: raw batch} from a sample number, an .npy, an .npz or an image."""
    if isinstance(path_or_sample, int):
        s = json.loads((HERE / "samples.json").read_text())
        sample = s["samples"][path_or_sample]
        return {i["name"]: np.asarray(sample["inputs"][i["name"]], dtype=i["dtype"]).reshape(1, *s["inputs"][i["name"]])
                for i in CARD["inputs"]}
    path = Path(path_or_sample)
    if not path.is_file():
        sys.exit(f"run.py: {path} does not exist")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as d:
            missing = [i["name"] for i in CARD["inputs"] if i["name"] not in d.files]
            if missing:
                sys.exit(f"run.py: {path} has no array for input {', '.join(missing)}; "
                         f"the model takes {', '.join(i['name'] + str(i['shape'][1:]) for i in CARD['inputs'])}")
            return {i["name"]: d[i["name"]].reshape(-1, *[v or 1 for v in i["shape"][1:]]) for i in CARD["inputs"]}
    if len(CARD["inputs"]) != 1:
        sys.exit(f"run.py: this model takes {len(CARD['inputs'])} inputs: pass an .npz with one array per input "
                 f"({', '.join(i['name'] for i in CARD['inputs'])})")
    only = CARD["inputs"][0]
    shape = only["shape"][1:]
    if path.suffix == ".npy":
        return {only["name"]: np.load(path, allow_pickle=False).astype(np.float32).reshape(-1, *shape)}
    if "raw_max" not in only:
        sys.exit(f"run.py: this model's input {only['name']} {shape} is not an image: pass an .npy or .npz")
    try:
        from PIL import Image
    except ImportError:
        sys.exit("run.py: images need Pillow: pip install pillow (or pass an .npy)")
    h, w = shape[0], shape[1]
    channels = shape[2] if len(shape) > 2 else 1
    img = Image.open(path).convert("L" if channels == 1 else "RGB").resize((w, h))
    x = np.asarray(img, dtype=np.float32) / 255.0 * only["raw_max"]
    return {only["name"]: x.reshape(1, *shape)}


def to_model(x, detail):
    if detail["dtype"] in (np.int8, np.uint8, np.int16) and not np.issubdtype(x.dtype, np.integer):
        scale, zero = detail["quantization"]  # a full-integer model: quantize at the boundary
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
    return x.astype(detail["dtype"])


def from_model(y, detail):
    if detail["dtype"] in (np.int8, np.uint8, np.int16) and detail["quantization"][0]:
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


def summary(y, out):
    """What one output says: the top class, the scores above 0.5, or the values."""
    y = y.reshape(-1)
    labels = out.get("labels")
    if out.get("kind") == "probabilities" and len(y) > 1:
        best = int(y.argmax())
        return {"label": labels[best] if labels else str(best), "index": best, "score": round(float(y[best]), 6)}
    if out.get("kind") == "scores":
        on = [labels[i] if labels else str(i) for i in np.flatnonzero(y > 0.5)]
        return {"scores": [round(float(v), 6) for v in y], "above_0.5": on}
    return {"values": [round(float(v), 6) for v in y[:64]]}


# A detector: boxes [x0, y0, x1, y1] in 0..1 of the image, scores, classes (ids into the labels), count
# (NMS ran inside the model: the first `count` slots are its detections, best first).
DETECTOR = CARD.get("task") == "detection" and {"boxes", "scores", "classes", "count"} <= {o["name"] for o in CARD["outputs"]}


def detections(y):
    names = next((o.get("labels") for o in CARD["outputs"] if o["name"] == "classes"), None) or CARD.get("labels") or []
    found = []
    for i in range(int(round(float(y["count"].reshape(-1)[0])))):
        c = int(round(float(y["classes"].reshape(-1)[i])))
        found.append({"label": names[c] if c < len(names) else str(c), "score": round(float(y["scores"].reshape(-1)[i]), 4),
                      "box": [round(float(v), 4) for v in y["boxes"].reshape(-1, 4)[i]]})
    return found


def save_drawing(raw, found, path, size=384):
    """The raw image with the detections drawn on it (needs Pillow)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        sys.exit("run.py: --save needs Pillow: pip install pillow")
    only = CARD["inputs"][0]
    img = np.asarray(raw, dtype=np.float32).reshape(only["shape"][1:]) / only.get("raw_max", 255.0) * 255.0
    img = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8).squeeze()).convert("RGB").resize((size, size), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for d in found:
        box = [v * size for v in d["box"]]
        draw.rectangle(box, outline=(255, 64, 64), width=2)
        draw.text((box[0] + 2, max(0, box[1] - 12)), f"{d['label']} {d['score']:.2f}", fill=(255, 255, 0))
    img.save(path)


def predict(it, raw):
    ins, outs = tensors(it)
    specs = {i["name"]: i for i in CARD["inputs"]}
    feeds = {name: preprocess(x, specs[name]["preprocessing"]) if specs[name].get("preprocessing") else x
             for name, x in raw.items()}
    results = []
    for r in range(len(next(iter(feeds.values())))):
        it.reset_all_variables()  # a fused LSTM keeps its state between invocations: start each input from zero
        for name, detail in ins.items():
            it.set_tensor(detail["index"], to_model(feeds[name][r : r + 1], detail))
        t0 = time.perf_counter()
        it.invoke()
        ms = round((time.perf_counter() - t0) * 1e3, 3)
        if DETECTOR:
            y = {o["name"]: from_model(it.get_tensor(outs[o["name"]]["index"]), outs[o["name"]]) for o in CARD["outputs"]}
            found = detections(y)
            results.append({"detections": found, "count": len(found), "latency_ms": ms})
            continue
        heads = {o["name"]: summary(from_model(it.get_tensor(outs[o["name"]]["index"]), outs[o["name"]]), o)
                 for o in CARD["outputs"]}
        # one output: its fields at the top of the line; several: every head by name
        results.append({**next(iter(heads.values())), "latency_ms": ms} if len(heads) == 1 else {"outputs": heads, "latency_ms": ms})
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the packaged model with LiteRT.")
    ap.add_argument("input", nargs="?", help="an .npy or .npz of raw inputs, or an image")
    ap.add_argument("--sample", type=int, help="one of the samples in samples.json")
    ap.add_argument("--watch", help="run every .npy or .npz that appears in this folder")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--save", help="a detector: draw the detections on the image and save it here (a .png)")
    a = ap.parse_args(argv)
    it = interpreter(a.threads)
    if a.watch:
        folder = Path(a.watch)
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            for f in sorted([*folder.glob("*.npy"), *folder.glob("*.npz")]):
                result = predict(it, load(f))
                f.with_suffix(".json").write_text(json.dumps(result))
                f.unlink()
                print(json.dumps({"file": f.name, "results": result}), flush=True)
            time.sleep(0.2)
    if a.sample is None and not a.input:
        ap.error("pass an input file, --sample N or --watch DIR")
    raw = load(a.sample if a.sample is not None else a.input)
    results = predict(it, raw)
    for r in results:
        print(json.dumps(r))
    if a.save:
        if not DETECTOR:
            sys.exit("run.py: --save draws a detector's boxes; this model is not a detector")
        save_drawing(next(iter(raw.values()))[0], results[0]["detections"], a.save)


if __name__ == "__main__":
    main()
