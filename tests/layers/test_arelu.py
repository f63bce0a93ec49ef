import keras
import numpy as np
import pytest
from keras import ops

from keras_atac.layers import AReLU
from tests.backend_utils import gradients
from tests.layer_test_case import LayerTestCase, to_numpy


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def arelu_reference(x, alpha, beta):
    """AReLU(x) = (1 + sigmoid(beta)) * relu(x) - clip(alpha, 0.01, 0.99) * relu(-x)."""
    x = x.astype("float64")
    return (1.0 + sigmoid(beta)) * np.maximum(x, 0.0) - np.clip(alpha, 0.01, 0.99) * np.maximum(
        -x, 0.0
    )


def arelu_reference_gradients(x, upstream, alpha, beta):
    """Analytic gradients of sum(upstream * AReLU(x)) with respect to x, alpha and beta.

    The clamp passes gradient 1 inside [0.01, 0.99], bounds included (as torch.clamp does), and 0
    outside; the bounds are compared in float32, the layer's dtype. relu'(0) = 0, so d/dx at
    x = 0 is 0.
    """
    in_range = np.float32(0.01) <= np.float32(alpha) <= np.float32(0.99)
    alpha_clamped = np.clip(alpha, 0.01, 0.99)
    slope = np.where(x > 0, 1.0 + sigmoid(beta), np.where(x < 0, alpha_clamped, 0.0))
    d_alpha = np.sum(upstream * -np.maximum(-x, 0.0)) if in_range else 0.0
    d_beta = np.sum(upstream * np.maximum(x, 0.0)) * sigmoid(beta) * (1.0 - sigmoid(beta))
    return upstream * slope, d_alpha, d_beta


class TestAReLU(LayerTestCase):
    layer_cls = AReLU
    input_shape = (4, 5, 6)
    expected_trainable_params = 2
    expected_non_trainable_params = 0
    supports_data_format = False
    min_rank = 1


def test_initial_slopes():
    layer = AReLU()
    out = to_numpy(layer(np.array([[-1.0, 0.0, 1.0]], "float32")))
    np.testing.assert_allclose(out, [[-0.9, 0.0, 1.8807970]], rtol=1e-6)
    assert tuple(layer.alpha.shape) == (1,) and tuple(layer.beta.shape) == (1,)


@pytest.mark.parametrize("alpha", [-0.5, 0.0, 0.01, 0.3, 0.9, 0.99, 1.0, 1.7])
@pytest.mark.parametrize("beta", [-3.0, 0.0, 2.0])
def test_matches_numpy_reference(alpha, beta):
    layer = AReLU(
        alpha_initializer=keras.initializers.Constant(alpha),
        beta_initializer=keras.initializers.Constant(beta),
    )
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    x[0, 0, :3] = 0.0
    np.testing.assert_allclose(
        to_numpy(layer(x)), arelu_reference(x, alpha, beta), rtol=1e-6, atol=1e-6
    )


# Points at, just inside and just outside both clamp bounds, and far outside.
@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.009, 0.01, 0.011, 0.5, 0.989, 0.99, 0.991, 2.0])
@pytest.mark.parametrize("beta", [-1.0, 2.0])
def test_gradients_match_analytic_ones(alpha, beta):
    layer = AReLU()
    layer.build((None, 7))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7)).astype("float32")
    x[0, :2] = 0.0  # d/dx at 0 is 0
    upstream = rng.normal(size=x.shape).astype("float32")

    def loss(inputs, alpha_value, beta_value):
        outputs, _ = layer.stateless_call([alpha_value, beta_value], [], inputs)
        return ops.sum(ops.multiply(outputs, ops.convert_to_tensor(upstream)))

    # float32 values of the test points, so the bound comparisons match the layer's exactly.
    alpha32 = np.float32(alpha)
    d_x, d_alpha, d_beta = gradients(loss, x, np.array([alpha32]), np.array([beta], "float32"))
    want_x, want_alpha, want_beta = arelu_reference_gradients(
        x.astype("float64"), upstream, float(alpha32), beta
    )
    np.testing.assert_allclose(d_x, want_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_alpha, [want_alpha], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_beta, [want_beta], rtol=1e-5, atol=1e-6)
    if alpha < 0.0 or alpha > 1.0:
        assert d_alpha[0] == 0.0


def test_raw_alpha_may_leave_the_clamp_interval_in_training():
    """The clamp is in the forward pass, not a constraint: the stored alpha is not clipped."""
    layer = AReLU(alpha_initializer=keras.initializers.Constant(0.985))
    model = keras.Sequential([keras.Input((4,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    x = -np.ones((8, 4), "float32")
    # The output is -alpha; a target of -2 pushes alpha up past 0.99, where its gradient is 0.
    model.fit(x, -2.0 * np.ones_like(x), batch_size=8, epochs=1, verbose=0)
    assert to_numpy(layer.alpha)[0] > 0.99
    out = to_numpy(layer(x))
    np.testing.assert_allclose(out, -0.99 * np.ones_like(x), rtol=1e-6)


def test_regularizers_and_constraints_reach_the_weights():
    layer = AReLU(alpha_regularizer="l2", beta_regularizer="l1", alpha_constraint="non_neg")
    layer.build((None, 3))
    assert len(layer.losses) == 2
    assert layer.alpha.constraint is layer.alpha_constraint


@pytest.mark.parametrize("argument", ["alpha_initializer", "beta_initializer"])
def test_rejects_initializers_of_the_wrong_shape(argument):
    layer = AReLU(**{argument: keras.initializers.Constant([0.5, 0.7])})
    with pytest.raises(ValueError, match=rf"{argument}.*shape \(2,\)"):
        layer.build((None, 3))
    assert not layer.built and not layer.weights


def test_rejects_unknown_initializer():
    with pytest.raises(ValueError, match="not_an_initializer"):
        AReLU(alpha_initializer="not_an_initializer")


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_integer_and_boolean_inputs_are_cast_to_the_compute_dtype(dtype):
    layer = AReLU()
    x = np.array([[-2, -1, 0, 1, 3]])
    outputs = layer(x.astype(dtype))
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    np.testing.assert_allclose(
        to_numpy(outputs), arelu_reference(x.astype(dtype), 0.9, 2.0), rtol=1e-6
    )
