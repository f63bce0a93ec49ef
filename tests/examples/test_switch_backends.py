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
    # A model saved "by another backend" beforehand must load in the worker's. It carries
    # jit_compile=True, as every file saved on JAX does; on PyTorch that would be
    # torch.compile, so the worker must compile it again for its own backend.
    other = keras_atac.models.cifar_resnet(8, activation="atac")
    other.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
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
    fresh = keras_atac.models.cifar_resnet(8, activation="relu")
    fresh.compile(loss="sparse_categorical_crossentropy")  # jit_compile="auto"
    assert report["loaded_jit_compile"] == {"other": fresh.jit_compile}
    assert f"| {backend} |" in result.stdout


LOAD_WITHOUT_IMPORT = """
import importlib.util, sys
import keras
path, helper = sys.argv[1], sys.argv[2]
try:
    keras.saving.load_model(path, compile=False)
except TypeError as error:
    assert "Could not locate class 'ATAC'" in str(error), error
else:
    raise AssertionError("loaded without keras_atac registered")
assert "keras_atac" not in sys.modules
spec = importlib.util.spec_from_file_location("switch_backends", helper)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("ATAC" in {type(layer).__name__ for layer in module.load_saved_model(path).layers})
"""


def test_load_helper_works_in_a_process_that_never_imported_keras_atac(tmp_path):
    # ".keras files load without custom_objects" holds once keras_atac is imported; in a fresh
    # process Keras cannot find the class, and the tutorial's helper imports the package.
    import os
    import subprocess
    import sys

    from tests.examples.example_runner import ROOT

    model = keras_atac.models.cifar_resnet(8, activation="atac")
    model.save(tmp_path / "atac.keras")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_IMPORT, str(tmp_path / "atac.keras"),
         str(ROOT / "examples" / "switch_backends.py")],
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "True"
