"""AReLU: attention-based rectified linear unit (Chen, Li and Xu, 2020)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks
from keras_atac.layers.registry import register

# The reference clamps the learnable negative slope into this interval in the forward pass.
ALPHA_MIN = 0.01
ALPHA_MAX = 0.99


@register("arelu")
@keras_atac_export("keras_atac.layers.AReLU")
class AReLU(keras.layers.Layer):
    """Attention-based ReLU: ReLU with two learnable, attention-derived slopes.

    Two learnable scalars per layer (shape `(1,)`, not per channel) rescale the two halves of
    the input:

        alpha_c  = clip(alpha, 0.01, 0.99)
        beta_s   = 1 + sigmoid(beta)
        AReLU(x) = beta_s * relu(x) - alpha_c * relu(-x)

    The clamp is part of the forward pass, not a weight constraint: the raw `alpha` may leave
    [0.01, 0.99], and then its gradient is exactly 0. At the bounds themselves the gradient is 1,
    as in the reference implementation (`torch.clamp`); the clamp is written so that every
    backend agrees (`keras.ops.clip` passes 0.5 at the bounds on JAX). With the default
    initial values the slopes are 1 + sigmoid(2) = 1.8807970 for x > 0 and 0.9 for x < 0.

    Args:
        alpha_initializer: initializer of the raw negative-slope parameter `alpha`; defaults to
            `Constant(0.9)`. It must produce a value of shape `(1,)`.
        beta_initializer: initializer of the raw positive-slope parameter `beta`; defaults to
            `Constant(2.0)`. It must produce a value of shape `(1,)`.
        alpha_regularizer, beta_regularizer: optional regularizers of `alpha` and `beta`.
        alpha_constraint, beta_constraint: optional constraints of `alpha` and `beta`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((28, 28, 1)),
    ...     keras.layers.Conv2D(10, 5),
    ...     keras_atac.layers.AReLU(),
    ... ])

    Reference:
        Dengsheng Chen, Jun Li, Kai Xu. "AReLU: Attention-based Rectified Linear Unit".
        arXiv:2006.13858, 2020. https://arxiv.org/abs/2006.13858
    """

    def __init__(
        self,
        alpha_initializer=None,
        beta_initializer=None,
        alpha_regularizer=None,
        beta_regularizer=None,
        alpha_constraint=None,
        beta_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.alpha_initializer = keras.initializers.get(
            alpha_initializer if alpha_initializer is not None else keras.initializers.Constant(0.9)
        )
        self.beta_initializer = keras.initializers.get(
            beta_initializer if beta_initializer is not None else keras.initializers.Constant(2.0)
        )
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)
        self.beta_constraint = keras.constraints.get(beta_constraint)

    def build(self, input_shape):
        # Checked before any weight exists: a Constant([a, b]) would silently broadcast to (2,).
        for name, initializer in (
            ("alpha_initializer", self.alpha_initializer),
            ("beta_initializer", self.beta_initializer),
        ):
            shape = tuple(ops.shape(initializer(shape=(1,), dtype=self.variable_dtype)))
            if shape != (1,):
                raise ValueError(
                    f"`{name}` of AReLU layer '{self.name}' must produce a value of shape (1,): "
                    f"alpha and beta are per-layer scalars. Received: {name}={initializer!r} "
                    f"producing shape {shape}"
                )
        self.alpha = self.add_weight(
            name="alpha",
            shape=(1,),
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )
        self.beta = self.add_weight(
            name="beta",
            shape=(1,),
            initializer=self.beta_initializer,
            regularizer=self.beta_regularizer,
            constraint=self.beta_constraint,
        )

    def call(self, inputs):
        inputs = input_checks.floating_inputs(self, inputs)
        # Variables are converted first: JAX rejects some ops on raw variables under jit.
        alpha = ops.cast(ops.convert_to_tensor(self.alpha), inputs.dtype)
        beta = ops.cast(ops.convert_to_tensor(self.beta), inputs.dtype)
        # Inside [ALPHA_MIN, ALPHA_MAX], bounds included, alpha passes with gradient 1; outside,
        # the clipped value carries no gradient.
        in_range = ops.logical_and(alpha >= ALPHA_MIN, alpha <= ALPHA_MAX)
        alpha = ops.where(in_range, alpha, ops.stop_gradient(ops.clip(alpha, ALPHA_MIN, ALPHA_MAX)))
        positive_slope = 1.0 + ops.sigmoid(beta)
        return positive_slope * ops.relu(inputs) - alpha * ops.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "alpha_regularizer": keras.regularizers.serialize(self.alpha_regularizer),
                "beta_regularizer": keras.regularizers.serialize(self.beta_regularizer),
                "alpha_constraint": keras.constraints.serialize(self.alpha_constraint),
                "beta_constraint": keras.constraints.serialize(self.beta_constraint),
            }
        )
        return config
