import keras
import numpy as np
import pytest

from keras_atac.layers import APL
from tests.layer_test_case import LayerTestCase, to_numpy


def apl_reference(x, slopes, hinges, axis):
    """relu(x) + sum_s a_s * relu(-x + b_s), with per-channel (S, C) or shared (S,) a and b."""
    outputs = np.maximum(x, 0.0)
    shape = [1] * x.ndim
    shape[axis] = -1
    for a, b in zip(slopes, hinges):
        if np.ndim(a):
            a, b = np.reshape(a, shape), np.reshape(b, shape)
        outputs = outputs + a * np.maximum(-x + b, 0.0)
    return outputs


class TestAPLPerChannelWithTwoHinges(LayerTestCase):
    layer_cls = APL
    init_kwargs = {
        "num_hinges": 2,
        "shared": False,
        "hinge_initializer": keras.initializers.RandomUniform(-1.0, 1.0, seed=1),
    }
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 2 * 2 * 8


def test_initial_function_is_that_of_the_arelu_comparison():
    layer = APL()
    outputs = to_numpy(layer(np.array([[-1.0, 0.0, 0.25, 0.5, 2.0]], "float32")))
    np.testing.assert_allclose(outputs, [[0.3, 0.1, 0.3, 0.5, 2.0]], rtol=1e-6)
    assert tuple(layer.slopes.shape) == (1,) and tuple(layer.hinges.shape) == (1,)


@pytest.mark.parametrize(
    "shape, data_format, shared, num_hinges",
    [
        ((5, 6), "channels_last", False, 3),
        ((2, 4, 5, 6), "channels_last", True, 3),
        ((2, 4, 5, 6), "channels_last", False, 1),
        ((2, 6, 4, 5), "channels_first", False, 3),
        ((2, 3, 4, 5, 6), "channels_first", True, 1),
    ],
)
def test_matches_numpy_reference(shape, data_format, shared, num_hinges):
    layer = APL(
        num_hinges=num_hinges,
        shared=shared,
        slope_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1),
        hinge_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=2),
        data_format=data_format,
    )
    layer.build(shape)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    expected = apl_reference(
        x.astype("float64"), to_numpy(layer.slopes), to_numpy(layer.hinges), axis
    )
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_hinges": 0}, "num_hinges=0"),
        ({"num_hinges": 1.5}, "num_hinges=1.5"),
        ({"num_hinges": True}, "num_hinges=True"),
        ({"shared": 1}, "shared=1"),
        ({"data_format": "NCHW"}, "data_format='NCHW'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        APL(**kwargs)


def test_per_channel_hinges_need_a_defined_channel_axis():
    layer = APL(shared=False)
    with pytest.raises(ValueError, match="channel"):
        layer.build((None, 4, None))
    assert not layer.built and not layer.weights
