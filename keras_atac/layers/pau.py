"""PAU: Padé activation units (Molina, Schramowski and Kersting, ICLR 2020)."""

import itertools

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks, layer_utils, recomputation, xla_sums
from keras_atac.layers.registry import register

# The "safe" PAU of degrees (5, 4) fitted to leaky ReLU (slope 0.01): the initial coefficients of
# the reference implementation ("pade_optimized_leakyrelu").
LEAKY_RELU_NUMERATOR = (
    3.35583603e-02,
    5.05000375e-01,
    1.65343934e00,
    2.01001052e00,
    9.31901999e-01,
    1.52424124e-01,
)
LEAKY_RELU_DENOMINATOR = (3.30847488e-06, 3.98021568e00, 5.12471206e-07, 3.01830109e-01)
NUMERATOR_DEGREE = len(LEAKY_RELU_NUMERATOR) - 1
DENOMINATOR_DEGREE = len(LEAKY_RELU_DENOMINATOR)


@register("pau")
@keras_atac_export("keras_atac.layers.PAU")
class PAU(keras.layers.Layer):
    """Padé activation unit: a learnable rational function with a pole-free denominator.

        PAU(x) = P(x) / Q(x)
        P(x)   = sum_{j=0..5} n_j * x**j
        Q(x)   = 1 + sum_{k=1..4} |d_{k-1}| * |x|**k

    This is the "safe" PAU of degrees (5, 4): `Q(x) >= 1`, so the unit has no poles. The ten
    coefficients are per-layer scalars (`numerator`, shape `(6,)`, and `denominator`, shape
    `(4,)`), initialised to the reference's fit of leaky ReLU with slope 0.01.

    The reference implementation is a CUDA kernel; this one uses `keras.ops` only and runs on
    every backend and device. Powers of large inputs are kept finite by evaluating the ratio
    with numerator and denominator divided by `s**4`, where `s = max(1, |x|)`:

        P(x) / s**4 = sum_{j<=4} n_j * u**j * w**(4-j) + n_5 * u**5 * s
        Q(x) / s**4 = w**4 + sum_{k=1..4} |d_{k-1}| * |u|**k * w**(4-k)

    with `u = x / s` in [-1, 1] and `w = 1 / s` in (0, 1]. For `|x| <= 1` this is the formula
    above term for term; for larger `|x|` every term is a coefficient times a number in [-1, 1],
    except `n_5 * u**5 * s`, of the size of the output. So float32 holds inputs up to its own
    range, where the direct formula overflows from `|x| ~ 5e7` on (`x**5` exceeds float32). The
    gradient is unchanged: the ratio does not depend on `s`. It is written out in the same
    scaled terms and recomputed from `x` in the backward pass (`_safe_rational`), so on JAX the
    unit has reverse-mode derivatives only (`jax.grad`, which Keras's training uses; `jax.jvp`
    raises). `Q` has a kink at 0 when `d_0 != 0`; there the derivative is the mean of the
    one-sided ones on every backend.

    Under float16 and bfloat16 policies the unit is evaluated in float32 and cast back, as
    Keras's `BatchNormalization` does, because the terms of `P` cancel for negative inputs (at
    `x = -1` they sum to -0.05 from terms of size 2).

    Args:
        numerator_initializer: initializer of `n_0..n_5`; defaults to the leaky-ReLU fit.
        denominator_initializer: initializer of `d_0..d_3`; defaults to the leaky-ReLU fit.
        numerator_regularizer, denominator_regularizer: optional regularizers.
        numerator_constraint, denominator_constraint: optional constraints.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> layer = keras_atac.layers.PAU()   # close to leaky ReLU at initialisation
    >>> keras.ops.convert_to_numpy(layer(np.array([[-1.0, 1.0]]))).round(2)
    array([[-0.01,  1.  ]], dtype=float32)

    Reference:
        Alejandro Molina, Patrick Schramowski, Kristian Kersting. "Padé Activation Units:
        End-to-end Learning of Flexible Activation Functions in Deep Networks". ICLR 2020.
        https://arxiv.org/abs/1907.06732
    """

    def __init__(
        self,
        numerator_initializer=None,
        denominator_initializer=None,
        numerator_regularizer=None,
        denominator_regularizer=None,
        numerator_constraint=None,
        denominator_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.numerator_initializer = keras.initializers.get(
            numerator_initializer
            if numerator_initializer is not None
            else keras.initializers.Constant(list(LEAKY_RELU_NUMERATOR))
        )
        self.denominator_initializer = keras.initializers.get(
            denominator_initializer
            if denominator_initializer is not None
            else keras.initializers.Constant(list(LEAKY_RELU_DENOMINATOR))
        )
        self.numerator_regularizer = keras.regularizers.get(numerator_regularizer)
        self.denominator_regularizer = keras.regularizers.get(denominator_regularizer)
        self.numerator_constraint = keras.constraints.get(numerator_constraint)
        self.denominator_constraint = keras.constraints.get(denominator_constraint)

    def build(self, input_shape):
        self._rational_dtype = layer_utils.sensitive_dtype_policy(self).compute_dtype
        self.numerator = self.add_weight(
            name="numerator",
            shape=(NUMERATOR_DEGREE + 1,),
            initializer=self.numerator_initializer,
            regularizer=self.numerator_regularizer,
            constraint=self.numerator_constraint,
            # Not rounded to a 16-bit compute dtype: the unit is evaluated in float32 then.
            autocast=False,
        )
        self.denominator = self.add_weight(
            name="denominator",
            shape=(DENOMINATOR_DEGREE,),
            initializer=self.denominator_initializer,
            regularizer=self.denominator_regularizer,
            constraint=self.denominator_constraint,
            # Not rounded to a 16-bit compute dtype: the unit is evaluated in float32 then.
            autocast=False,
        )

    def call(self, inputs):
        inputs = input_checks.floating_inputs(self, inputs)
        dtype = self._rational_dtype
        x = ops.cast(inputs, dtype)
        n = layer_utils.weight_value(self.numerator, dtype)
        d = layer_utils.weight_value(self.denominator, dtype)
        return ops.cast(_safe_rational(x, n, d), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "numerator_initializer": keras.initializers.serialize(self.numerator_initializer),
                "denominator_initializer": keras.initializers.serialize(
                    self.denominator_initializer
                ),
                "numerator_regularizer": keras.regularizers.serialize(self.numerator_regularizer),
                "denominator_regularizer": keras.regularizers.serialize(
                    self.denominator_regularizer
                ),
                "numerator_constraint": keras.constraints.serialize(self.numerator_constraint),
                "denominator_constraint": keras.constraints.serialize(self.denominator_constraint),
            }
        )
        return config


