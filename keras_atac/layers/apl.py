"""APL: adaptive piecewise linear units (Agostinelli, Hoffman, Sadowski and Baldi, 2015)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.utils import checks


@register("apl")
@keras_atac_export("keras_atac.layers.APL")
class APL(keras.layers.Layer):
    """Adaptive piecewise linear unit: ReLU plus a sum of learnable hinges.

        APL(x) = relu(x) + sum_{s=1..S} a_s * relu(-x + b_s)

    Each hinge `s` adds a linear piece of slope `-a_s` left of `x = b_s`, so the unit learns a
    piecewise linear function with `S` learnable bends besides the one at 0. `S` is
    `num_hinges`.

    With `shared=True` (the default) `a` and `b` are per-layer scalars, shape `(S,)`: the
    setting of the AReLU comparison (`S = 1`, `a = 0.2`, `b = 0.5` at init). With
    `shared=False` every channel has its own hinges, shape `(S, C)`, as in the APL paper, which
    learns them per hidden unit (here per channel, shared over positions, so a convolutional
    feature map has one function per channel).

    Hinges that start from the same values receive the same gradients and stay identical: with
    `num_hinges > 1`, pass initializers that give them different values, e.g.
    `hinge_initializer=keras.initializers.RandomUniform(-1.0, 1.0)`.

    Args:
        num_hinges: the number of hinges `S`, a positive integer.
        shared: whether the hinges are per-layer scalars (`True`) or per channel (`False`).
        slope_initializer: initializer of the slopes `a`; defaults to `Constant(0.2)`.
        hinge_initializer: initializer of the hinge locations `b`; defaults to
            `Constant(0.5)`.
        slope_regularizer, hinge_regularizer: optional regularizers of `a` and `b`.
        slope_constraint, hinge_constraint: optional constraints of `a` and `b`.
        data_format: `"channels_last"` or `"channels_first"`: where the channel axis is when
            `shared=False`; defaults to `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> layer = keras_atac.layers.APL(num_hinges=1)
    >>> outputs = layer(np.array([[-1.0, 0.0, 2.0]]))  # relu(x) + 0.2 * relu(0.5 - x)
    >>> keras.ops.convert_to_numpy(outputs)
    array([[0.3, 0.1, 2. ]], dtype=float32)

    Reference:
        Forest Agostinelli, Matthew Hoffman, Peter Sadowski, Pierre Baldi. "Learning
        Activation Functions to Improve Deep Neural Networks". ICLR 2015 workshop.
        https://arxiv.org/abs/1412.6830
    """

    def __init__(
        self,
        num_hinges=1,
        shared=True,
        slope_initializer=None,
        hinge_initializer=None,
        slope_regularizer=None,
        hinge_regularizer=None,
        slope_constraint=None,
        hinge_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_hinges = checks.check_positive_number("num_hinges", num_hinges, integer=True)
        self.shared = checks.check_bool("shared", shared)
        self.slope_initializer = keras.initializers.get(
            slope_initializer if slope_initializer is not None else keras.initializers.Constant(0.2)
        )
        self.hinge_initializer = keras.initializers.get(
            hinge_initializer if hinge_initializer is not None else keras.initializers.Constant(0.5)
        )
        self.slope_regularizer = keras.regularizers.get(slope_regularizer)
        self.hinge_regularizer = keras.regularizers.get(hinge_regularizer)
        self.slope_constraint = keras.constraints.get(slope_constraint)
        self.hinge_constraint = keras.constraints.get(hinge_constraint)
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        shape = (self.num_hinges,)
        if not self.shared:
            shape += (input_checks.check_channels(self, input_shape, self.data_format),)
        self.slopes = self.add_weight(
            name="slopes",
            shape=shape,
            initializer=self.slope_initializer,
            regularizer=self.slope_regularizer,
            constraint=self.slope_constraint,
        )
        self.hinges = self.add_weight(
            name="hinges",
            shape=shape,
            initializer=self.hinge_initializer,
            regularizer=self.hinge_regularizer,
            constraint=self.hinge_constraint,
        )

    def call(self, inputs):
        inputs = input_checks.floating_inputs(self, inputs)
        slopes = layer_utils.weight_value(self.slopes, inputs.dtype)
        hinges = layer_utils.weight_value(self.hinges, inputs.dtype)
        rank = len(inputs.shape)
        outputs = ops.relu(inputs)
        # One hinge at a time: S is small, and this keeps memory at the size of the input.
        for s in range(self.num_hinges):
            slope, hinge = slopes[s], hinges[s]
            if not self.shared:
                slope = layer_utils.to_channel_map(slope, rank, self.data_format)
                hinge = layer_utils.to_channel_map(hinge, rank, self.data_format)
            outputs = outputs + slope * ops.relu(hinge - inputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_hinges": self.num_hinges,
                "shared": self.shared,
                "slope_initializer": keras.initializers.serialize(self.slope_initializer),
                "hinge_initializer": keras.initializers.serialize(self.hinge_initializer),
                "slope_regularizer": keras.regularizers.serialize(self.slope_regularizer),
                "hinge_regularizer": keras.regularizers.serialize(self.hinge_regularizer),
                "slope_constraint": keras.constraints.serialize(self.slope_constraint),
                "hinge_constraint": keras.constraints.serialize(self.hinge_constraint),
                "data_format": self.data_format,
            }
        )
        return config
