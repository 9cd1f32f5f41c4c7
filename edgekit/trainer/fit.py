"""``edgekit train``: build a recipe (or the user's model), fit it, and write a RUN_DIR.

RUN_DIR holds ``model.keras`` (the best checkpoint by validation loss) and ``edgekit.json``
(input spec, labels, preprocessing, metrics, data fingerprint, device, versions). The run
is written in a staging folder and moved into place at the end, so an interrupted run
leaves nothing that looks finished.

Example:
    >>> record = train("cnn", "builtin:digits", "runs/demo", epochs=20)   # doctest: +SKIP
    >>> record.metrics["test_accuracy"]                                   # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from edgekit.data import load_data
from edgekit.errors import TrainingFailed, UsageError
from edgekit.files import check_writable_dir
from edgekit.run_record import CUSTOM_CODE_NAME, MODEL_NAME, RunRecord, tool_versions
from edgekit.trainer.devices import choose_strategy
from edgekit.trainer.diagnosis import diagnose
from edgekit.trainer.history import write_history

# cosine: the learning rate follows a cosine from --lr down to 1% of it over --epochs (every step);
# constant: --lr throughout
LR_SCHEDULES = ("cosine", "constant")


def train(
    recipe: str,
    data: str,
    out: str | Path,
    *,
    epochs: int | None = None,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 5,
    width: float = 1.0,
    strategy: str = "default",
    mixed_precision: bool = False,
    augment: bool = False,
    lr_schedule: str = "cosine",
    image_size: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    verbose: int | None = None,
    log=print,
    recipe_options: dict | None = None,
    dataset=None,
    build=None,
    callbacks=(),
) -> RunRecord:
    """Train ``recipe`` (a built-in name or a ``.py`` file) on ``data``; write RUN_DIR ``out``.

    ``augment`` puts random translation, rotation, zoom and contrast in front of the model for
    training only (:mod:`edgekit.trainer.augment`). The run folder gets ``history.json`` and
    ``history.png``; a run that did not learn (NaN loss, validation at chance while training
    learns, early stopping before any improvement) is written, marked with its problems, and
    raises :class:`~edgekit.errors.TrainingFailed` naming the likely cause.

    For callers that train many models (``edgekit tune``): ``recipe_options`` go to the recipe
    (``dropout``, ``kernel_size``...); ``dataset`` is data already loaded by
    :func:`edgekit.data.load_data`; ``build(input_shape, num_classes)`` replaces the recipe's or
    the file's builder (``recipe`` still names it, and a ``.py`` file is still copied into the
    run); ``callbacks`` are extra Keras callbacks. Training changes no global state that
    outlives the call: the mixed-precision policy is put back as it was."""
    out = Path(out)
    if epochs is None:  # the recipe's own (a detector learns longer), else 30
        from edgekit.trainer.recipes import RECIPE_EPOCHS

        epochs = RECIPE_EPOCHS.get(recipe, 30)
    _check_args(out, epochs, batch_size, learning_rate, patience, overwrite)
    if lr_schedule not in LR_SCHEDULES:
        raise UsageError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got '{lr_schedule}'")
    custom_module = None
    if not recipe.endswith(".py"):
        from edgekit.trainer.recipes import RECIPES, build_recipe

        if recipe not in RECIPES:
            build_recipe(recipe, (1,), 2)  # raises the UsageError with suggestions, before TF loads
    if recipe.endswith(".py") and build is None:
        from edgekit.trainer.custom import load_model_file

        custom_module = load_model_file(Path(recipe))
    ds = dataset if dataset is not None else load_data(data, image_size=image_size)
    from edgekit.trainer.tasks import TASKS, task_for

    if recipe.endswith(".py"):
        name = getattr(custom_module, "task", "classification")
        if name not in TASKS:
            raise UsageError(f"{recipe} sets task = '{name}'; choose from {', '.join(TASKS)}")
        task = TASKS[name]
    else:
        task = task_for(recipe)
    task.check(ds, data, augment=augment)
    if augment:
        from edgekit.trainer.augment import augmentation

        augmentation(ds.input_shape)  # raises the UsageError for non-image data before any training

    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
    import keras

    policy = keras.mixed_precision.global_policy()
    try:
        return _train(recipe, data, out, ds, keras, custom_module, epochs=epochs, batch_size=batch_size,
                      learning_rate=learning_rate, patience=patience, width=width, strategy=strategy,
                      mixed_precision=mixed_precision, augment=augment, lr_schedule=lr_schedule, seed=seed,
                      verbose=verbose, log=log, recipe_options=recipe_options or {}, build=build,
                      callbacks=list(callbacks), task=task)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _train(recipe, data, out, ds, keras, custom_module, *, epochs, batch_size, learning_rate, patience, width,
           strategy, mixed_precision, augment, lr_schedule, seed, verbose, log, recipe_options, build, callbacks, task):
    strat, device_info = choose_strategy(strategy)
    precision = "float32"
    if mixed_precision:
        if device_info["gpus"]:
            keras.mixed_precision.set_global_policy("mixed_float16")
            precision = "mixed_float16"
        else:
            log("note: --mixed-precision needs a GPU and TensorFlow sees none; training in float32")
    keras.utils.set_random_seed(seed)
    log(f"training on {device_info['device']}")

    with strat.scope():
        if build is not None:
            model = build(ds.input_shape, ds.num_classes)
        elif custom_module is not None:
            from edgekit.trainer.custom import build_from_file

            model = build_from_file(custom_module, ds.input_shape, ds.num_classes)
        else:
            from edgekit.trainer.recipes import build_recipe

            model = build_recipe(recipe, ds.input_shape, ds.num_classes, width=width, **recipe_options)
        if precision != "float32":
            model = keras.Model(model.inputs, keras.layers.Activation("linear", dtype="float32")(model.outputs[0]))
        trained = model
        if augment:
            from edgekit.trainer.augment import with_augmentation

            trained = with_augmentation(model, ds.input_shape, seed=seed)
        steps = -(-len(ds.y_train) // batch_size) * epochs
        rate = (keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.01)
                if lr_schedule == "cosine" else learning_rate)
        trained.compile(optimizer=keras.optimizers.Adam(rate), loss=task.loss(ds, custom_module), metrics=list(task.metrics))
    # Data read lazily (image folders, .npz, .csv) is fed a batch at a time; digits whole.
    fit_data = task.fit_arguments(ds, model, batch_size=batch_size, seed=seed)

    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if recipe.endswith(".py"):
            shutil.copyfile(recipe, staging / CUSTOM_CODE_NAME)
        checkpoint = _AtomicBestCheckpoint(staging / MODEL_NAME, model)  # the model itself: no augmentation layers
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        t0 = time.perf_counter()
        history = trained.fit(
            **fit_data, epochs=epochs, callbacks=[checkpoint, stop, keras.callbacks.TerminateOnNaN(), *callbacks],
            verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose,
        )
        train_s = time.perf_counter() - t0
        hist = {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}
        problems = diagnose(hist, num_classes=ds.num_classes, epochs_requested=epochs)
        if not (staging / MODEL_NAME).is_file():  # no finite validation loss ever: keep the last weights
            model.save(str(staging / MODEL_NAME))
        best = task.deployable(keras.saving.load_model(str(staging / MODEL_NAME), compile=False))
        if best is not model:  # a detector: saved with decoding and NMS, what every export carries
            best.save(str(staging / MODEL_NAME))
        scores = task.evaluate(best, ds)
        test_score = next(iter(scores.values()))
        problems += task.problems(scores, len(hist.get("loss", [])))
        samples = len(ds.y_train) * len(hist.get("loss", []))
        record = RunRecord(
            input_shape=list(ds.input_shape),
            labels=ds.labels,
            recipe=Path(recipe).name if recipe.endswith(".py") else recipe,
            preprocessing=ds.preprocessing.to_dict(),
            data={"spec": data, "fingerprint": ds.fingerprint(), "split": ds.split_info(), "num_classes": ds.num_classes},
            task=task.name,
            metrics={
                **scores,
                "best_val_loss": round(float(min(history.history["val_loss"])), 5),
                **({"best_val_accuracy": round(float(max(history.history["val_accuracy"])), 5)}
                   if "val_accuracy" in history.history else {}),
                "params": int(best.count_params()),
            },
            training={
                **device_info,
                "precision": precision,
                "epochs_requested": epochs,
                "epochs_run": len(history.history["loss"]),
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "lr_schedule": lr_schedule,
                "width": width,
                **({"recipe_options": recipe_options} if recipe_options else {}),
                "seed": seed,
                "seconds": round(train_s, 2),
                "samples_per_s": round(samples / train_s, 1) if train_s > 0 else None,
                "augment": augment,
                "history": hist,
                "problems": problems,
            },
            custom_code=CUSTOM_CODE_NAME if recipe.endswith(".py") else None,
            versions=tool_versions("tensorflow-cpu", "tensorflow", "keras", "numpy"),
        )
        record.save(staging)
        write_history(staging, hist, title=f"{record.recipe} on {data}")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if problems:
        for extra in problems[1:]:
            log(f"also: {extra}")
        raise TrainingFailed(f"train FAILED after {train_s:.1f}s ({task.headline} {test_score:.4f}, run kept in '{out}' "
                             f"with its problems in edgekit.json): {problems[0]}")
    log(f"train success {train_s:.1f}s, {task.headline} {test_score:.4f}, saved as '{out / MODEL_NAME}'")
    return record


def _check_args(out: Path, epochs, batch_size, lr, patience, overwrite) -> None:
    for flag, v in (("--epochs", epochs), ("--batch-size", batch_size), ("--patience", patience)):
        if v < 1:
            raise UsageError(f"{flag} must be at least 1, got {v}")
    if lr <= 0:
        raise UsageError(f"--lr must be > 0, got {lr}")
    check_writable_dir(out, flag="--out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"--out {out} already exists and is not empty", hint="pick another folder, or pass --overwrite")


def _AtomicBestCheckpoint(path: Path, model):
    """A Keras callback that saves ``model`` (the one being trained, or the model inside an augmenting
    wrapper) when val_loss is the best so far, atomically (temp file + rename)."""
    import keras

    class AtomicBestCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best = float("inf")

        def on_epoch_end(self, epoch, logs=None):
            val = (logs or {}).get("val_loss")
            if val is not None and val < self.best:
                self.best = val
                tmp = path.with_name(f".tmp-{path.name}")
                model.save(str(tmp))
                os.replace(tmp, path)

    return AtomicBestCheckpoint()
