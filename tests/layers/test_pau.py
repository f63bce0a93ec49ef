import keras
import numpy as np
import pytest
from keras import ops

from keras_atac.layers import PAU
from keras_atac.layers.pau import LEAKY_RELU_DENOMINATOR, LEAKY_RELU_NUMERATOR
from tests.backend_utils import XLA_MODES, gradients
from tests.layer_test_case import LayerTestCase, to_numpy


def pau_reference(x, n, d):
    """P(x) / Q(x), P = sum_j n_j x**j, Q = 1 + sum_k |d_{k-1}| |x|**k, evaluated directly."""
    p = sum(c * x**j for j, c in enumerate(n))
    q = 1.0 + sum(abs(c) * np.abs(x) ** (k + 1) for k, c in enumerate(d))
    return p / q


def pau_reference_gradients(x, upstream, n, d):
    """Analytic gradients of sum(upstream * P/Q) with respect to x, n and d."""
    p = sum(c * x**j for j, c in enumerate(n))
    q = 1.0 + sum(abs(c) * np.abs(x) ** (k + 1) for k, c in enumerate(d))
    dp = sum(j * c * x ** (j - 1) for j, c in enumerate(n) if j)
    dq = sum((k + 1) * abs(c) * np.abs(x) ** k * np.sign(x) for k, c in enumerate(d))
    d_x = upstream * (dp * q - p * dq) / q**2
    d_n = [np.sum(upstream * x**j / q) for j in range(len(n))]
    d_d = [
        np.sum(upstream * -p / q**2 * np.sign(c) * np.abs(x) ** (k + 1)) for k, c in enumerate(d)
    ]
    return d_x, np.array(d_n), np.array(d_d)


def random_coefficients(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=6).astype("float32"), rng.normal(size=4).astype("float32")


def make_pau(n, d, **kwargs):
    return PAU(
        numerator_initializer=keras.initializers.Constant(n.tolist()),
        denominator_initializer=keras.initializers.Constant(d.tolist()),
        **kwargs,
    )


class TestPAU(LayerTestCase):
    layer_cls = PAU
    input_shape = (4, 5, 6)
    expected_trainable_params = 10
    supports_data_format = False
    min_rank = 1


def test_starts_from_the_leaky_relu_fit():
    layer = PAU()
    layer.build((None, 3))
    np.testing.assert_array_equal(to_numpy(layer.numerator), np.float32(LEAKY_RELU_NUMERATOR))
    np.testing.assert_array_equal(to_numpy(layer.denominator), np.float32(LEAKY_RELU_DENOMINATOR))
    x = np.linspace(-3.0, 3.0, 601, dtype="float32")[None]
    leaky_relu = np.where(x > 0, x, 0.01 * x)
    # The fit's largest error on [-3, 3] is its value at 0, n_0 = 0.0336.
    np.testing.assert_allclose(to_numpy(layer(x)), leaky_relu, atol=0.034)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_reference(seed):
    n, d = random_coefficients(seed)
    x = np.concatenate(
        [np.random.default_rng(seed).normal(0.0, 3.0, 200), [0.0, 1.0, -1.0, 1e3, -1e3]]
    ).astype("float32")
    expected = pau_reference(x.astype("float64"), n.astype("float64"), d.astype("float64"))
    np.testing.assert_allclose(to_numpy(make_pau(n, d)(x[None])[0]), expected, rtol=2e-5)


def test_large_inputs_stay_finite_and_exact_in_float32():
    """x**5 overflows float32 from |x| ~ 5e7; the scaled evaluation does not."""
    x = np.array([1e8, -1e8, 3e15, -3e15, 1e30, -1e30], "float32")
    n, d = np.float32(LEAKY_RELU_NUMERATOR), np.float32(LEAKY_RELU_DENOMINATOR)
    expected = pau_reference(x.astype("float64"), n.astype("float64"), d.astype("float64"))
    outputs = to_numpy(PAU()(x[None])[0])
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs, expected, rtol=1e-5)


# Under XLA (JAX; TensorFlow with `xla`) the coefficients' gradients of a map with spatial
# axes are summed in variadic XLA reduces (`keras_atac.layers.xla_sums`): tested with `XLA_MODES`.


@pytest.mark.parametrize("xla", XLA_MODES)
@pytest.mark.parametrize("shape", [(1, 12), (2, 3, 4, 12)])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_analytic_ones(seed, shape, xla):
    n, d = random_coefficients(seed)
    layer = make_pau(n, d)
    layer.build((None, *shape[1:]))
    # 0 and +-1 (where max(1, |x|) switches) included, as well as large inputs.
    special = [0.0, 1.0, -1.0, 0.5, -0.5, 0.99, 1.01, 2.5, -2.5, 40.0, -40.0, 1e3]
    rng = np.random.default_rng(seed)
    x = np.broadcast_to(np.float32(special), shape).copy()
    flat = x.reshape(-1)  # a view: every seventh entry random, so that positions differ
    flat[::7] = rng.normal(0.0, 3.0, size=flat[::7].shape)
    upstream = rng.normal(size=x.shape).astype("float32")

    def loss(inputs, numerator, denominator):
        outputs, _ = layer.stateless_call([numerator, denominator], [], inputs)
        return ops.sum(ops.multiply(outputs, ops.convert_to_tensor(upstream)))

    d_x, d_n, d_d = gradients(loss, x, n, d, xla=xla)
    want_x, want_n, want_d = pau_reference_gradients(
        x.astype("float64"), upstream, n.astype("float64"), d.astype("float64")
    )
    np.testing.assert_allclose(d_x, want_x, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d_n, want_n, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d_d, want_d, rtol=1e-4, atol=1e-5)


