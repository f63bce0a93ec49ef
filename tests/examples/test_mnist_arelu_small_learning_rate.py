"""Smoke test: the AReLU MNIST tutorial on a tiny generated .npz file."""

import re

import pytest

from tests.data_utils import write_npz
from tests.examples.example_runner import run_example


@pytest.mark.slow
def test_tutorial_runs_on_a_tiny_npz(tmp_path):
    write_npz(tmp_path / "mnist.npz", num_train=40, num_test=10, shape=(28, 28))
    result = run_example(
        "mnist_arelu_small_learning_rate.py",
        "--data-dir", tmp_path / "mnist.npz",
        "--epochs", "1",
        "--batch-size", "20",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.findall(r"^(\w+): test accuracy after epoch 1", result.stdout, re.M) == [
        "arelu",
        "relu",
    ]
    # AReLU's learned slopes are printed for its three sites.
    assert len(re.findall(r"slope [0-9.]+ for x > 0", result.stdout)) == 3
