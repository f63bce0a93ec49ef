"""The banded depthwise convolution against NumPy: values and gradients, every layout."""

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


def reference(x, kernel):
    """'same' depthwise cross-correlation (odd kernel)."""
    return conv_reference(x, kernel, padding=kernel.shape[0] // 2, depthwise=True)


def reference_gradients(x, kernel, r):
    """The gradients of sum(y * r) with respect to x and the kernel."""
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


def convolutions():
    """The public function (which keeps Keras's op on PyTorch) and the banded form itself."""

    def banded(x, kernel, data_format):
        if len(x.shape) == 3:
            axis = 1 if data_format == "channels_last" else 2
            return ops.squeeze(
                depthwise._banded_depthwise_conv_2d(
                    ops.expand_dims(x, axis), ops.expand_dims(kernel, 0), data_format
                ),
                axis,
            )
        return depthwise._banded_depthwise_conv_2d(x, kernel, data_format)

    return {"depthwise_conv": depthwise.depthwise_conv, "banded": banded}


# The public function is the banded form on TensorFlow and JAX; only PyTorch, where it is
# Keras's own op, needs the banded form tested on its own.
FUNCTIONS = (
    ["depthwise_conv", "banded"] if keras.backend.backend() == "torch" else ["depthwise_conv"]
)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape,size", CASES)
def test_values_and_gradients_match_numpy(shape, size, data_format, function):
    convolution = convolutions()[function]
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    kernel = rng.normal(size=(size,) * (len(shape) - 2) + (shape[-1], 1))
    r = rng.normal(size=shape)
    expected = reference(x, kernel)
    actual = convolution(
        ops.convert_to_tensor(to_format(x, data_format), "float32"),
        ops.convert_to_tensor(kernel, "float32"),
        data_format,
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(actual), to_format(expected, data_format), rtol=1e-4, atol=1e-4
    )

    def loss(x_tensor, kernel_tensor):
        y = convolution(x_tensor, kernel_tensor, data_format)
        return ops.sum(y * ops.convert_to_tensor(to_format(r, data_format), "float32"))

    grad_x, grad_k = gradients(loss, to_format(x, data_format), kernel)
    expected_x, expected_k = reference_gradients(x, kernel, r)
    np.testing.assert_allclose(grad_x, to_format(expected_x, data_format), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad_k, expected_k, rtol=1e-4, atol=1e-3)


def test_unknown_width_falls_back_to_keras_op():
    """A width unknown at trace time (a fully convolutional model) still computes."""
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


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape,size", CASES[::2] + [((2, 6, 6, 2), 7)])
def test_single_filter_conv_matches_numpy(shape, size, data_format):
    """A convolution to one filter (CBAM's spatial gate: 7x7, two maps to one, last case)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    kernel = rng.normal(size=(size,) * (len(shape) - 2) + (shape[-1], 1))
    r = rng.normal(size=(*shape[:-1], 1))
    expected = conv_reference(x, kernel, padding=size // 2)
    actual = depthwise.single_filter_conv(
        ops.convert_to_tensor(to_format(x, data_format), "float32"),
        ops.convert_to_tensor(kernel, "float32"),
        data_format,
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(actual), to_format(expected, data_format), rtol=1e-4, atol=1e-4
    )

    def loss(x_tensor, kernel_tensor):
        y = depthwise.single_filter_conv(x_tensor, kernel_tensor, data_format)
        return ops.sum(y * ops.convert_to_tensor(to_format(r, data_format), "float32"))

    grad_x, grad_k = gradients(loss, to_format(x, data_format), kernel)
    # The output is the sum of the channels' depthwise convolutions: each gets the cotangent r.
    expected_x, expected_k = reference_gradients(x, kernel, np.repeat(r, shape[-1], axis=-1))
    np.testing.assert_allclose(grad_x, to_format(expected_x, data_format), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad_k, expected_k, rtol=1e-4, atol=1e-3)


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