class _ScaledTerms:
    """The terms of `P / s**4` and `Q / s**4` at `x` (see `PAU`): `u**j`, `|u|**k`, `w**m`."""

    def __init__(self, x):
        self.scale = ops.maximum(ops.abs(x), 1.0)
        self.w = 1.0 / self.scale
        u = x * self.w
        self.u_powers, self.magnitude_powers, self.w_powers = [1.0], [1.0], [1.0]
        for _ in range(NUMERATOR_DEGREE):
            self.u_powers.append(self.u_powers[-1] * u)
        # `abs`, not `u * sign(u)`: no derivative of it is taken (`_safe_rational` writes the
        # gradient out, with sign(0) = 0 at the kinks), and under XLA's CPU compiler `sign`
        # costs compares and selects per element, in every kernel that recomputes it.
        magnitude = ops.abs(u)
        for _ in range(DENOMINATOR_DEGREE):
            self.magnitude_powers.append(self.magnitude_powers[-1] * magnitude)
            self.w_powers.append(self.w_powers[-1] * self.w)

    def numerator_terms(self):
        """`x**j / s**4` for j = 0..5: `u**j * w**(4-j)`, and `u**5 * s` for j = 5.

        Made when asked for, not kept: on PyTorch, where every term is a map in memory, the
        training step's peak memory stays lower than with them kept."""
        terms = [self.u_powers[j] * self.w_powers[DENOMINATOR_DEGREE - j] for j in range(5)]
        return terms + [self.u_powers[5] * self.scale]

    def denominator_terms(self):
        """`|x|**k / s**4` for k = 1..4: `|u|**k * w**(4-k)`."""
        return [
            self.magnitude_powers[k] * self.w_powers[DENOMINATOR_DEGREE - k]
            for k in range(1, DENOMINATOR_DEGREE + 1)
        ]

    def ratio_parts(self, n, d_magnitude):
        """`(P / s**4, Q / s**4)`."""
        p = _weighted_sum(n, self.numerator_terms())
        q = self.w_powers[DENOMINATOR_DEGREE] + _weighted_sum(d_magnitude, self.denominator_terms())
        return p, q


