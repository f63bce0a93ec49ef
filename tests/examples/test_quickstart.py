"""Smoke tests: the quickstart runs end to end on tiny budgets with the current backend."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_quickstart(*args):
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def reported_accuracies(stdout):
    return dict(re.findall(r"test accuracy \((\w+)\): ([0-9.]+)", stdout))


@pytest.mark.slow
def test_quickstart_on_bundled_digits():
    result = run_quickstart("--epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    accuracies = reported_accuracies(result.stdout)
    assert set(accuracies) == {"relu", "atac"}
    for value in accuracies.values():
        assert 0.0 <= float(value) <= 1.0
    # 1,797 digits, a stratified quarter for testing: what one image is worth is printed, so
    # that a difference of a few images is not read as a result.
    assert "450 test images: one image is 0.0022 of test accuracy" in result.stdout
    assert "cpu_feature_guard" not in result.stderr  # TensorFlow's INFO start-up line


def _load_quickstart():
    import importlib.util

    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_reads_an_image_folder_without_tensorflow(tmp_path):
    # The NumPy path used where TensorFlow is not installed (e.g. `.[jax,examples]`).
    rng = np.random.default_rng(0)
    expected = {}
    for label in ("b", "a"):
        (tmp_path / label).mkdir()
        for index in range(2):
            image = rng.integers(0, 256, size=(5, 5, 3)).astype("uint8")
            keras.utils.save_img(tmp_path / label / f"{index}.png", image, scale=False)
            expected.setdefault(label, []).append(image)
    (x, y), classes = _load_quickstart().read_images(tmp_path, 5)
    assert classes == ["a", "b"]
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    np.testing.assert_array_equal(x, np.stack(expected["a"] + expected["b"]))
    assert x.dtype == np.uint8


@pytest.mark.slow
def test_quickstart_on_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 3)):
        for label in ("cats", "dogs"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                image = rng.integers(0, 256, size=(12, 12, 3)).astype("uint8")
                keras.utils.save_img(folder / f"{index}.png", image)
    result = run_quickstart(
        "--data-dir", str(tmp_path), "--image-size", "12", "--epochs", "1", "--batch-size", "4"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(reported_accuracies(result.stdout)) == {"relu", "atac"}


def test_quickstart_rejects_a_folder_without_splits(tmp_path):
    result = run_quickstart("--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert "train/<class>/" in result.stderr
