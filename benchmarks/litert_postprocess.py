"""LiteRT's own detection op against edgekit's NMS: is ``TFLite_Detection_PostProcess`` worth it?

LiteRT has a custom operator made for SSD detectors, ``TFLite_Detection_PostProcess`` (in its builtin
resolver; the TF Object Detection API and AutoML EfficientDet export it; LiteRT's Task Library and
MediaPipe's object detector expect it). edgekit puts one ``NON_MAX_SUPPRESSION_V4`` in the graph
instead, because ONNX and TF.js have no such operator (docs/formats.md). This measures what that
choice costs in LiteRT, on the same models, timed together in one worker (``p50_together``):

- edgekit's NMS (``export --nms on``): each box's best class, NMS per class (one operator, classes shifted apart);
- the LiteRT op, fast mode (``use_regular_nms: false``): each box's best class, one NMS across classes;
- the LiteRT op, regular mode: every class of every box above the score, NMS per class.

The op takes SSD box encodings against anchors; the decoded boxes are given to it against unit
anchors (``ty = yc - 0.5``, ``th = log h``), which it decodes back exactly (max corner difference
printed). Models: the detector recipe on ``builtin:mnist-detect`` (64 cells; trained here for
``EPOCHS``, or ``DETECTOR_RUN=folder`` reuses a run), judged by mAP on the 1,000 test scenes, and
keras-hub's RetinaNet (12,096 anchors, initial weights: benchmarks/published_detector.py), timed only.

Targets: none judge the op; all rows are information for the decision written in docs/formats.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from common import Results

EPOCHS = 15


def with_litert_postprocess(model, *, regular: bool, max_detections: int, iou: float, score: float):
    """``model`` (outputs ``boxes (1, A, 4)`` ``[x0, y0, x1, y1]`` in 0..1 and ``scores (1, A, C)``) ending
    in LiteRT's ``TFLite_Detection_PostProcess``: outputs ``[y0, x0, y1, x1]`` boxes, classes, scores, count."""
    import keras

    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    classes = int(model.outputs[1].shape[-1])
    implements = " ".join([
        'name: "TFLite_Detection_PostProcess"',
        f'attr {{ key: "max_detections" value {{ i: {max_detections} }} }}',
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        f'attr {{ key: "detections_per_class" value {{ i: {max_detections} }} }}',
        f'attr {{ key: "use_regular_nms" value {{ b: {str(regular).lower()} }} }}',
        f'attr {{ key: "nms_score_threshold" value {{ f: {score} }} }}',
        f'attr {{ key: "nms_iou_threshold" value {{ f: {iou} }} }}',
        *[f'attr {{ key: "{k}" value {{ f: 1.0 }} }}' for k in ("y_scale", "x_scale", "h_scale", "w_scale")],
        f'attr {{ key: "num_classes" value {{ i: {classes} }} }}'])

    @tf.function(experimental_implements=implements)
    def postprocess(box_encodings, class_predictions, anchors):  # the converter puts the op in its place
        z = tf.constant(0.0)
        return z, z, z, z

    class LiteRTPostProcess(keras.layers.Layer):
        def call(self, boxes, scores):
            x0, y0, x1, y1 = tf.unstack(boxes, axis=-1)
            encodings = tf.stack([(y0 + y1) / 2 - 0.5, (x0 + x1) / 2 - 0.5, tf.math.log(tf.maximum(y1 - y0, 1e-6)),
                                  tf.math.log(tf.maximum(x1 - x0, 1e-6))], -1)
            unit = tf.constant(np.tile(np.float32([[0.5, 0.5, 1.0, 1.0]]), (int(boxes.shape[1]), 1)))
            return postprocess(encodings, scores, unit)

    image = keras.Input(model.inputs[0].shape[1:], batch_size=1, name="image")
    boxes, scores = model(image)
    return keras.Model(image, list(LiteRTPostProcess()(boxes, scores)))


def convert(model, path: Path, *, named: bool = False) -> Path:
    from edgekit.source_model import export_saved_model
    from edgekit.tf_env import import_tensorflow

    tf = import_tensorflow()
    export_saved_model(model, path.with_suffix(".sm"), output_names=list(model.output_names) if named else None)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path.with_suffix(".sm")))
    converter.allow_custom_ops = True  # TFLite_Detection_PostProcess: a custom op LiteRT's builtin resolver has
    path.write_bytes(converter.convert())
    return path


