import numpy as np
import pytest

from keras_atac.layers import FoldedXUnit
from tests.layer_test_case import LayerTestCase, to_numpy
from tests.layers.reference_ops import conv_reference, relu


def folded_xunit_reference(x, weights, *, axis):
    """x * exp(-(DWConv_k(ReLU(scale * x + offset)) + bias)**2), "same" zero padding."""
    scale, offset, kernel, bias = (w.astype("float64") for w in weights)
    x = np.moveaxis(x, axis, -1).astype("float64")
    z = conv_reference(
        relu(x * scale + offset), kernel, padding=kernel.shape[0] // 2, depthwise=True
    )
    return np.moveaxis(x * np.exp(-((z + bias) ** 2)), -1, axis)


class TestFoldedXUnit(LayerTestCase):
    layer_cls = FoldedXUnit
    init_kwargs = {"kernel_size": 3}
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 3 * 3 * 8 + 3 * 8
    min_rank = 3


class TestFoldedXUnit1D(TestFoldedXUnit):
    input_shape = (3, 7, 8)
    expected_trainable_params = 3 * 8 + 3 * 8


@pytest.mark.parametrize(
    "shape, data_format, kernel_size",
    [
        ((2, 7, 4), "channels_last", 3),
        ((2, 4, 7), "channels_first", 5),
        ((2, 6, 5, 4), "channels_last", 3),
        ((2, 4, 6, 5), "channels_first", 9),
        # W == C and H == C, where Keras's TensorFlow backend adds a channels-first bias along
        # the width.
        ((2, 4, 4), "channels_first", 3),
        ((2, 4, 6, 4), "channels_first", 3),
        ((2, 4, 4, 6), "channels_first", 3),
    ],
)
def test_matches_numpy_reference(shape, data_format, kernel_size):
    layer = FoldedXUnit(kernel_size=kernel_size, data_format=data_format)
    layer.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.0, 0.5, tuple(w.shape)).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    expected = folded_xunit_reference(x, weights, axis=axis)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_size": 4}, "kernel_size=4"),
        ({"data_format": "NHWC"}, "data_format='NHWC'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FoldedXUnit(**kwargs)
