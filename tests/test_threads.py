"""keras_atac.threads: one setting caps every framework's CPU thread pools.

Thread pools are process state, so each case runs in a fresh interpreter with the test's
backend.
"""

import os
import pathlib
import subprocess
import sys

import keras
import pytest

from keras_atac import threads

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_python(code):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": str(ROOT)}
    for variable in (*threads.THREAD_VARIABLES, "XLA_FLAGS"):
        env.pop(variable, None)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


CHECK_POOLS = """
import os, sys
import keras
import keras_atac
keras_atac.threads.set_threads(1)
for variable in keras_atac.threads.THREAD_VARIABLES:
    assert os.environ[variable] == "1", variable
assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]
backend = keras.backend.backend()
if backend == "tensorflow":
    import tensorflow as tf
    assert tf.config.threading.get_intra_op_parallelism_threads() == 1
    assert tf.config.threading.get_inter_op_parallelism_threads() == 1
if backend == "torch":
    import torch
    assert torch.get_num_threads() == 1
    assert torch.get_num_interop_threads() == 1
# The frameworks run with the cap.
x = keras.ops.ones((4, 4))
assert float(keras.ops.sum(keras.ops.matmul(x, x))) == 64.0
print("ok")
"""


def test_set_threads_caps_the_pools_of_the_backend():
    result = run_python(CHECK_POOLS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_set_threads_after_the_first_operation_says_it_is_too_late():
    result = run_python(
        "import keras, keras_atac\n"
        "keras.ops.sum(keras.ops.ones((2,)))\n"
        "keras_atac.threads.set_threads(1)\n"
    )
    if keras.backend.backend() == "torch":
        # PyTorch can cap its intra-op pool at any time; only its inter-op pool is fixed once
        # used, and one sum does not use it.
        assert result.returncode == 0, result.stderr[-3000:]
    else:
        assert result.returncode != 0
        assert "came too late" in result.stderr


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_set_threads_rejects_a_non_positive_integer(value):
    with pytest.raises(ValueError, match=r"threads=.*"):
        threads.set_threads(value)


def test_none_leaves_everything_alone(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads.set_threads(None)
    assert "OMP_NUM_THREADS" not in os.environ
