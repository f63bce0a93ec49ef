import keras
import numpy as np
import pytest

from keras_atac.layers import Mixture
from tests.layer_test_case import LayerTestCase, to_numpy


class TestMixture(LayerTestCase):
    layer_cls = Mixture
    input_shape = (4, 5, 6)
    expected_trainable_params = 1
    supports_data_format = False
    min_rank = 1


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0, -0.5, 1.7])
def test_matches_numpy_reference(p):
    layer = Mixture(p_initializer=keras.initializers.Constant(p))
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    expected = p * x.astype("float64") + (1.0 - p) * np.maximum(x, 0.0)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-6, atol=1e-7)


def test_starts_as_relu_with_a_scalar_weight():
    layer = Mixture()
    x = np.linspace(-2.0, 2.0, 9, dtype="float32")[None]
    np.testing.assert_array_equal(to_numpy(layer(x)), np.maximum(x, 0.0))
    assert tuple(layer.p.shape) == (1,)


def test_rejects_unknown_initializer():
    with pytest.raises(ValueError, match="not_an_initializer"):
        Mixture(p_initializer="not_an_initializer")
