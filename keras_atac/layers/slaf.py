"""SLAF: self-learnable activation functions (Goyal, Goyal and Lall, 2019)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.utils import checks


@register("slaf")
@keras_atac_export("keras_atac.layers.SLAF")
class SLAF(keras.layers.Layer):
    """Self-learnable activation function: a polynomial with learnable coefficients.

        SLAF(x) = sum_{i=0..k-1} c_i * x**i

    `k` is `num_terms`, the number of coefficients (the degree is `k - 1`); the coefficients
    are per-layer scalars, shape `(k,)`, all initialised to 1 as in the AReLU comparison. With
    the default `k = 2` the unit is affine at initialisation, `1 + x`, and stays affine: only a
    larger `k` makes it non-linear.

    The polynomial is evaluated in float32 under float16 and bfloat16 policies (cast back to
    the compute dtype), as Keras's `BatchNormalization` does. Its value grows like `|x|**(k-1)`
    and can still exceed float16's largest value, 65504, for large inputs when `k > 2`.

    Args:
        num_terms: the number of coefficients `k`, a positive integer.
        coefficient_initializer: initializer of the coefficients; defaults to `Ones()`.
        coefficient_regularizer: optional regularizer of the coefficients.
        coefficient_constraint: optional constraint of the coefficients.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> layer = keras_atac.layers.SLAF(num_terms=3)   # 1 + x + x**2 at initialisation
    >>> keras.ops.convert_to_numpy(layer(np.array([[-1.0, 0.0, 2.0]])))
    array([[1., 1., 7.]], dtype=float32)

    Reference:
        Mohit Goyal, Rajan Goyal, Brejesh Lall. "Learning Activation Functions: A new paradigm
        for understanding Neural Networks". arXiv:1906.09529, 2019.
        https://arxiv.org/abs/1906.09529
    """

    def __init__(
        self,
        num_terms=2,
        coefficient_initializer="ones",
        coefficient_regularizer=None,
        coefficient_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_terms = checks.check_positive_number("num_terms", num_terms, integer=True)
        self.coefficient_initializer = keras.initializers.get(coefficient_initializer)
        self.coefficient_regularizer = keras.regularizers.get(coefficient_regularizer)
        self.coefficient_constraint = keras.constraints.get(coefficient_constraint)

    def build(self, input_shape):
        self._polynomial_dtype = layer_utils.sensitive_dtype_policy(self).compute_dtype
        self.coefficients = self.add_weight(
            name="coefficients",
            shape=(self.num_terms,),
            initializer=self.coefficient_initializer,
            regularizer=self.coefficient_regularizer,
            constraint=self.coefficient_constraint,
            # Not rounded to a 16-bit compute dtype: the unit is evaluated in float32 then.
            autocast=False,
        )

    def call(self, inputs):
        inputs = input_checks.floating_inputs(self, inputs)
        x = ops.cast(inputs, self._polynomial_dtype)
        coefficients = layer_utils.weight_value(self.coefficients, self._polynomial_dtype)
        # Horner's scheme: c_0 + x * (c_1 + x * (... + x * c_{k-1})).
        outputs = coefficients[-1] * ops.ones_like(x)
        for i in range(self.num_terms - 2, -1, -1):
            outputs = outputs * x + coefficients[i]
        return ops.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_terms": self.num_terms,
                "coefficient_initializer": keras.initializers.serialize(
                    self.coefficient_initializer
                ),
                "coefficient_regularizer": keras.regularizers.serialize(
                    self.coefficient_regularizer
                ),
                "coefficient_constraint": keras.constraints.serialize(self.coefficient_constraint),
            }
        )
        return config
