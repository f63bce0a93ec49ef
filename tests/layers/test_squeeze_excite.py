import json

import keras
import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import AReLU, SqueezeExcite
from tests.layer_test_case import LayerTestCase, parameter_count, to_numpy
from tests.layers.reference_ops import (
    RESNET50_PARAMETERS,
    channel_gate_reference,
    resnet50_added_parameters,
    weights_by_path,
)


class TestSqueezeExcite(LayerTestCase):
    layer_cls = SqueezeExcite
    init_kwargs = {"reduction": 4}
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 2 * 8 * 2 + 2 + 8


@pytest.mark.parametrize(
    "shape, data_format",
    [
        ((4, 8), "channels_last"),
        ((2, 4, 5, 8), "channels_last"),
        ((2, 8, 2, 3, 4), "channels_first"),
    ],
)
def test_matches_numpy_reference(shape, data_format):
    layer = SqueezeExcite(reduction=4, data_format=data_format)
    layer.build(shape)
    weights = weights_by_path(layer)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    expected = channel_gate_reference(x, weights, axis=axis, pools=(np.mean,))
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


def test_default_reduction_is_16():
    for channels, inner in ((16, 1), (64, 4), (100, 6), (256, 16)):
        layer = layers.get("se")
        layer.build((None, 4, 4, channels))
        assert tuple(layer.reduce.kernel.shape) == (channels, inner)
        assert parameter_count(layer.trainable_weights) == 2 * channels * inner + inner + channels


def test_resnet50_budget_matches_the_paper():
    """SE-ResNet-50: about 2.5M parameters more than ResNet-50, 28.1M in all."""
    added = resnet50_added_parameters(SqueezeExcite)
    assert added == 2_530_992
    assert round((RESNET50_PARAMETERS + added) / 1e6, 1) == 28.1


def test_activations_come_from_the_factory_and_serialize():
    layer = SqueezeExcite(reduction=2, inner_activation=AReLU(), gate_activation="hard_sigmoid")
    layer.build((None, 3, 3, 4))
    assert isinstance(layer.inner, AReLU)
    assert parameter_count(layer.trainable_weights) == 2 * 4 * 2 + 2 + 4 + 2
    config = json.loads(json.dumps(layer.get_config()))
    revived = SqueezeExcite.from_config(config)
    revived.build((None, 3, 3, 4))
    assert isinstance(revived.inner, AReLU) and revived.get_config() == layer.get_config()
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32")
    revived.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(revived(x)), to_numpy(layer(x)), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"reduction": 0}, ValueError, "reduction=0"),
        ({"reduction": "16"}, ValueError, "reduction='16'"),
        ({"gate_activation": "sigmod"}, ValueError, "gate_activation='sigmod'"),
        ({"inner_activation": 3}, TypeError, "inner_activation=3"),
        ({"data_format": "NHWC"}, ValueError, "data_format='NHWC'"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        SqueezeExcite(**kwargs)


def test_rejects_reduction_that_leaves_no_channel():
    layer = SqueezeExcite()
    with pytest.raises(ValueError, match=r"floor\(8 / reduction\).*reduction=16"):
        layer.build((None, 4, 4, 8))
    assert not layer.built and not layer.weights


def test_is_placed_by_name_in_a_functional_model():
    inputs = keras.Input((None, None, 32))
    outputs = layers.get("squeeze_excite")(inputs)
    assert isinstance(keras.Model(inputs, outputs).layers[-1], SqueezeExcite)
