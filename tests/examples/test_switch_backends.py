"""Smoke test: the backend-switching tutorial, coordinating a worker on the test's backend."""

import json

import keras
import pytest

import keras_atac
from tests.data_utils import write_image_folder
from tests.examples.example_runner import run_example


@pytest.mark.slow
def test_tutorial_runs_a_worker_per_backend(tmp_path):
    backend = keras.backend.backend()
    write_image_folder(tmp_path / "data", num_classes=10, train_per_class=2, test_per_class=1)
    # A model saved "by another backend" beforehand must load in the worker's.
    other = keras_atac.models.cifar_resnet(8, activation="atac")
    other.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    (tmp_path / "out").mkdir()
    other.save(tmp_path / "out" / "other.keras")
    result = run_example(
        "switch_backends.py",
        "--data-dir", tmp_path / "data",
        "--subset", "20",
        "--batch-size", "10",
        "--epochs", "2",
        "--activation", "relu",
        "--backends", backend,
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / f"{backend}.json").read_text())
    assert report["backend"] == backend and report["ms_per_step"] > 0
    assert set(report["loaded_accuracy"]) == {"other"}
    assert f"| {backend} |" in result.stdout
