"""A published Keras detector nobody here wrote: keras-hub's RetinaNet, with NMS in every format.

keras-hub's ``RetinaNetObjectDetector`` (ResNet-18-style encoder, FPN P3-P5, 9 anchors per cell) decodes
its anchors and runs NMS in ``predict_step``, outside its graph: ``model.export`` gives raw box deltas
and class logits, the export users complain about. Here its own anchors (``anchor_generator``) and
delta encoding (``center_xywh``) are put inside the graph with :class:`edgekit.detection.postprocess.AnchorDecode`,
checked against keras's own ``decode_deltas_to_boxes`` (what ``predict`` uses), and ``edgekit export
--nms on`` adds edgekit's NMS. No pretrained weights are reachable offline (presets download from
Kaggle), so it runs with its initial weights, its class prior (0.01) set to 0.5 and its last layers' kernels scaled down: many detections of
random boxes, which the formats must all reproduce.

Targets: the in-graph decoding equals keras's (max corner difference < 1e-4 of the image); fp32 TFLite,
ONNX and TF.js exports have the same detections as the Keras model (parity: >= 99% matched at IoU
>= 0.99) and run in LiteRT, ONNX Runtime and TF.js (Node). Reported: their latency, and the NMS's
share of it (the same export with ``--nms off``). Needs keras-hub (``make bench`` installs it).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import Results

SIZE, CLASSES = 128, 3


def build():
    import keras
    import keras_hub
    import numpy as np

    from edgekit.detection.postprocess import AnchorDecode

    keras.utils.set_random_seed(0)
    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        image_shape=(SIZE, SIZE, 3))
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=3, max_level=5, use_p5=False,
                                                  image_shape=(SIZE, SIZE, 3))
    detector = keras_hub.models.RetinaNetObjectDetector(backbone=backbone, num_classes=CLASSES, bounding_box_format="xyxy")
    # initial weights: the class prior (0.01) set to 0.5, so that random boxes score above --score and NMS has work
    # and the last layers' initial kernels scaled down (boxes near their anchors, scores spread below 1): varied,
    # non-degenerate boxes, as a trained detector's
    head = detector.classification_head.prediction_layer
    head.bias.assign(np.zeros(head.bias.shape, np.float32))
    head.kernel.assign(head.kernel.numpy() * 0.05)
    box = detector.box_head.prediction_layer  # (keras-hub gives the box head the class prior's bias too: -4.6)
    box.kernel.assign(box.kernel.numpy() * 0.02)
    box.bias.assign(np.zeros(box.bias.shape, np.float32))
    anchors = detector.anchor_generator(np.zeros((1, SIZE, SIZE, 3), np.float32))
    anchors = np.concatenate([np.asarray(a) for a in anchors.values()]) / SIZE  # xyxy in 0..1
    image = keras.Input((SIZE, SIZE, 3), name="image")
    raw = detector(image)
    boxes = AnchorDecode(anchors, name="anchor_decode")(raw["bbox_regression"])
    scores = keras.layers.Activation("sigmoid", name="class_scores")(raw["cls_logits"])
    return detector, keras.Model(image, [keras.layers.Identity(name="boxes")(boxes),
                                         keras.layers.Identity(name="scores")(scores)], name="retinanet")


def main() -> bool:
    res = Results("published_detector")
    print("keras-hub RetinaNet (initial weights) with NMS inside TFLite, ONNX and TF.js")
    try:
        import keras_hub  # noqa: F401
    except ImportError as e:
        res.add("keras-hub", f"not installed ({e})", "installed by make bench", False)
        return res.save()
    import keras
    import numpy as np

    from edgekit.bench.runner import run_bench
    from edgekit.exporters.base import ExportOptions
    from edgekit.exporters.pipeline import export_model

    detector, model = build()
    x = np.random.default_rng(0).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)
    raw = {k: np.asarray(v) for k, v in detector(x, training=False).items()}  # the graph (predict decodes outside it)
    anchors = detector.anchor_generator(x)
    anchors = keras.ops.concatenate(list(anchors.values()), axis=0)
    theirs = keras.utils.bounding_boxes.decode_deltas_to_boxes(
        anchors=anchors, boxes_delta=raw["bbox_regression"], encoded_format="center_xywh", anchor_format="xyxy",
        box_format="xyxy", image_shape=(SIZE, SIZE, 3))
    ours = model.predict(x, verbose=0)[0]
    diff = float(np.abs(np.clip(np.asarray(theirs) / SIZE, 0, 1) - ours).max())
    res.add("in-graph anchor decoding vs keras's decode_deltas_to_boxes", f"max corner diff {diff:.2g}", "< 1e-4", diff < 1e-4)
    with tempfile.TemporaryDirectory(prefix="edgekit-retinanet-") as tmp:
        tmp = Path(tmp)
        model.save(tmp / "retinanet.keras")
        np.savez(tmp / "images.npz", x_train=np.random.default_rng(1).uniform(0, 1, (16, SIZE, SIZE, 3)).astype(np.float32),
                 x_test=np.random.default_rng(2).uniform(0, 1, (32, SIZE, SIZE, 3)).astype(np.float32))
        options = ExportOptions(nms="on", score=0.5, max_detections=50)
        manifest = export_model(tmp / "retinanet.keras", ["tflite", "onnx", "tfjs"], ["fp32"], tmp / "export",
                                calib=str(tmp / "images.npz"), options=options, parity_samples=32, log=print)
        export_model(tmp / "retinanet.keras", ["tflite", "onnx"], ["fp32"], tmp / "raw", calib=str(tmp / "images.npz"),
                     parity_samples=4, log=lambda s: None)  # as it is: boxes and scores, no NMS
        for a in manifest.artifacts:
            p = a.parity or {}
            res.add(f"{a.format} fp32: {p.get('detections', 0)} detections on 32 images",
                    f"{a.status}; same detections {p.get('same_detections', 0):.4f}", ">= 0.99 of >= 100, ok",
                    a.ok and p.get("same_detections", 0) >= 0.99 and p.get("detections", 0) >= 100, error=a.error)
        report = run_bench([str(tmp / "export")], data=str(tmp / "images.npz"), runs=20, repeats=1, log=lambda s: None)
        for r in report["rows"]:
            if not r.get("is_reference"):
                ok = r["status"] == "ok"
                res.add(f"{r['name']} on {r['runtime']}", f"p50 {r['latency_ms']['p50']:.2f} ms" if ok else r.get("error"),
                        "runs", ok)
        from edgekit.runtimes.isolated import p50_together

        for fmt, runtime in (("tflite", "litert"), ("onnx", "onnxruntime")):
            name = f"retinanet_fp32.{fmt}"
            p50 = p50_together(runtime, {"nms": tmp / "export" / name, "raw": tmp / "raw" / name}, x[:1], rounds=6)
            res.add(f"{fmt} on {runtime}: with NMS {p50['nms']:.2f} ms, without {p50['raw']:.2f} ms",
                    f"NMS {100 * (p50['nms'] / p50['raw'] - 1):+.1f}%", "info", None)
        io = json.loads((tmp / "export" / "manifest.json").read_text())["io"]
        res.add("outputs", ", ".join(f"{o['name']} {o['shape']}" for o in io["outputs"]), "info", None)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
