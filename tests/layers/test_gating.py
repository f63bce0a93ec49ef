"""The `x * G(x)` contract that the gate layers share (`keras_atac.layers.gating`)."""

import keras
import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import gating
from tests.layer_test_case import to_numpy


class TanhGate(gating.GatingLayer):
    """x * (1 + tanh(x)) / 2, recording the dtype its gate was computed in."""

    def build(self, input_shape):
        self.build_gate_policy()

    def gate_values(self, x, training=None):
        self.seen_dtype = keras.backend.standardize_dtype(x.dtype)
        return (1.0 + keras.ops.tanh(x)) / 2.0


@pytest.mark.parametrize(
    "layer_class",
    [
        layers.ATAC,
        layers.FoldedATAC,
        layers.SqueezeExcite,
        layers.ChannelAttention,
        layers.SpatialAttention,
        layers.ECA,
        layers.GatherExcite,
        layers.XUnit,
        layers.FoldedXUnit,
    ],
)
def test_the_gates_share_the_contract(layer_class):
    assert issubclass(layer_class, gating.GatingLayer)


def test_the_product_of_the_input_and_its_gate():
    x = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]], "float32")
    y = to_numpy(TanhGate()(x))
    # float32 tanh of the backends differs from NumPy's by an ulp or so.
    np.testing.assert_allclose(y, x * (1.0 + np.tanh(x)) / 2.0, rtol=1e-5, atol=1e-7)
    assert TanhGate().compute_output_shape((None, 7, 3)) == (None, 7, 3)


def test_integer_inputs_are_cast_to_the_compute_dtype():
    layer = TanhGate()
    y = layer(np.array([[-2, 0, 2]], "int32"))
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    np.testing.assert_allclose(
        to_numpy(y), [[-2 * (1 - np.tanh(2)) / 2, 0, 2 * (1 + np.tanh(2)) / 2]], rtol=1e-6
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float16", "bfloat16"])
def test_the_gate_is_computed_in_float32_under_16_bit_policies(policy):
    layer = TanhGate(dtype=policy)
    x = np.array([[-1e4, -1.0, 0.0, 1.0, 1e4]], "float32")
    y = layer(x)
    assert layer.seen_dtype == "float32"
    assert keras.backend.standardize_dtype(y.dtype) == layer.compute_dtype
    expected = x * (1.0 + np.tanh(x)) / 2.0
    np.testing.assert_allclose(to_numpy(y).astype("float32"), expected, rtol=1e-2, atol=1e-2)


def test_float64_is_kept():
    layer = TanhGate(dtype="float64")
    layer(np.ones((1, 2)))
    # JAX without x64 mode has no float64 arrays: its float64 tensors are float32.
    float64 = keras.backend.standardize_dtype(keras.ops.ones((1,), "float64").dtype)
    assert layer.seen_dtype == float64
