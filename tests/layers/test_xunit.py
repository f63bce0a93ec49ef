import keras
import numpy as np
import pytest

from keras_atac.layers import XUnit
from tests.backend_utils import XLA_MODES, gradients
from tests.layer_test_case import LayerTestCase, parameter_count, to_numpy
from tests.layers.reference_ops import (
    conv_reference,
    finite_difference_gradients,
    norm_reference,
    relu,
    weights_by_path,
)


def xunit_reference(x, weights, *, training, axis):
    """x * exp(-(BN2(DWConv_k(ReLU(BN1(x)))))**2), with "same" zero padding."""
    x = np.moveaxis(x, axis, -1).astype("float64")
    kernel = weights["depthwise/kernel"]
    z = relu(norm_reference(x, weights, "input_norm", training))
    z = conv_reference(z, kernel, padding=(kernel.shape[0] - 1) // 2, depthwise=True)
    z = norm_reference(z, weights, "gate_norm", training)
    return np.moveaxis(x * np.exp(-(z**2)), -1, axis)


class TestXUnit(LayerTestCase):
    layer_cls = XUnit
    init_kwargs = {"kernel_size": 3}
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 3 * 3 * 8 + 4 * 8
    expected_non_trainable_params = 4 * 8
    min_rank = 3
    # With the first BatchNorm's offset at 0, relu(gamma * n) = gamma * relu(n) per channel, and
    # the depthwise convolution keeps channels apart: the second BatchNorm's batch statistics
    # remove gamma (up to epsilon), so the first step leaves it unchanged.
    unchanged_by_training = ("input_norm/gamma",)


@pytest.mark.parametrize(
    "shape, data_format, kernel_size",
    [
        ((2, 7, 4), "channels_last", 3),
        ((2, 4, 7), "channels_first", 5),
        ((2, 6, 5, 4), "channels_last", 3),
        ((2, 4, 6, 5), "channels_first", 9),
    ],
)
def test_matches_numpy_reference(shape, data_format, kernel_size):
    layer = XUnit(kernel_size=kernel_size, data_format=data_format)
    layer.build(shape)
    weights = weights_by_path(layer)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    for training in (False, True):
        expected = xunit_reference(x, weights, training=training, axis=axis)
        np.testing.assert_allclose(
            to_numpy(layer(x, training=training)), expected, rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("xla", XLA_MODES)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_training_gradients_match_finite_differences(data_format, xla):
    """The input and weight gradients in training against central differences of the NumPy
    reference: under XLA (JAX; TensorFlow with `xla`) the depthwise convolution is window
    sums with a written-out gradient, elsewhere the backend's own kernel."""
    shape = (2, 5, 6, 3) if data_format == "channels_last" else (2, 3, 5, 6)
    axis = -1 if data_format == "channels_last" else 1
    layer = XUnit(kernel_size=3, data_format=data_format)
    layer.build(shape)
    weights = weights_by_path(layer)
    paths = [variable.path.split("/", 1)[1] for variable in layer.trainable_variables]
    non_trainable = [keras.ops.convert_to_tensor(v) for v in layer.non_trainable_variables]
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape).astype("float32")
    cotangent = rng.normal(size=shape)

    def loss(x, *trainable_values):
        values = {**weights, **dict(zip(paths, trainable_values))}
        return float(np.sum(xunit_reference(x, values, training=True, axis=axis) * cotangent))

    def backend_loss(x, *trainable_values):
        outputs, _ = layer.stateless_call(list(trainable_values), non_trainable, x, training=True)
        return keras.ops.sum(outputs * keras.ops.convert_to_tensor(cotangent.astype("float32")))

    trainable_values = [weights[path] for path in paths]
    actual = gradients(backend_loss, x, *trainable_values, xla=xla)
    expected = finite_difference_gradients(loss, [x, *trainable_values])
    for name, got, wanted in zip(["inputs", *paths], actual, expected):
        scale = max(np.abs(wanted).max(), 1e-2)
        np.testing.assert_allclose(got, wanted, rtol=2e-3, atol=2e-4 * scale, err_msg=name)


def test_default_kernel_and_parameter_count_for_64_channels():
    layer = XUnit()
    layer.build((None, 16, 16, 64))
    assert tuple(layer.depthwise.kernel.shape) == (9, 9, 64, 1)
    assert parameter_count(layer.trainable_weights) == 81 * 64 + 4 * 64
    assert parameter_count(layer.non_trainable_weights) == 4 * 64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_size": 4}, "kernel_size=4"),
        ({"kernel_size": 0}, "kernel_size=0"),
        ({"kernel_size": "9"}, "kernel_size='9'"),
        ({"momentum": -0.1}, "momentum=-0.1"),
        ({"epsilon": 0.0}, "epsilon=0.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        XUnit(**kwargs)


def test_rejects_3d_feature_maps():
    layer = XUnit()
    with pytest.raises(ValueError, match=r"rank in \[3, 4\].*input_shape=\(None, 4, 4, 4, 8\)"):
        layer.build((None, 4, 4, 4, 8))
    assert not layer.built and not layer.weights
