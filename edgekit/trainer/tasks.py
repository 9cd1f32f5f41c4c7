"""What a training run is for: classifying (one class per sample) or detecting (boxes per sample).

A task says which data it takes, the loss and metrics, how the split is fed to ``fit``, what the test
split is scored by, and which model is saved: a detector is trained on its raw grid head and saved
with decoding and NMS on top (:func:`edgekit.detection.postprocess.with_postprocess`), so that every
artifact exported from the run carries them.

Example:
    >>> task_for("detector").name, task_for("cnn").name
    ('detection', 'classification')
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import InputError


class Classification:
    name = "classification"
    headline = "test accuracy"

    def check(self, ds, data: str, *, augment: bool = False) -> None:
        if getattr(ds, "task", "classification") == "detection":
            raise InputError(f"Data {data} holds boxes (a detection data set) and this recipe is a classifier",
                             hint="train the detector recipe on it: edgekit train detector --data ...")
        if not ds.has_labels or ds.num_classes < 2:
            raise InputError(f"Data {data} needs labels of at least two classes to train a classifier")
        top = int(ds.y_train.max()) + 1
        if top > ds.num_classes:
            raise InputError(f"Data {data} has label {top - 1} but only {ds.num_classes} label names")

    def loss(self, ds, custom_module=None):
        return getattr(custom_module, "loss", None) or "sparse_categorical_crossentropy"

    metrics = ("accuracy",)

    def fit_arguments(self, ds, model, *, batch_size: int, seed: int) -> dict:
        from edgekit.data.batches import fit_arguments

        return fit_arguments(ds, batch_size=batch_size, seed=seed)

    def deployable(self, model):
        return model

    def evaluate(self, model, ds) -> dict[str, float]:
        from edgekit.data.batches import predict_arguments

        probs = model.predict(**predict_arguments(ds, "test"), verbose=0)
        return {"test_accuracy": round(float((np.nan_to_num(probs).argmax(axis=1) == np.asarray(ds.y_test)).mean()), 5)}

    def problems(self, scores: dict, epochs_run: int) -> list[str]:
        """What the test score says went wrong (a classifier's history says it: :mod:`~edgekit.trainer.diagnosis`)."""
        return []


class Detection:
    name = "detection"
    headline = "test mAP@0.5"
    metrics = ()

    def check(self, ds, data: str, *, augment: bool = False) -> None:
        if augment:
            from edgekit.errors import UsageError

            raise UsageError("--augment moves images without their boxes: a detector's training already moves each "
                             "image with its boxes (edgekit.detection.training.translated)", hint="leave out --augment")
        if getattr(ds, "task", "classification") != "detection":
            raise InputError(f"Data {data} has one label per sample; the detector needs boxes",
                             hint="pass builtin:mnist-detect, a COCO JSON file or a folder of YOLO labels")
        if len(ds.input_shape) != 3:
            raise InputError(f"Data {data} has samples of shape {ds.input_shape}; a detector takes images (H, W, C)")

    def loss(self, ds, custom_module=None):
        from edgekit.detection.training import detection_loss

        return getattr(custom_module, "loss", None) or detection_loss(ds.num_classes)

    def fit_arguments(self, ds, model, *, batch_size: int, seed: int) -> dict:
        from edgekit.detection.training import DetectionBatches, encode_targets

        grid = tuple(int(d) for d in model.outputs[0].shape[1:3])
        c = ds.num_classes
        return {"x": DetectionBatches(ds.prepared("train"), np.asarray(ds.y_train), grid=grid, num_classes=c,
                                      batch_size=batch_size, seed=seed),
                "validation_data": (ds.prepared("val"), encode_targets(np.asarray(ds.y_val), grid=grid, num_classes=c))}

    def deployable(self, model):
        from edgekit.detection.postprocess import with_postprocess

        return with_postprocess(model)

    def evaluate(self, model, ds) -> dict[str, float]:
        from edgekit.detection.metrics import mean_average_precision

        names = list(model.output_names)
        outs = model.predict(ds.prepared("test"), batch_size=64, verbose=0)
        outs = dict(zip(names, outs if isinstance(outs, (list, tuple)) else [outs], strict=True))
        m = mean_average_precision(np.asarray(ds.y_test), outs)
        return {"test_map50": m["map50"], "test_map": m["map"],
                "test_detections_per_image": round(float(np.asarray(outs["count"]).mean()), 3)}

    def problems(self, scores: dict, epochs_run: int) -> list[str]:
        """A detector that found nothing, or found boxes where no labelled box is (mAP@0.5 under 0.01:
        an untrained detector scores about 0.001): one line each, with what to try."""
        if scores["test_map50"] >= NO_DETECTOR_MAP50:
            return []
        found = scores["test_detections_per_image"]
        after = f"after {epochs_run} epoch{'s' * (epochs_run != 1)}"
        if found == 0:
            return [f"the detector found no object in any test image {after}: "
                    "it has not learnt yet; train longer (the recipe trains 50 epochs by default), or on more images"]
        return [f"the detector's boxes ({found:g} per test image) match almost none of the labelled ones {after}: "
                "train longer (the recipe trains 50 epochs by default), and check "
                "that the labels are the images' own boxes (edgekit package --target web draws what it finds)"]


NO_DETECTOR_MAP50 = 0.01  # under it a detector has learnt nothing usable (untrained: about 0.001)


TASKS = {"classification": Classification(), "detection": Detection()}


def task_for(recipe: str):
    """The task of a built-in recipe (a user's ``.py`` file says its own with ``task = "detection"``)."""
    from edgekit.trainer.recipes import RECIPE_TASKS

    return TASKS[RECIPE_TASKS.get(recipe, "classification")]
