"""`keras_atac.layers.recomputation`: the tie of a recomputation to the upstream gradient.

That it keeps the recomputation in the backward pass is tested where it is used (PAU's
gradient, ATAC's `remat`), by the memory of compiled training steps."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_atac.layers import recomputation
from tests.backend_utils import XLA_MODES, gradients

BACKEND = keras.backend.backend()


@pytest.mark.parametrize("xla", XLA_MODES)
def test_tied_to_upstream_has_the_gradient_of_the_identity(xla):
    """The gradient of `x + 0 * upstream` is the identity's for `x`, and 0 for `upstream`
    (outside XLA, where `x` is returned as it is, `upstream` is not used)."""
    x = np.array([[0.0, -0.0, 1.5, -3.0, 1e30, -1e-30]], "float32")
    upstream = np.array([[2.0, -1.0, 0.0, 1e30, -7.0, 3.0]], "float32")
    weights = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], "float32")

    def loss(x, upstream):
        return ops.sum(recomputation.tied_to_upstream(x, upstream) * ops.convert_to_tensor(weights))

    if BACKEND == "jax" or xla:
        d_x, d_upstream = gradients(loss, x, upstream, xla=xla)
        np.testing.assert_array_equal(d_upstream, np.zeros_like(upstream))
    else:
        (d_x,) = gradients(lambda x: loss(x, ops.convert_to_tensor(upstream)), x)
    np.testing.assert_array_equal(d_x, weights)


@pytest.mark.parametrize("xla", XLA_MODES)
def test_tied_to_upstream_keeps_every_value(xla):
    """Under XLA, `x + 0 * upstream` is `x` (a -0.0 becomes 0.0) wherever `upstream` is
    finite, from the smallest to the largest float32 magnitudes."""
    if BACKEND != "jax" and not xla:
        pytest.skip("outside XLA the input itself is returned (the test below)")
    x = np.array([0.0, -0.0, 1.5, -3.0, 1e30, -1e-30, 3.4e38], "float32")
    upstream = np.array([2.0, -1.0, 0.0, 1e30, -7.0, 3.0, -3.4e38], "float32")
    if BACKEND == "jax":
        import jax

        values = np.asarray(jax.jit(recomputation.tied_to_upstream)(x, upstream))
    else:
        import tensorflow as tf

        compiled = tf.function(recomputation.tied_to_upstream, jit_compile=True)
        values = compiled(tf.constant(x), tf.constant(upstream)).numpy()
    np.testing.assert_array_equal(values, x)


def test_tied_to_upstream_returns_the_input_itself_outside_xla():
    """PyTorch and TensorFlow without XLA run the gradient function when it is called: there is
    nothing to schedule, and no operation is added."""
    if BACKEND == "jax":
        pytest.skip("JAX compiles every function with XLA")
    x = ops.convert_to_tensor(np.ones((2, 3), "float32"))
    assert recomputation.tied_to_upstream(x, ops.zeros((2, 3))) is x
