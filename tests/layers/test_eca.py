import math

import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import ECA
from keras_atac.layers.eca import adaptive_kernel_size
from tests.layer_test_case import LayerTestCase, parameter_count, to_numpy
from tests.layers.reference_ops import sigmoid


def nearest_odd(value):
    """The odd integer nearest to `value`, ties broken upwards."""
    candidates = range(1, 2 * math.ceil(value) + 3, 2)
    return min(candidates, key=lambda k: (abs(k - value), -k))


def eca_reference(x, kernel, axis):
    """x * sigmoid(conv1d over the channels of GAP(x)), zero padding (k - 1) / 2, no bias."""
    x = np.moveaxis(x, axis, -1).astype("float64")
    spatial = tuple(range(1, x.ndim - 1))
    pooled = x.mean(axis=spatial)
    k = len(kernel)
    padded = np.pad(pooled, ((0, 0), ((k - 1) // 2, (k - 1) // 2)))
    logits = sum(kernel[i] * padded[:, i : i + pooled.shape[1]] for i in range(k))
    gate = sigmoid(logits).reshape(x.shape[0], *([1] * len(spatial)), x.shape[-1])
    return np.moveaxis(x * gate, -1, axis)


class TestECA(LayerTestCase):
    layer_cls = ECA
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 3
    convolution_kernels = ("conv/kernel",)


def test_adaptive_kernel_size_follows_the_paper():
    table = {1: 1, 2: 1, 7: 1, 8: 3, 64: 3, 127: 3, 128: 5, 256: 5, 2047: 5, 2048: 7}
    for channels, k in table.items():
        t = int(abs((math.log2(channels) + 1) / 2))
        assert adaptive_kernel_size(channels) == (t if t % 2 else t + 1) == k
    for channels in range(1, 5000):
        assert adaptive_kernel_size(channels) == nearest_odd((math.log2(channels) + 1) / 2)


@pytest.mark.parametrize(
    "shape, data_format, kernel_size",
    [
        ((4, 16), "channels_last", 5),
        ((2, 5, 16), "channels_last", None),
        ((2, 4, 5, 16), "channels_last", 1),
        ((2, 16, 4, 5), "channels_first", None),
        ((2, 16, 2, 3, 4), "channels_first", 5),
    ],
)
def test_matches_numpy_reference(shape, data_format, kernel_size):
    layer = ECA(kernel_size=kernel_size, data_format=data_format)
    layer.build(shape)
    kernel = np.random.default_rng(0).normal(size=tuple(layer.conv.kernel.shape))
    layer.set_weights([kernel.astype("float32")])
    assert len(kernel) == (kernel_size or 3)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    expected = eca_reference(x, kernel[:, 0, 0].astype("float32").astype("float64"), axis)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


def test_parameter_count_for_64_and_256_channels():
    for channels, k in ((64, 3), (256, 5)):
        layer = layers.get("eca")
        layer.build((None, 7, 7, channels))
        assert parameter_count(layer.weights) == k


@pytest.mark.parametrize("kernel_size", [0, 4, 2.5, "3", True])
def test_rejects_bad_kernel_size(kernel_size):
    with pytest.raises(ValueError, match=f"kernel_size={kernel_size!r}"):
        ECA(kernel_size=kernel_size)
