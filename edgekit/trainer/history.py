"""A run's training history: ``history.json`` and a plot of loss and accuracy per epoch (``history.png``).

Example:
    >>> write_history(run_dir, {"loss": [0.9, 0.4], "val_loss": [0.8, 0.5]})   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from edgekit.files import atomic_write_json

HISTORY_JSON, HISTORY_PNG = "history.json", "history.png"


def write_history(run_dir: Path, history: dict[str, list[float]], *, title: str = "") -> None:
    """Write ``history.json`` and ``history.png`` into ``run_dir``."""
    run_dir = Path(run_dir)
    atomic_write_json(run_dir / HISTORY_JSON, history)
    plot_history(history, run_dir / HISTORY_PNG, title=title)


def plot_history(history: dict[str, list[float]], out: Path, *, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, marker="o", markersize=3,
                        label="validation" if key.startswith("val_") else "training")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
