"""Smoke test: the CIFAR-10 ATAC-versus-ReLU tutorial on a tiny generated image folder."""

import re

import pytest

from tests.data_utils import write_image_folder
from tests.examples.example_runner import run_example


@pytest.mark.slow
def test_tutorial_runs_on_a_tiny_image_folder(tmp_path):
    write_image_folder(tmp_path / "data", num_classes=10, train_per_class=2, test_per_class=1)
    result = run_example(
        "cifar10_atac_vs_relu.py",
        "--data-dir", tmp_path / "data",
        "--depth", "8",
        "--epochs", "1",
        "--batch-size", "10",
        "--out", tmp_path / "curves.png",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    reported = re.findall(r"^(relu|atac): best test accuracy ([0-9.]+)", result.stdout, re.M)
    assert [name for name, _ in reported] == ["relu", "atac"]
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
