"""Mixture: a learnable affine combination of the identity and ReLU (Manessi and Rozza, 2018)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks, layer_utils
from keras_atac.layers.registry import register


@register("mixture")
@keras_atac_export("keras_atac.layers.Mixture")
class Mixture(keras.layers.Layer):
    """A learnable mixture of the identity and ReLU, with one scalar per layer.

        Mixture(x) = p * x + (1 - p) * relu(x)

    `p` has shape `(1,)` and starts at 0 (pure ReLU), as in the AReLU comparison. The
    combination is affine, not convex: `p` is not constrained to [0, 1]. Written as
    `relu(x) - p * relu(-x)`, the unit equals a PReLU with one shared slope `p`.

    Args:
        p_initializer: initializer of `p`; defaults to `Zeros()`.
        p_regularizer: optional regularizer of `p`.
        p_constraint: optional constraint of `p`, e.g. to keep the combination convex.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((28, 28, 1)),
    ...     keras.layers.Conv2D(10, 5),
    ...     keras_atac.layers.Mixture(),
    ... ])

    Reference:
        Franco Manessi, Alessandro Rozza. "Learning Combinations of Activation Functions".
        ICPR 2018. https://arxiv.org/abs/1801.09403
    """

    def __init__(self, p_initializer="zeros", p_regularizer=None, p_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.p_initializer = keras.initializers.get(p_initializer)
        self.p_regularizer = keras.regularizers.get(p_regularizer)
        self.p_constraint = keras.constraints.get(p_constraint)

    def build(self, input_shape):
        self.p = self.add_weight(
            name="p",
            shape=(1,),
            initializer=self.p_initializer,
            regularizer=self.p_regularizer,
            constraint=self.p_constraint,
        )

    def call(self, inputs):
        inputs = input_checks.floating_inputs(self, inputs)
        p = layer_utils.weight_value(self.p, inputs.dtype)
        return p * inputs + (1.0 - p) * ops.relu(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "p_initializer": keras.initializers.serialize(self.p_initializer),
                "p_regularizer": keras.regularizers.serialize(self.p_regularizer),
                "p_constraint": keras.constraints.serialize(self.p_constraint),
            }
        )
        return config
