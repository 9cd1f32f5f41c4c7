"""``edgekit train [RECIPE] --data DATA --out RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Train a recipe (mlp, cnn, ds-cnn, mobilenet-v2, resnet8, detector) or your own model file on DATA.

RECIPE is a built-in name or a .py file defining build_model(input_shape, num_classes).
DATA is builtin:digits, builtin:mnist (10,000 real 28x28 digits), an .npz (x_train/y_train/x_test/y_test), an image folder with one
sub-folder per class, or a .csv; for the detector builtin:mnist-detect (digit scenes with boxes), a COCO
.json or a YOLO folder (images/ + labels/), and the run is saved with decoding and NMS inside. Writes RUN_DIR/model.keras (best checkpoint) and
RUN_DIR/edgekit.json, history.json and history.png. A run that did not learn (NaN loss,
validation at chance while training learns) says why and exits 1.

Example: edgekit train cnn --data builtin:mnist --out runs/demo
         edgekit train detector --data builtin:mnist-detect --out runs/detector
"""


def train(
    recipe: str = typer.Argument("cnn", help="Built-in recipe name or a .py model file."),
    data: str = typer.Option(..., "--data", "-d", help="builtin:mnist, builtin:digits, .npz, image folder or .csv; builtin:mnist-detect, COCO .json or YOLO folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write."),
    epochs: int = typer.Option(None, "--epochs", help="Maximum epochs (early stopping may end sooner); default 30, 50 for the detector."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate (the start of the schedule)."),
    lr_schedule: str = typer.Option("cosine", "--lr-schedule", help="cosine (from --lr to 1% over --epochs) or constant."),
    patience: int = typer.Option(5, "--patience", help="Early-stopping patience in epochs (val_loss)."),
    width: float = typer.Option(1.0, "--width", help="Width multiplier of the recipe."),
    strategy: str = typer.Option("default", "--strategy", help="default or mirrored (all local GPUs, or CPUs)."),
    mixed_precision: bool = typer.Option(False, "--mixed-precision", help="mixed_float16 on a GPU."),
    augment: bool = typer.Option(False, "--augment", help="Images: random translation, rotation, zoom, contrast (training only)."),
    image_size: int = typer.Option(None, "--image-size", help="Resize image-folder data to this size (default 32)."),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder."),
) -> int:
    from edgekit.cli.output import quiet_tensorflow

    quiet_tensorflow()
    from edgekit.trainer.fit import train as run_training

    run_training(
        recipe, data, out, epochs=epochs, batch_size=batch_size, learning_rate=lr, lr_schedule=lr_schedule,
        patience=patience,
        width=width, strategy=strategy, mixed_precision=mixed_precision, augment=augment, image_size=image_size,
        seed=seed, overwrite=overwrite,
    )
    return 0
