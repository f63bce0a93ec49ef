"""Maxout: the maximum over groups of channels (Goodfellow et al., ICML 2013)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks
from keras_atac.layers.registry import register
from keras_atac.utils import checks


@register("maxout")
@keras_atac_export("keras_atac.layers.Maxout")
class Maxout(keras.layers.Layer):
    """Maxout: the maximum over each group of `pool_size` consecutive channels.

        Maxout(x)[..., g] = max_{j < pool_size} x[..., g * pool_size + j]

    The output has `C / pool_size` channels (`C` must be divisible by `pool_size`) and no
    weights: a maxout network learns its piecewise linear activation through the preceding
    layer, which produces `pool_size` candidate features per output channel. With
    `pool_size=1` the layer is the identity; that is the default of the AReLU comparison's
    code, so its "Maxout" runs used no non-linearity. The default here, 2, halves the channels:
    widen the preceding layer to keep the width of the network.

    Args:
        pool_size: the number of channels per group, a positive integer that divides the
            number of input channels.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> layer = keras_atac.layers.Maxout(pool_size=2)
    >>> keras.ops.convert_to_numpy(layer(np.array([[1.0, -3.0, 0.5, 2.0]])))
    array([[1., 2.]], dtype=float32)

    Reference:
        Ian J. Goodfellow, David Warde-Farley, Mehdi Mirza, Aaron Courville, Yoshua Bengio.
        "Maxout Networks". ICML 2013. https://arxiv.org/abs/1302.4389
    """

    def __init__(self, pool_size=2, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = checks.check_positive_number("pool_size", pool_size, integer=True)
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        channels = input_checks.check_channels(self, input_shape, self.data_format)
        if channels % self.pool_size:
            raise ValueError(
                f"The {channels} input channels of Maxout layer '{self.name}' cannot be split "
                f"into groups of `pool_size`. Received: pool_size={self.pool_size}"
            )
        self._groups = channels // self.pool_size

    def call(self, inputs):
        inputs = input_checks.floating_inputs(self, inputs)
        shape = ops.shape(inputs)
        if self.data_format == "channels_last":
            grouped = ops.reshape(inputs, (-1, *shape[1:-1], self._groups, self.pool_size))
            return ops.max(grouped, axis=-1)
        grouped = ops.reshape(inputs, (-1, self._groups, self.pool_size, *shape[2:]))
        return ops.max(grouped, axis=2)

    def compute_output_shape(self, input_shape):
        output_shape = list(input_shape)
        axis = checks.channel_axis(self.data_format)
        if output_shape[axis] is not None:
            output_shape[axis] //= self.pool_size
        return tuple(output_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "data_format": self.data_format})
        return config
