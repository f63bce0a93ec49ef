import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import CBAM, ChannelAttention, SpatialAttention
from tests.layer_test_case import LayerTestCase, parameter_count, to_numpy
from tests.layers.reference_ops import (
    channel_gate_reference,
    conv_reference,
    norm_reference,
    sigmoid,
    weights_by_path,
)

FORMATS = [
    ((2, 7, 6), "channels_last"),
    ((2, 5, 6, 6), "channels_last"),
    ((2, 6, 5, 4), "channels_first"),
    ((2, 6, 3, 4, 5), "channels_first"),
]


def spatial_gate_reference(x, weights, *, training, axis, prefix=""):
    """x * sigmoid(BN(Conv_k([max_c x; mean_c x]))), "same" zero padding, no bias."""
    x = np.moveaxis(x, axis, -1).astype("float64")
    maps = np.stack([x.max(axis=-1), x.mean(axis=-1)], axis=-1)
    kernel = weights[f"{prefix}conv/kernel"]
    z = conv_reference(maps, kernel, padding=(kernel.shape[0] - 1) // 2)
    z = norm_reference(z, weights, f"{prefix}norm", training)
    return np.moveaxis(x * sigmoid(z), -1, axis)


class TestChannelAttention(LayerTestCase):
    layer_cls = ChannelAttention
    init_kwargs = {"reduction": 4}
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 2 * 8 * 2 + 2 + 8


class TestSpatialAttention(LayerTestCase):
    layer_cls = SpatialAttention
    init_kwargs = {"kernel_size": 3}
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 2 * 3 * 3 + 2
    expected_non_trainable_params = 2
    min_rank = 3


class TestCBAM(LayerTestCase):
    layer_cls = CBAM
    init_kwargs = {"reduction": 4, "kernel_size": 3}
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = (2 * 8 * 2 + 2 + 8) + (2 * 3 * 3 + 2)
    expected_non_trainable_params = 2
    min_rank = 3


@pytest.mark.parametrize("shape, data_format", FORMATS[::3])
def test_channel_attention_matches_numpy_reference(shape, data_format):
    layer = ChannelAttention(reduction=2, data_format=data_format)
    layer.build(shape)
    weights = weights_by_path(layer)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    expected = channel_gate_reference(x, weights, axis=axis, pools=(np.mean, np.max))
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, data_format", FORMATS)
def test_spatial_attention_matches_numpy_reference(shape, data_format):
    layer = SpatialAttention(kernel_size=3, data_format=data_format)
    layer.build(shape)
    weights = weights_by_path(layer)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    for training in (False, True):
        expected = spatial_gate_reference(x, weights, training=training, axis=axis)
        np.testing.assert_allclose(
            to_numpy(layer(x, training=training)), expected, rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("shape, data_format", FORMATS[1:3])
def test_cbam_applies_the_channel_gate_then_the_spatial_gate(shape, data_format):
    layer = CBAM(reduction=2, kernel_size=5, data_format=data_format)
    layer.build(shape)
    weights = weights_by_path(layer)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    refined = channel_gate_reference(
        x, weights, axis=axis, pools=(np.mean, np.max), prefix="channel_attention/"
    )
    for training in (False, True):
        expected = spatial_gate_reference(
            refined, weights, training=training, axis=axis, prefix="spatial_attention/"
        )
        np.testing.assert_allclose(
            to_numpy(layer(x, training=training)), expected, rtol=1e-4, atol=1e-5
        )


def test_defaults_and_parameter_counts_for_64_channels():
    layer = layers.get("cbam")
    layer.build((None, 16, 16, 64))
    assert tuple(layer.spatial_attention.conv.kernel.shape) == (7, 7, 2, 1)
    assert parameter_count(layer.trainable_weights) == (2 * 64 * 4 + 4 + 64) + (2 * 49 + 2)
    assert parameter_count(layer.non_trainable_weights) == 2
    assert layer.spatial_attention.norm.momentum == 0.99
    assert layers.get("channel_attention").reduction == 16
    assert layers.get("spatial_attention").kernel_size == 7


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reduction": -1}, "reduction=-1"),
        ({"kernel_size": 6}, "kernel_size=6"),
        ({"momentum": 2}, "momentum=2"),
        ({"gate_activation": "nope"}, "gate_activation='nope'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CBAM(**kwargs)


@pytest.mark.parametrize(
    "shape, message",
    [((None, 8), r"rank in \[3, 5\]"), ((None, 4, 4, 8), r"floor\(8 / reduction\)")],
)
def test_rejects_bad_inputs_before_building_either_gate(shape, message):
    layer = CBAM()
    with pytest.raises(ValueError, match=message):
        layer.build(shape)
    assert not layer.built and not layer.weights
