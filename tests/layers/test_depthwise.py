"""The convolutions of `keras_atac.layers.depthwise` against NumPy: values and gradients, every
layout, on each path a backend takes (XLA's window sums and banded products, and the
backends' own kernels outside XLA)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_atac.layers import depthwise
from tests.backend_utils import gradients
from tests.layers.reference_ops import conv_reference

# (channels-last shape, kernel size): one tile, several tiles with a short last one (70 = 2 *
# 32 + 6), a map narrower than the kernel, W == C, 1-D, and a 1-D map wider than a tile.
CASES = [
    ((2, 7, 9, 5), 3),
    ((2, 12, 32, 3), 9),
    ((1, 5, 70, 4), 9),
    ((2, 5, 4, 4), 9),
    ((2, 6, 6, 6), 5),
    ((3, 40, 6), 9),
    ((2, 3, 33), 5),
]

# How the function under test is run: as a test calls it (eager; traced under `jax.jit` on
# JAX, where XLA always compiles), and on TensorFlow also inside `tf.function(jit_compile=True)`,
# where it takes XLA's formulation instead of TensorFlow's own kernel.
MODES = ["eager", "xla"] if keras.backend.backend() == "tensorflow" else ["eager"]
# The mode in which `depthwise_conv` takes its window sums (PyTorch never does).
WINDOW_SUM_MODE = {"tensorflow": "xla", "jax": "eager"}.get(keras.backend.backend())


def reference(x, kernel):
    """'same' depthwise cross-correlation (odd kernel)."""
    return conv_reference(x, kernel, padding=kernel.shape[0] // 2, depthwise=True)


def reference_gradients(x, kernel, r):
    """The gradients of sum(depthwise(x, kernel) * r) with respect to x and the kernel."""
    pad = kernel.shape[0] // 2
    spatial = x.ndim - 2
    # d/dx: the cotangent correlated with the flipped kernel; d/dk: input windows times it.
    flipped = kernel[(slice(None, None, -1),) * spatial]
    grad_x = conv_reference(r, flipped, padding=pad, depthwise=True)
    padded = np.pad(x, [(0, 0)] + [(pad, pad)] * spatial + [(0, 0)])
    grad_k = np.zeros_like(kernel)
    for offset in np.ndindex(*kernel.shape[:spatial]):
        index = tuple(slice(o, o + n) for o, n in zip(offset, x.shape[1:-1]))
        window = padded[(slice(None), *index, slice(None))]
        grad_k[offset + (slice(None), 0)] = np.sum(window * r, axis=tuple(range(spatial + 1)))
    return grad_x, grad_k


def to_format(x, data_format):
    return x if data_format == "channels_last" else np.moveaxis(x, -1, 1)


def values_and_gradients(mode, convolution, x, kernel, r, data_format="channels_last"):
    """The output of `convolution(x, kernel, data_format)` and the gradients of
    `sum(output * r)` with respect to `x` and `kernel`, in float32; `x` and `r` are given
    channels-last and laid out in `data_format` here."""
    x, r = (to_format(np.asarray(a, "float32"), data_format) for a in (x, r))
    kernel = np.asarray(kernel, "float32")

    def convolve(x_tensor, kernel_tensor):
        return convolution(x_tensor, kernel_tensor, data_format)

    def loss(x_tensor, kernel_tensor):
        return ops.sum(convolve(x_tensor, kernel_tensor) * ops.convert_to_tensor(r))

    if mode == "eager":
        output = ops.convert_to_numpy(convolve(ops.convert_to_tensor(x), kernel))
        return (output, *gradients(loss, x, kernel))
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def step(x_tensor, kernel_tensor):
        with tf.GradientTape() as tape:
            tape.watch([x_tensor, kernel_tensor])
            value = loss(x_tensor, kernel_tensor)
        gradient_x, gradient_k = tape.gradient(value, [x_tensor, kernel_tensor])
        return convolve(x_tensor, kernel_tensor), gradient_x, gradient_k

    return [value.numpy() for value in step(tf.constant(x), tf.constant(kernel))]


def assert_matches(actual, expected, data_format):
    """Output, input gradient and kernel gradient against the float64 references."""
    output, grad_x, grad_k = actual
    expected_output, expected_x, expected_k = expected
    for value, wanted in ((output, expected_output), (grad_x, expected_x)):
        np.testing.assert_allclose(value, to_format(wanted, data_format), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad_k, expected_k, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape,size", CASES)
def test_depthwise_values_and_gradients_match_numpy(shape, size, data_format, mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    kernel = rng.normal(size=(size,) * (len(shape) - 2) + (shape[-1], 1))
    r = rng.normal(size=shape)
    actual = values_and_gradients(mode, depthwise.depthwise_conv, x, kernel, r, data_format)
    assert_matches(actual, (reference(x, kernel), *reference_gradients(x, kernel, r)), data_format)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape,size", CASES[::2] + [((2, 6, 6, 2), 7)])
def test_single_filter_values_and_gradients_match_numpy(shape, size, data_format, mode):
    """A convolution to one filter (CBAM's spatial gate: 7x7, two maps to one, last case)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    kernel = rng.normal(size=(size,) * (len(shape) - 2) + (shape[-1], 1))
    r = rng.normal(size=(*shape[:-1], 1))
    actual = values_and_gradients(mode, depthwise.single_filter_conv, x, kernel, r, data_format)
    # The output is the sum of the channels' depthwise convolutions: each gets the cotangent r.
    expected = (
        conv_reference(x, kernel, padding=size // 2),
        *reference_gradients(x, kernel, np.repeat(r, shape[-1], axis=-1)),
    )
    assert_matches(actual, expected, data_format)


@pytest.mark.skipif(WINDOW_SUM_MODE is None, reason="PyTorch keeps its own kernel")
def test_window_sums_keep_exact_zeros_and_large_inputs_finite():
    """Exact zeros stay zero, and inputs near float32's range give finite values and
    gradients wherever their sums do not overflow (the kernel gradient's terms are products
    of one input and one cotangent, never squares)."""
    x = np.zeros((2, 8, 8, 4), "float32")
    x[0, 3, 3, 1] = 1e18
    kernel = np.full((3, 3, 4, 1), 0.5, "float32")
    r = np.zeros_like(x)
    r[0, 3, 4, 1] = 1e18
    output, grad_x, grad_k = values_and_gradients(
        WINDOW_SUM_MODE, depthwise.depthwise_conv, x, kernel, r
    )
    assert np.count_nonzero(output) == 9 and np.all(np.isfinite(output))
    assert np.all(np.isfinite(grad_x)) and np.all(np.isfinite(grad_k))
    assert np.count_nonzero(grad_k) == 1 and grad_k[1, 0, 1, 0] == pytest.approx(1e36)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a traced unknown batch size")
def test_window_sums_with_unknown_batch_size():
    """TensorFlow may trace Keras's compiled step with the batch size unknown (a retrace for a
    last, smaller batch); the window sums take it."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    x, r = rng.normal(size=(2, 3, 6, 7, 4))
    kernel = rng.normal(size=(3, 3, 4, 1))

    @tf.function(
        jit_compile=True,
        input_signature=[tf.TensorSpec((None, 6, 7, 4)), tf.TensorSpec((3, 3, 4, 1))],
    )
    def step(x_tensor, kernel_tensor):
        with tf.GradientTape() as tape:
            tape.watch([x_tensor, kernel_tensor])
            y = depthwise.depthwise_conv(x_tensor, kernel_tensor, "channels_last")
            value = tf.reduce_sum(y * tf.constant(r, tf.float32))
        return (y, *tape.gradient(value, [x_tensor, kernel_tensor]))

    actual = [value.numpy() for value in step(x.astype("float32"), kernel.astype("float32"))]
    expected = (reference(x, kernel), *reference_gradients(x, kernel, r))
    assert_matches(actual, expected, "channels_last")


def test_unknown_spatial_size_falls_back_to_keras_op():
    """A map size unknown at trace time (a fully convolutional model) still computes."""
    inputs = keras.Input((None, None, 3))
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 1)).astype("float32")
    outputs = keras.layers.Lambda(
        lambda x: depthwise.depthwise_conv(x, kernel, "channels_last"),
        output_shape=lambda shape: shape,
    )(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).normal(size=(1, 6, 10, 3)).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(model(x)),
        reference(x.astype("float64"), kernel.astype("float64")),
        rtol=1e-4,
        atol=1e-4,
    )


def test_single_filter_layer_keeps_keras_convolution_elsewhere():
    """Strided, valid-padded or many-filter convolutions of the layer are Keras's own."""
    from keras_atac.layers import layer_utils

    x = np.random.default_rng(3).normal(size=(2, 9, 9, 3)).astype("float32")
    for kwargs in (
        {"filters": 1, "strides": 2},
        {"filters": 1, "padding": "valid"},
        {"filters": 4},
    ):
        kwargs = {"kernel_size": 3, "padding": "same", **kwargs}
        layer = layer_utils.SingleFilterConv2D(**kwargs)
        plain = keras.layers.Conv2D(**kwargs)
        layer.build(x.shape)
        plain.build(x.shape)
        plain.set_weights(layer.get_weights())
        np.testing.assert_allclose(
            ops.convert_to_numpy(layer(x)), ops.convert_to_numpy(plain(x)), rtol=1e-5, atol=1e-5
        )
