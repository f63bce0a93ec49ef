import keras
import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import PReLU
from tests.layer_test_case import LayerTestCase, to_numpy


def prelu_reference(x, alpha, axis):
    """max(0, x) + alpha * min(0, x), alpha broadcast along the channel axis `axis`."""
    shape = [1] * x.ndim
    shape[axis] = -1
    alpha = np.reshape(alpha, shape) if np.size(alpha) > 1 else alpha
    return np.maximum(x, 0.0) + alpha * np.minimum(x, 0.0)


class TestPReLUPerChannel(LayerTestCase):
    layer_cls = PReLU
    init_kwargs = {"shared": False}
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 8


@pytest.mark.parametrize(
    "shape, data_format, shared",
    [
        ((4, 6), "channels_last", False),
        ((2, 5, 6), "channels_first", True),
        ((2, 4, 5, 6), "channels_last", True),
        ((2, 6, 2, 3, 4), "channels_first", False),
    ],
)
def test_matches_numpy_reference(shape, data_format, shared):
    layer = PReLU(
        shared=shared,
        alpha_initializer=keras.initializers.RandomNormal(stddev=0.5),
        data_format=data_format,
    )
    layer.build(shape)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    alpha = to_numpy(layer.alpha)
    axis = -1 if data_format == "channels_last" else 1
    expected = prelu_reference(x.astype("float64"), alpha, axis)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-6, atol=1e-7)


def test_default_is_one_slope_of_a_quarter_for_any_rank_as_torch_prelu():
    layer = layers.get("prelu")
    assert isinstance(layer, PReLU)
    x = np.array([[-2.0, 0.0, 3.0]], "float32")
    np.testing.assert_allclose(to_numpy(layer(x)), [[-0.5, 0.0, 3.0]])
    np.testing.assert_array_equal(to_numpy(layer.alpha), [0.25])
    assert to_numpy(PReLU()(np.ones((2, 3, 4, 5, 6), "float32"))).shape == (2, 3, 4, 5, 6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shared='yes'"):
        PReLU(shared="yes")
