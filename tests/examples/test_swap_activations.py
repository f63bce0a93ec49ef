"""Smoke test: the activation-swap example runs end to end on tiny sizes with this backend."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_swap_activations_example_runs_on_tiny_sizes():
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "swap_activations.py"),
            "--tiny",
            "--weights",
            "none",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "random (weights=None) weights, 32x32 inputs" in result.stdout
    # The paper's placement: the inner activations of stages 4 and 5 in Keras's naming.
    assert "Replaced 18 of 49 activations by ATAC" in result.stdout
    assert "the ATAC units add 2,377,728 trainable ones" in result.stdout
    accuracy = re.search(r"test accuracy after 2 fine-tuning steps: ([0-9.]+)", result.stdout)
    assert accuracy and 0.0 <= float(accuracy.group(1)) <= 1.0
