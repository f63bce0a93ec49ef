"""Reproducible training: with `keras.utils.set_random_seed` and the backend's deterministic
kernels, two runs give bit-identical weights (in a worker process: TensorFlow's switch cannot
be turned off again)."""

import pytest

from tests.robustness.subprocesses import run_worker

pytestmark = pytest.mark.slow


def test_two_seeded_training_runs_give_identical_weights():
    first, second = run_worker("determinism.py")["digests"]
    assert first == second