def test_gradients_of_large_inputs_and_zero_coefficients_stay_finite_and_exact():
    """The written-out gradient is scaled as the output is: finite where x**5 overflows
    float32, and 0 for a coefficient d_k = 0 (the mean of the one-sided derivatives of |d_k|)."""
    n, d = random_coefficients(3)
    d[1] = 0.0
    layer = make_pau(n, d)
    layer.build((None, 8))
    x = np.array([[1e8, -1e8, 3e15, -3e15, 1e30, -1e30, 0.0, 7.0]], "float32")
    upstream = np.random.default_rng(3).normal(size=x.shape).astype("float32")
    # The coefficients' gradients at inputs of 1e30 are of size 1e30 each, and their sum may
    # overflow float32: they are checked with those inputs' upstream gradient set to 0.
    moderate = upstream * (np.abs(x) < 1e20)

    def gradients_for(cotangent):
        def loss(inputs, numerator, denominator):
            outputs, _ = layer.stateless_call([numerator, denominator], [], inputs)
            return ops.sum(outputs * ops.convert_to_tensor(cotangent))

        computed = gradients(loss, x, n, d)
        expected = pau_reference_gradients(
            x.astype("float64"), cotangent, n.astype("float64"), d.astype("float64")
        )
        return computed, expected

    (d_x, _, _), (want_x, _, _) = gradients_for(upstream)
    assert np.all(np.isfinite(d_x))
    np.testing.assert_allclose(d_x, want_x, rtol=1e-4, atol=1e-6)
    (_, d_n, d_d), (_, want_n, want_d) = gradients_for(moderate)
    assert d_d[1] == 0.0
    np.testing.assert_allclose(d_n, want_n, rtol=1e-4)
    np.testing.assert_allclose(d_d, want_d, rtol=1e-4)


def test_bfloat16_policy_computes_in_float32():
    """P's terms cancel for negative inputs (-0.05 from terms of size 2 at x = -1): bfloat16
    arithmetic would lose most digits; float32 arithmetic leaves only the output's rounding."""
    x = np.linspace(-3.0, 0.0, 61, dtype="float32")[None]
    outputs = to_numpy(ops.cast(PAU(dtype="mixed_bfloat16")(x), "float32"))
    rounded = to_numpy(ops.cast(ops.cast(x, "bfloat16"), "float32")).astype("float64")
    n, d = np.float32(LEAKY_RELU_NUMERATOR), np.float32(LEAKY_RELU_DENOMINATOR)
    expected = pau_reference(rounded, n.astype("float64"), d.astype("float64"))
    np.testing.assert_allclose(outputs, expected, rtol=2**-8, atol=1e-6)


@pytest.mark.parametrize("xla", XLA_MODES)
def test_a_non_finite_upstream_gradient_stays_where_it_is(xla):
    """Under XLA the backward pass recomputes from `x + 0 * upstream`
    (`recomputation.tied_to_upstream`): an infinite upstream entry makes its own input gradient
    non-finite, as any chain rule would, and leaves every other entry exact."""
    n, d = random_coefficients(4)
    layer = make_pau(n, d)
    layer.build((None, 2, 3, 4))
    x = np.random.default_rng(4).normal(0.0, 3.0, size=(2, 2, 3, 4)).astype("float32")
    upstream = np.random.default_rng(5).normal(size=x.shape).astype("float32")
    upstream[1, 0, 2, 3] = np.inf

    def loss(inputs):
        outputs, _ = layer.stateless_call(layer.trainable_variables, [], inputs)
        # Multiplied in the loss, so that the upstream gradient itself is infinite.
        return ops.sum(outputs * ops.convert_to_tensor(upstream))

    (d_x,) = gradients(loss, x, xla=xla)
    want_x, _, _ = pau_reference_gradients(
        x.astype("float64"), upstream, n.astype("float64"), d.astype("float64")
    )
    finite = np.isfinite(upstream)
    assert not np.isfinite(d_x[1, 0, 2, 3])
    np.testing.assert_allclose(d_x[finite], want_x[finite], rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="XLA's buffer assignment of a compiled gradient is reported on JAX only; TensorFlow's "
    "is measured by `benchmarks.train_step`, PyTorch runs the gradient function when called",
)
def test_a_training_step_keeps_only_the_inputs_of_the_units():
    """The written-out gradient recomputes the unit's terms from its input in the backward
    pass, so a compiled gradient through convolutions and PAUs needs no more memory than the
    same network with ReLU. Before the recomputation was tied to the upstream gradient, XLA
    kept the terms of every unit from the forward to the backward pass (twice ReLU's here)."""
    import jax

    n, d = (np.float32(LEAKY_RELU_NUMERATOR), np.float32(LEAKY_RELU_DENOMINATOR))
    layer = make_pau(n, d)
    layer.build((None, 16, 16, 16))
    rng = np.random.default_rng(6)
    kernels = [rng.normal(0.0, 0.1, size=(3, 3, 16, 16)).astype("float32") for _ in range(5)]
    x = rng.normal(size=(16, 16, 16, 16)).astype("float32")

    def temporary_bytes(activation):
        def loss(kernels, x):
            for kernel in kernels:
                x = activation(ops.conv(x, kernel, padding="same"))
            return ops.sum(x)

        compiled = jax.jit(jax.grad(loss)).lower(kernels, x).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    def pau(x):
        return layer.stateless_call(layer.trainable_variables, [], x)[0]

    assert temporary_bytes(pau) <= temporary_bytes(ops.relu)
