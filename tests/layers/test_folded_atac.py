import numpy as np
import pytest

from keras_atac.layers import FoldedATAC
from tests.layer_test_case import LayerTestCase, to_numpy


def folded_atac_reference(x, weights, *, context="local", use_inner_relu=True, axis=-1):
    """X * sigmoid(ReLU(X @ K1 + b1) @ K2 + b2), the context pooled first for "global"."""
    k1, b1, k2, b2 = (w.astype("float64") for w in weights)
    x_last = np.moveaxis(x, axis, -1).astype("float64")
    context_map = x_last
    if context == "global":
        context_map = x_last.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=True)
    hidden = context_map @ k1 + b1
    if use_inner_relu:
        hidden = np.maximum(hidden, 0.0)
    gate = 1.0 / (1.0 + np.exp(-(hidden @ k2 + b2)))
    return np.moveaxis(x_last * gate, -1, axis)


class TestFoldedATAC(LayerTestCase):
    layer_cls = FoldedATAC
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 2 * 8 * 4 + 4 + 8


class TestFoldedATACGlobalContext(TestFoldedATAC):
    init_kwargs = {"context": "global", "reduction": 4}
    expected_trainable_params = 2 * 8 * 2 + 2 + 8


class TestFoldedATACAfterDense(TestFoldedATAC):
    input_shape = (6, 8)


@pytest.mark.parametrize("context", ["local", "global"])
@pytest.mark.parametrize("use_inner_relu", [True, False])
@pytest.mark.parametrize(
    "shape, data_format",
    [
        ((4, 6), "channels_last"),
        ((2, 4, 5, 6), "channels_last"),
        ((2, 6, 4, 5), "channels_first"),
        ((2, 6, 3, 2, 4), "channels_first"),
    ],
)
def test_matches_numpy_reference(shape, data_format, use_inner_relu, context):
    inner_activation = "relu" if use_inner_relu else None
    layer = FoldedATAC(context=context, inner_activation=inner_activation, data_format=data_format)
    layer.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.0, 0.7, tuple(w.shape)).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    expected = folded_atac_reference(
        x, weights, context=context, use_inner_relu=use_inner_relu, axis=axis
    )
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reduction": 0}, "reduction=0"),
        ({"context": "spatial"}, "context='spatial'"),
        ({"use_inner_relu": 1}, "use_inner_relu=1"),
        ({"inner_activation": "swish"}, "inner_activation='swish'"),
        ({"data_format": "NCHW"}, "data_format='NCHW'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FoldedATAC(**kwargs)


def test_rejects_reduction_that_leaves_no_channel():
    layer = FoldedATAC(reduction=9)
    with pytest.raises(ValueError, match="reduction=9"):
        layer.build((None, 8))
    assert not layer.built and not layer.weights
