"""ECA: efficient channel attention (Wang, Wu, Zhu, Li, Zuo and Hu, CVPR 2020)."""

import math

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.utils import checks

# The constants of the paper's mapping from channels to kernel size.
GAMMA = 2
B = 1


def adaptive_kernel_size(channels):
    """ECA's kernel size for `channels`: `t = int(|(log2(C) + b) / gamma|)`, `t` or `t + 1`
    whichever is odd, with gamma = 2 and b = 1: 1 for C < 8, 3 for C = 8 to 127, 5 for
    C = 128 to 2047, 7 for C = 2048 to 32767.

    This is the nearest odd integer to `(log2(C) + 1) / 2`, ties broken upwards.
    """
    t = int(abs((math.log2(channels) + B) / GAMMA))
    return t if t % 2 else t + 1


@register("eca", kind="attention")
@keras_atac_export("keras_atac.layers.ECA")
class ECA(gating.GatingLayer):
    """Efficient channel attention: a channel gate from a 1-D convolution across channels.

        s = GAP(x)                              (N, C)
        ECA(x) = x * gate(Conv1D_k(s))          one value per channel

    The 1-D convolution slides a `k`-wide window along the channel axis of the pooled vector
    (zero-padded, no bias), so each channel's gate depends on its `k` neighbours and the module
    has only `k` parameters. By default `k` adapts to the number of channels as in the paper:

        t = int(abs((log2(C) + 1) / 2)),   k = t if t is odd else t + 1

    i.e. the nearest odd integer to `(log2(C) + 1) / 2` with ties broken upwards (k = 3 for
    C = 64, 5 for C = 256, 7 for C = 2048). A fixed `kernel_size` (3 in the official ResNet
    code) replaces the rule. Works for any rank >= 2. Under float16 and bfloat16 policies the
    gate is computed in float32 and cast back, as Keras's `BatchNormalization` does.

    Args:
        kernel_size: `None` for the adaptive size, or a positive odd integer.
        gate_activation: the activation that makes the gate; anything `keras_atac.layers.get`
            accepts.
        kernel_initializer, kernel_regularizer, kernel_constraint: for the convolution kernel.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> layer = keras_atac.layers.ECA()
    >>> layer.build((None, 32, 32, 256))
    >>> layer.conv.kernel.shape   # k = 5 for 256 channels
    (5, 1, 1)

    Reference:
        Qilong Wang, Banggu Wu, Pengfei Zhu, Peihua Li, Wangmeng Zuo, Qinghua Hu. "ECA-Net:
        Efficient Channel Attention for Deep Convolutional Neural Networks". CVPR 2020.
        https://arxiv.org/abs/1910.03151
    """

    def __init__(
        self,
        kernel_size=None,
        gate_activation="sigmoid",
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        kernel_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_size is not None:
            kernel_size = checks.check_odd_kernel_size("kernel_size", kernel_size)
        self.kernel_size = kernel_size
        self.gate_activation = layer_utils.activation_argument("gate_activation", gate_activation)
        layer_utils.set_weight_arguments(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        channels = input_checks.check_channels(self, input_shape, self.data_format)
        self._spatial_axes = checks.spatial_axes(len(input_shape), self.data_format)
        policy = self.build_gate_policy()
        kernel_size = self.kernel_size or adaptive_kernel_size(channels)
        # The pooled vector is read as a sequence of C steps with one feature; odd kernels make
        # "same" padding symmetric, (k - 1) / 2 zeros on each side as in the paper's code.
        self.conv = keras.layers.Conv1D(
            1,
            kernel_size,
            padding="same",
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            kernel_constraint=self.kernel_constraint,
            data_format="channels_last",
            dtype=policy,
            name="conv",
        )
        self.conv.build((None, channels, 1))
        self.gate = layer_utils.activation_layer(self.gate_activation, policy)
        self.gate.build((None, channels))

    def gate_values(self, x, training=None):
        pooled = ops.mean(x, axis=self._spatial_axes) if self._spatial_axes else x
        logits = ops.squeeze(self.conv(ops.expand_dims(pooled, -1)), -1)
        return layer_utils.to_channel_map(self.gate(logits), len(x.shape), self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "gate_activation": self.gate_activation,
                **layer_utils.weight_arguments_config(self, "kernel"),
                "data_format": self.data_format,
            }
        )
        return config
