"""PReLU with one slope per layer or per channel (He, Zhang, Ren and Sun, ICCV 2015)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.utils import checks


@register("prelu")
@keras_atac_export("keras_atac.layers.PReLU")
class PReLU(keras.layers.Layer):
    """Parametric ReLU with a learnable negative slope per layer or per channel.

        PReLU(x) = relu(x) - alpha * relu(-x)

    `keras.layers.PReLU` learns one slope per element of the input (per position and channel)
    unless `shared_axes` is set by hand for the input's rank. This layer has the two variants of
    the PReLU paper instead, for inputs of any rank: one slope per channel (`shared=False`), or
    one slope for the whole layer (`shared=True`, the default), as `torch.nn.PReLU()` in the
    AReLU comparison.

    Args:
        shared: whether one slope (shape `(1,)`) is shared by all channels; otherwise there is
            one slope per channel (shape `(C,)`).
        alpha_initializer: initializer of the slope; defaults to `Constant(0.25)`, the paper's
            and PyTorch's initial value (Keras's own `PReLU` starts at 0).
        alpha_regularizer: optional regularizer of the slope.
        alpha_constraint: optional constraint of the slope.
        data_format: `"channels_last"` or `"channels_first"`: where the channel axis is when
            `shared=False`; defaults to `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> layer = keras_atac.layers.PReLU(shared=False)
    >>> layer(np.ones((2, 8, 8, 16))).shape
    (2, 8, 8, 16)

    Reference:
        Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun. "Delving Deep into Rectifiers:
        Surpassing Human-Level Performance on ImageNet Classification". ICCV 2015.
        https://arxiv.org/abs/1502.01852
    """

    def __init__(
        self,
        shared=True,
        alpha_initializer=None,
        alpha_regularizer=None,
        alpha_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.shared = checks.check_bool("shared", shared)
        self.alpha_initializer = keras.initializers.get(
            alpha_initializer
            if alpha_initializer is not None
            else keras.initializers.Constant(0.25)
        )
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        if self.shared:
            shape = (1,)
        else:
            shape = (input_checks.check_channels(self, input_shape, self.data_format),)
        self.alpha = self.add_weight(
            name="alpha",
            shape=shape,
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )

    def call(self, inputs):
        inputs = input_checks.floating_inputs(self, inputs)
        alpha = layer_utils.weight_value(self.alpha, inputs.dtype)
        if not self.shared:
            alpha = layer_utils.to_channel_map(alpha, len(inputs.shape), self.data_format)
        return ops.relu(inputs) - alpha * ops.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "shared": self.shared,
                "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": keras.regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": keras.constraints.serialize(self.alpha_constraint),
                "data_format": self.data_format,
            }
        )
        return config