def _weighted_sum(coefficients, terms):
    total = coefficients[0] * terms[0]
    for index in range(1, len(terms)):
        total = total + coefficients[index] * terms[index]
    return total


@ops.custom_gradient
def _safe_rational(x, n, d):
    """`P(x) / Q(x)` in the scaled form, with its gradient written out.

    The gradient is computed from `x` alone in the backward pass, so a training step keeps
    only `x`: differentiated automatically, every power and product of the evaluation was kept
    (on PyTorch the `cifar_resnet(20)` step's peak memory was 7.3x ReLU's, and is 1.1x with
    this; see `docs/benchmarks.md`). Under XLA the backward pass recomputes from `x` tied to
    the upstream gradient (`recomputation.tied_to_upstream`): otherwise XLA computes the terms
    in the forward pass and keeps them. With `q = Q / s**4` and `y = P / Q`:

        dy/dn_j = (x**j / s**4) / q
        dy/dd_k = -y * sign(d_k) * (|x|**(k+1) / s**4) / q
        dy/dx   = (P'(x) - y * Q'(x)) / s**4 / q,
                  P'(x) / s**4 = sum_{j=1..5} j * n_j * u**(j-1) * w**(5-j)
                  Q'(x) / s**4 = sign(x) * sum_{k=1..4} k * |d_{k-1}| * |u|**(k-1) * w**(5-k)

    Every term is again a coefficient times a number in [-1, 1], so the gradient is as finite
    as the output. `sign(0) = 0` makes the derivative at the kinks of `|x|` and `|d|` the mean
    of the one-sided ones.
    """
    terms = _ScaledTerms(x)
    p, q = terms.ratio_parts(n, ops.abs(d))

    def gradient(*args, upstream=None):
        # Keras passes the upstream gradient positionally (JAX, TensorFlow) or by keyword,
        # after the inputs (PyTorch).
        if upstream is None:
            (upstream,) = args
        x_again = recomputation.tied_to_upstream(x, upstream)
        terms = _ScaledTerms(x_again)
        d_magnitude = ops.abs(d)
        p, q = terms.ratio_parts(n, d_magnitude)
        y = p / q
        upstream_over_q = upstream / q
        # One product at a time outside XLA (a generator): PyTorch keeps only the one it sums.
        products = itertools.chain(
            (upstream_over_q * term for term in terms.numerator_terms()),
            (upstream_over_q * y * term for term in terms.denominator_terms()),
        )
        totals = xla_sums.totals(products)
        numerator_gradient = ops.stack(totals[: NUMERATOR_DEGREE + 1])
        denominator_gradient = -ops.sign(d) * ops.stack(totals[NUMERATOR_DEGREE + 1 :])
        u, w = terms.u_powers, terms.w_powers
        p_slope = _weighted_sum(
            [j * n[j] for j in range(1, NUMERATOR_DEGREE + 1)],
            [u[j - 1] * w[NUMERATOR_DEGREE - j] for j in range(1, NUMERATOR_DEGREE + 1)],
        )
        q_slope = _weighted_sum(
            [k * d_magnitude[k - 1] for k in range(1, DENOMINATOR_DEGREE + 1)],
            [
                terms.magnitude_powers[k - 1] * w[NUMERATOR_DEGREE - k]
                for k in range(1, DENOMINATOR_DEGREE + 1)
            ],
        )
        input_gradient = upstream_over_q * (p_slope - y * ops.sign(x_again) * q_slope)
        return input_gradient, numerator_gradient, denominator_gradient

    return p / q, gradient