def detections(path: Path, images: np.ndarray, *, litert_op: bool) -> dict:
    """Each image's detections from a .tflite, as edgekit's outputs (``[x0, y0, x1, y1]`` boxes)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    run = it.get_signature_runner()
    name = next(iter(it.get_signature_list()["serving_default"]["inputs"]))
    found: dict[str, list] = {"boxes": [], "scores": [], "classes": [], "count": []}
    for image in images:
        o = run(**{name: image[None].astype(np.float32)})
        if litert_op:  # the op's outputs, in its order: boxes (y0, x0, y1, x1), classes, scores, count
            b, c, s, n = (o[f"output_{i}"] for i in range(4))
            b = b[..., [1, 0, 3, 2]]
        else:
            b, s, c, n = (o[k] for k in ("boxes", "scores", "classes", "count"))
        for k, v in zip(("boxes", "scores", "classes", "count"), (b[0], s[0], c[0], np.ravel(n)[0]), strict=True):
            found[k].append(np.nan_to_num(v))
    return {k: np.stack(v) for k, v in found.items()}


def compare(res: Results, label: str, model, nms_settings: dict, tmp: Path, x1: np.ndarray, *, images=None, labels=None):
    from edgekit.detection.metrics import match, mean_average_precision
    from edgekit.detection.postprocess import with_postprocess, without_nms
    from edgekit.runtimes.isolated import p50_together

    base = without_nms(model)
    files = {"edgekit NMS": convert(with_postprocess(base, **nms_settings), tmp / f"{label}_edgekit.tflite", named=True),
             "LiteRT op, fast": convert(with_litert_postprocess(base, regular=False, **nms_settings), tmp / f"{label}_fast.tflite"),
             "LiteRT op, regular": convert(with_litert_postprocess(base, regular=True, **nms_settings), tmp / f"{label}_regular.tflite"),
             "no NMS": convert(base, tmp / f"{label}_raw.tflite")}
    p50 = p50_together("litert", files, x1, rounds=10)
    for name in ("edgekit NMS", "LiteRT op, fast", "LiteRT op, regular"):
        res.add(f"{label}: {name} p50 {p50[name]:.3f} ms (no NMS {p50['no NMS']:.3f} ms)",
                f"NMS stage {1000 * (p50[name] - p50['no NMS']):+.1f} us ({100 * (p50[name] / p50['no NMS'] - 1):+.1f}%)",
                "info", None, p50_ms=p50[name], raw_ms=p50["no NMS"])
    if images is None:
        return
    ours = detections(files["edgekit NMS"], images, litert_op=False)
    for name, litert in (("edgekit NMS", False), ("LiteRT op, fast", True), ("LiteRT op, regular", True)):
        found = ours if not litert else detections(files[name], images, litert_op=True)
        m = mean_average_precision(labels, found)
        same = match(ours, found)
        res.add(f"{label}: {name}: mAP@0.5 {m['map50']:.4f}, mAP@0.5:0.95 {m['map']:.4f}",
                f"{found['count'].mean():.2f} detections per image; edgekit's found again {same['recall']:.4f}, "
                f"max box diff {same['max_box_diff']:.2g}", "info", None, map50=m["map50"], map=m["map"])


def main() -> bool:
    import keras

    from edgekit.data.loaders import load_data
    from edgekit.detection.postprocess import settings_of
    from edgekit.trainer.fit import train

    res = Results("litert_postprocess")
    print("LiteRT's TFLite_Detection_PostProcess against edgekit's NMS, in LiteRT")
    with tempfile.TemporaryDirectory(prefix="edgekit-litert-pp-") as tmp:
        tmp = Path(tmp)
        run = Path(os.environ["DETECTOR_RUN"]) if os.environ.get("DETECTOR_RUN") else tmp / "run"
        if not (run / "model.keras").is_file():
            train("detector", "builtin:mnist-detect", run, epochs=EPOCHS, learning_rate=3e-3, verbose=0, log=lambda s: None)
        record = json.loads((run / "edgekit.json").read_text())
        res.add("detector recipe: test mAP@0.5 (training's evaluation)", f"{record['metrics']['test_map50']:.4f}", "info", None)
        model = keras.saving.load_model(run / "model.keras", compile=False)
        settings = settings_of(model)
        ds = load_data("builtin:mnist-detect")
        images = ds.prepared("test")
        compare(res, "detector (64 cells)", model, settings, tmp, images[:1], images=images, labels=np.asarray(ds.y_test))
        try:
            import keras_hub  # noqa: F401
            from published_detector import build
        except ImportError as e:
            res.add("keras-hub RetinaNet", f"not installed ({e})", "installed by make bench", False)
            return res.save()
        _, retinanet = build()
        x = np.random.default_rng(0).uniform(0, 1, (1, *retinanet.inputs[0].shape[1:])).astype(np.float32)
        compare(res, "RetinaNet (12,096 anchors)", retinanet, {"max_detections": 50, "iou": 0.5, "score": 0.5}, tmp, x)
    return res.save()


if __name__ == "__main__":
    import sys

    sys.exit(0 if main() else 1)
