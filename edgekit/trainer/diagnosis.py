"""Training that says when it went wrong: read a finished ``fit`` history and name what failed.

Three failures users hit and that a bare accuracy number hides:
- the loss became NaN or diverged (the learning rate is too high, or the data holds NaN/huge values);
- validation sat at chance while training learned (seen: keras.applications MobileNetV3 on MNIST,
  whose BatchNormalization moving statistics, momentum 0.999, lag far behind the batch statistics
  after a few hundred steps; also labels shuffled against inputs, or preprocessing that differs);
- early stopping fired before validation loss ever improved on the first epoch.

Example:
    >>> h = {"loss": [2.3, 0.5, 0.2], "accuracy": [0.3, 0.9, 0.96],
    ...      "val_loss": [2.3, 2.4, 2.5], "val_accuracy": [0.1, 0.1, 0.09]}
    >>> diagnose(h, num_classes=10, epochs_requested=30)[0].split(":")[0]
    'validation accuracy stayed at chance (0.100 for 10 classes) while training accuracy reached 0.960'
"""

from __future__ import annotations

import math


def diagnose(history: dict[str, list[float]], *, num_classes: int, epochs_requested: int) -> list[str]:
    """Problems with a training run, each one line with its likely cause and what to try; empty when it looks sound."""
    problems = []
    loss = history.get("loss", [])
    if any(not math.isfinite(v) for v in loss + history.get("val_loss", [])):
        return ["the loss became NaN or infinite: training diverged; lower the learning rate (--lr), and check the "
                "data for NaN or very large values"]
    if len(loss) >= 3 and loss[-1] > 3 * loss[0]:
        problems.append(f"the training loss grew from {loss[0]:.3g} to {loss[-1]:.3g}: training diverged; "
                        "lower the learning rate (--lr)")
    acc, val_acc = history.get("accuracy", []), history.get("val_accuracy", [])
    chance = 1.0 / max(num_classes, 1)
    if acc and val_acc and num_classes >= 2:
        best_val, best_train = max(val_acc), max(acc)
        near = max(0.05, 0.5 * chance) * (1 - chance)  # how far above chance still counts as chance
        at_chance = best_val <= chance + near
        if at_chance and best_train <= chance + near and len(acc) >= 3:
            too_high = loss and max(loss) > 100 * math.log(num_classes)
            problems.append(
                f"the model did not learn: training and validation accuracy stayed at chance ({best_train:.3f} and "
                f"{best_val:.3f} for {num_classes} classes) over {len(acc)} epochs; "
                + (f"the loss reached {max(loss):.3g}, so the learning rate is too high: lower the learning rate (--lr)"
                   if too_high else "check that the labels belong to their inputs, or lower the learning rate (--lr)"))
        elif at_chance and best_train >= min(0.9, chance + 0.5 * (1 - chance)):
            problems.append(
                f"validation accuracy stayed at chance ({best_val:.3f} for {num_classes} classes) while training accuracy "
                f"reached {best_train:.3f}: the model does not compute at inference what it learned in training. Likely "
                "BatchNormalization moving statistics that lag the batch statistics (momentum near 1 with few steps: "
                "lower the layers' momentum, e.g. 0.9, or train longer), or validation data prepared differently from "
                "training data")
    val_loss = history.get("val_loss", [])
    if len(val_loss) >= 2 and len(loss) < epochs_requested and min(val_loss[1:]) >= val_loss[0]:
        problems.append(f"early stopping ended training at epoch {len(loss)} and validation loss never improved on "
                        f"epoch 1 ({val_loss[0]:.3g}): try a lower learning rate (--lr) or a larger --patience")
    return problems
