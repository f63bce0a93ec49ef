"""Several sums in one pass under XLA (`keras_atac.layers.xla_sums`) against NumPy."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_atac.layers import xla_sums

BACKEND = keras.backend.backend()
# Eager on every backend (under `jax.jit` on JAX, where XLA always compiles), and on TensorFlow
# also inside `tf.function(jit_compile=True)`, where the variadic reduces are taken.
MODES = ["eager", "xla"] if BACKEND == "tensorflow" else ["eager"]


def run(mode, function, *arrays):
    """`function(*tensors)`, a list of tensors, as NumPy arrays."""
    if BACKEND == "jax":
        import jax

        return [np.asarray(value) for value in jax.jit(function)(*arrays)]
    if mode == "xla":
        import tensorflow as tf

        compiled = tf.function(function, jit_compile=True)
        return [value.numpy() for value in compiled(*[tf.constant(a) for a in arrays])]
    tensors = [ops.convert_to_tensor(a) for a in arrays]
    return [ops.convert_to_numpy(value) for value in function(*tensors)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("count", [1, xla_sums.SUMS_PER_PASS, 2 * xla_sums.SUMS_PER_PASS + 3])
def test_sums_match_numpy(count, mode):
    """More operands than one pass takes are summed in several, in their order."""
    operands = np.random.default_rng(count).normal(size=(count, 3, 4, 5, 2)).astype("float32")
    axis = (1, 2)
    actual = run(mode, lambda stacked: xla_sums.sums(list(ops.unstack(stacked)), axis), operands)
    assert len(actual) == count
    for index, total in enumerate(actual):
        np.testing.assert_allclose(total, operands[index].sum(axis), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 3, 4, 7)])
def test_totals_match_numpy_at_every_rank(shape, mode):
    operands = np.random.default_rng(1).normal(size=(3, *shape)).astype("float32")
    actual = run(mode, lambda stacked: xla_sums.totals(list(ops.unstack(stacked))), operands)
    np.testing.assert_allclose(actual, operands.reshape(3, -1).sum(-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_totals_of_a_large_map_keep_float32_precision(mode):
    """A million terms of 0.1 added one after another in float32 are about 1% off; each float32
    sum `totals` takes one after another has at most one map's positions (1,024 here), which
    leaves rounding of about 1e-5."""
    operands = np.full((2, 64, 32, 32, 16), 0.1, "float32")
    actual = run(mode, lambda stacked: xla_sums.totals(list(ops.unstack(stacked))), operands)
    np.testing.assert_allclose(actual, [0.1 * 64 * 32 * 32 * 16] * 2, rtol=1e-4)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's XLA context")
def test_xla_context_is_recognized():
    """The variadic reduces run only where XLA compiles them: TensorFlow has no kernel of its
    own for them."""
    import tensorflow as tf

    seen = []

    def probe():
        seen.append(xla_sums.compiled_by_xla())
        return tf.constant(0.0)

    probe()
    tf.function(probe)()
    tf.function(probe, jit_compile=True)()
    tf.function(lambda: tf.function(probe)(), jit_compile=True)()
    assert seen == [False, False, True, True]
