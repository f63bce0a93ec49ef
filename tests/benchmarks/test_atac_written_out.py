"""ATAC's training gate with its gradient written out (`benchmarks.atac_written_out`).

`benchmarks.atac_cost` times it as ATAC's alternative backward pass, so it must compute what
the layer computes: checked on every backend against a NumPy float64 implementation of the
gate, values and batch statistics directly, gradients by central finite differences.
"""

import keras
import numpy as np
import pytest

from benchmarks import atac_written_out
from tests.backend_utils import gradients
from tests.layer_test_case import to_numpy
from tests.layers.reference_ops import EPSILON, finite_difference_gradients, relu, sigmoid

LAYOUTS = [
    ((6, 8), "channels_last"),
    ((2, 3, 4, 6), "channels_last"),
    ((2, 6, 3, 4), "channels_first"),
    ((2, 4, 2, 3, 2), "channels_first"),
]


def gate_reference(context, weights, *, channel_axis, inner_relu):
    """The training gate in float64 NumPy, channels moved last; returns the gate and the
    biased batch statistics of both BatchNorms."""
    w1, w2, g1, b1, g2, b2 = (np.asarray(w, "float64") for w in weights)
    c = np.moveaxis(np.asarray(context, "float64"), channel_axis, -1)
    axes = tuple(range(c.ndim - 1))

    def batch_norm(z, gamma, beta):
        mean, variance = z.mean(axis=axes), z.var(axis=axes)
        return gamma * (z - mean) / np.sqrt(variance + EPSILON) + beta, mean, variance

    h, mean1, variance1 = batch_norm(c @ w1, g1, b1)
    if inner_relu:
        h = relu(h)
    logits, mean2, variance2 = batch_norm(h @ w2, g2, b2)
    gate = np.moveaxis(sigmoid(logits), -1, channel_axis)
    return gate, (mean1, variance1, mean2, variance2)


def random_gate_arguments(shape, data_format, seed=0):
    rng = np.random.default_rng(seed)
    channels = shape[-1] if data_format == "channels_last" else shape[1]
    inner = channels // 2
    context = rng.normal(size=shape)
    weights = [
        rng.normal(0.0, 0.7, (channels, inner)),
        rng.normal(0.0, 0.7, (inner, channels)),
        rng.normal(1.0, 0.3, inner),
        rng.normal(0.0, 0.5, inner),
        rng.normal(1.0, 0.3, channels),
        rng.normal(0.0, 0.5, channels),
    ]
    return context.astype("float32"), [w.astype("float32") for w in weights]


def backend_gate(context, weights, data_format, inner_relu):
    tensors = [keras.ops.convert_to_tensor(a) for a in (context, *weights)]
    return atac_written_out.training_gate(
        tensors[0], tensors[1:], data_format=data_format, epsilon=EPSILON, inner_relu=inner_relu
    )


def channel_axis_of(data_format):
    return -1 if data_format == "channels_last" else 1


@pytest.mark.parametrize("inner_relu", [True, False])
@pytest.mark.parametrize("shape, data_format", LAYOUTS)
def test_values_and_batch_statistics_match_numpy(shape, data_format, inner_relu):
    context, weights = random_gate_arguments(shape, data_format)
    gate, *statistics = backend_gate(context, weights, data_format, inner_relu)
    expected_gate, expected_statistics = gate_reference(
        context, weights, channel_axis=channel_axis_of(data_format), inner_relu=inner_relu
    )
    np.testing.assert_allclose(to_numpy(gate), expected_gate, rtol=1e-5, atol=1e-6)
    for actual, expected in zip(statistics, expected_statistics):
        np.testing.assert_allclose(to_numpy(actual), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inner_relu", [True, False])
@pytest.mark.parametrize("shape, data_format", LAYOUTS[:3])
def test_gradients_match_finite_differences(shape, data_format, inner_relu):
    context, weights = random_gate_arguments(shape, data_format, seed=1)
    cotangent = np.random.default_rng(2).normal(size=shape)
    axis = channel_axis_of(data_format)

    def loss(*arrays):
        gate, _ = gate_reference(arrays[0], arrays[1:], channel_axis=axis, inner_relu=inner_relu)
        return float(np.sum(gate * cotangent))

    def backend_loss(*tensors):
        gate, *_ = atac_written_out.training_gate(
            tensors[0],
            list(tensors[1:]),
            data_format=data_format,
            epsilon=EPSILON,
            inner_relu=inner_relu,
        )
        return keras.ops.sum(gate * keras.ops.convert_to_tensor(cotangent.astype("float32")))

    actual = gradients(backend_loss, context, *weights)
    expected = finite_difference_gradients(loss, [context, *weights])
    names = ["context", "reduce_kernel", "expand_kernel", "gamma1", "beta1", "gamma2", "beta2"]
    for name, got, wanted in zip(names, actual, expected):
        # An exact zero (beta1's gradient without the inner ReLU, which the second
        # BatchNorm's mean removes) leaves float32 rounding: a floor on the scale.
        scale = max(np.abs(wanted).max(), 1e-2)
        np.testing.assert_allclose(got, wanted, rtol=2e-3, atol=2e-4 * scale, err_msg=name)


def test_large_mean_keeps_the_variance():
    """Inputs far from zero (raw pixel values): the two-pass variance does not cancel."""
    context, weights = random_gate_arguments((64, 8), "channels_last", seed=3)
    context = (1000.0 + context).astype("float32")
    gate, *statistics = backend_gate(context, weights, "channels_last", True)
    expected_gate, expected_statistics = gate_reference(
        context, weights, channel_axis=-1, inner_relu=True
    )
    np.testing.assert_allclose(to_numpy(statistics[1]), expected_statistics[1], rtol=1e-3)
    np.testing.assert_allclose(to_numpy(gate), expected_gate, rtol=1e-3, atol=1e-4)


def test_exact_zero_input_gives_finite_gate_and_gradients():
    """Zero variance in both BatchNorms: the gate is sigmoid(beta2), the gradients finite."""
    context = np.zeros((4, 3, 6), "float32")
    _, weights = random_gate_arguments((4, 3, 6), "channels_last", seed=4)
    gate, *_ = backend_gate(context, weights, "channels_last", True)
    np.testing.assert_allclose(
        to_numpy(gate), np.broadcast_to(sigmoid(weights[5]), context.shape), rtol=1e-5
    )

    def backend_loss(*tensors):
        gate, *_ = atac_written_out.training_gate(
            tensors[0],
            list(tensors[1:]),
            data_format="channels_last",
            epsilon=EPSILON,
            inner_relu=True,
        )
        return keras.ops.sum(gate)

    for gradient in gradients(backend_loss, context, *weights):
        assert np.all(np.isfinite(gradient))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow graph tracing")
def test_batch_size_unknown_when_traced():
    """Under `tf.function` with an unknown batch size the number of positions is read at run
    time: the gradients equal the eager ones."""
    import tensorflow as tf

    context, weights = random_gate_arguments((5, 4, 6), "channels_last", seed=5)

    def input_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            gate, *_ = atac_written_out.training_gate(
                x,
                [tf.constant(w) for w in weights],
                data_format="channels_last",
                epsilon=EPSILON,
                inner_relu=True,
            )
            loss = tf.reduce_sum(gate * gate)
        return tape.gradient(loss, x)

    traced = tf.function(input_gradient, input_signature=[tf.TensorSpec((None, 4, 6))])
    np.testing.assert_allclose(
        traced(tf.constant(context)).numpy(),
        input_gradient(tf.constant(context)).numpy(),
        rtol=1e-5,
        atol=1e-7,
    )
