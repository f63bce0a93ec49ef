import numpy as np
import pytest

from keras_atac.layers import Maxout
from tests.layer_test_case import LayerTestCase, to_numpy


def maxout_reference(x, pool_size, axis):
    """The maximum over groups of `pool_size` consecutive channels along `axis`."""
    x = np.moveaxis(x, axis, -1)
    grouped = x.reshape(*x.shape[:-1], x.shape[-1] // pool_size, pool_size)
    return np.moveaxis(grouped.max(axis=-1), -1, axis)


class TestMaxout(LayerTestCase):
    layer_cls = Maxout
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 0


@pytest.mark.parametrize(
    "shape, data_format, pool_size",
    [
        ((5, 8), "channels_last", 4),
        ((2, 5, 8), "channels_last", 1),
        ((2, 8, 5), "channels_first", 2),
        ((2, 3, 4, 8), "channels_last", 2),
        ((2, 8, 3, 4), "channels_first", 4),
    ],
)
def test_matches_numpy_reference(shape, data_format, pool_size):
    layer = Maxout(pool_size=pool_size, data_format=data_format)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    outputs = to_numpy(layer(x))
    np.testing.assert_array_equal(outputs, maxout_reference(x, pool_size, axis))
    assert outputs.shape == layer.compute_output_shape(shape)


@pytest.mark.parametrize("pool_size", [0, -2, 1.5, "2", True])
def test_rejects_bad_pool_size(pool_size):
    with pytest.raises(ValueError, match=f"pool_size={pool_size!r}"):
        Maxout(pool_size=pool_size)


def test_rejects_channels_that_pool_size_does_not_divide():
    layer = Maxout(pool_size=4)
    with pytest.raises(ValueError, match="6 input channels.*pool_size=4"):
        layer.build((None, 3, 6))
    assert not layer.built
