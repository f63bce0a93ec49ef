import keras
import numpy as np
import pytest

from keras_atac.layers import SLAF
from tests.layer_test_case import LayerTestCase, to_numpy


def slaf_reference(x, coefficients):
    """sum_i c_i * x**i, term by term."""
    return sum(c * x**i for i, c in enumerate(coefficients))


class TestSLAF(LayerTestCase):
    layer_cls = SLAF
    input_shape = (4, 5, 6)
    expected_trainable_params = 2
    supports_data_format = False
    min_rank = 1


@pytest.mark.parametrize("num_terms", [1, 2, 3, 5])
def test_matches_numpy_reference(num_terms):
    layer = SLAF(num_terms, coefficient_initializer=keras.initializers.RandomNormal(seed=3))
    layer.build((None, 5))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    expected = slaf_reference(x.astype("float64"), to_numpy(layer.coefficients).astype("float64"))
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


def test_starts_as_one_plus_x():
    x = np.array([[-2.0, 0.0, 3.0]], "float32")
    np.testing.assert_allclose(to_numpy(SLAF()(x)), 1.0 + x)
    np.testing.assert_allclose(to_numpy(SLAF(num_terms=3)(x)), 1.0 + x + x**2)


def test_float16_policy_keeps_representable_values_of_higher_degrees():
    """|x|**3 overflows float16 for |x| > 40: only outputs that fit must be finite."""
    layer = SLAF(num_terms=4, dtype="mixed_float16")
    x = np.array([[-30.0, -1.5, 0.0, 2.0, 30.0]], "float32")
    expected = slaf_reference(x.astype("float64"), [1.0, 1.0, 1.0, 1.0])
    outputs = to_numpy(keras.ops.cast(layer(x), "float32"))
    np.testing.assert_allclose(outputs, expected, rtol=1e-3)


@pytest.mark.parametrize("num_terms", [0, -1, 2.0, "2", True])
def test_rejects_bad_number_of_terms(num_terms):
    with pytest.raises(ValueError, match=f"num_terms={num_terms!r}"):
        SLAF(num_terms=num_terms)
