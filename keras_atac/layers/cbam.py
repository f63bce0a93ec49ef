"""CBAM: convolutional block attention module (Woo, Park, Lee and Kweon, ECCV 2018)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.layers.squeeze_excite import SqueezeExcite
from keras_atac.utils import checks


@register("channel_attention", kind="attention")
@keras_atac_export("keras_atac.layers.ChannelAttention")
class ChannelAttention(SqueezeExcite):
    """The channel gate of CBAM: squeeze-and-excitation with average and max pooling.

        ChannelAttention(x) = x * gate(MLP(GAP(x)) + MLP(GMP(x)))

    `MLP` is one bottleneck MLP shared by both pooled vectors: a dense map from `C` to
    `Ci = floor(C / reduction)` channels, ReLU, and a dense map back to `C`, both with a bias,
    as in the official code. `GMP` is global max pooling; the gate is the sigmoid by default
    and is broadcast over the spatial axes. Parameters for `C` channels: `2*C*Ci + Ci + C`,
    as `SqueezeExcite`. Under float16 and bfloat16 policies the gate is computed in float32
    and cast back.

    Args:
        reduction: the channel reduction ratio of the MLP (16 in the paper), a positive number
            with `floor(C / reduction) >= 1`.
        inner_activation: the activation inside the MLP.
        gate_activation: the activation that makes the gate.
        kernel_initializer, kernel_regularizer, kernel_constraint: for both dense kernels.
        bias_initializer, bias_regularizer, bias_constraint: for both biases.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> inputs = keras.Input((32, 32, 64))
    >>> x = keras_atac.layers.ChannelAttention(reduction=16)(inputs)

    Reference:
        Sanghyun Woo, Jongchan Park, Joon-Young Lee, In So Kweon. "CBAM: Convolutional Block
        Attention Module". ECCV 2018. https://arxiv.org/abs/1807.06521
    """

    def _gate_logits(self, x):
        return self._excite(self._pool(x, ops.mean)) + self._excite(self._pool(x, ops.max))


@register("spatial_attention", kind="attention")
@keras_atac_export("keras_atac.layers.SpatialAttention")
class SpatialAttention(gating.GatingLayer):
    """The spatial gate of CBAM: a convolution over channel-pooled maps.

        m = [max_c(x); mean_c(x)]                       two maps, pooled over the channels
        SpatialAttention(x) = x * gate(BN(Conv_k(m)))   one value per position

    `Conv_k` is a `k x k` convolution from the two maps to one, without bias, followed by a
    BatchNorm, as in the official code; the gate is the sigmoid by default and is broadcast
    over the channels. Parameters for 2-D inputs: `2*k*k + 2` trainable, 2 non-trainable
    (the BatchNorm's moving statistics), whatever the number of channels. Works on 1-D, 2-D
    and 3-D feature maps (ranks 3 to 5). Under float16 and bfloat16 policies the gate is
    computed in float32 and cast back, as Keras's `BatchNormalization` does.

    Args:
        kernel_size: the convolution's kernel size `k`, a positive odd integer (7 in the
            paper).
        momentum: momentum of the BatchNorm moving statistics (Keras convention; 0.99 is the
            `momentum=0.01` of PyTorch, which the official code uses).
        epsilon: BatchNorm epsilon.
        gate_activation: the activation that makes the gate; anything `keras_atac.layers.get`
            accepts.
        kernel_initializer, kernel_regularizer, kernel_constraint: for the convolution kernel.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> inputs = keras.Input((32, 32, 64))
    >>> x = keras_atac.layers.SpatialAttention(kernel_size=7)(inputs)

    Reference:
        Sanghyun Woo, Jongchan Park, Joon-Young Lee, In So Kweon. "CBAM: Convolutional Block
        Attention Module". ECCV 2018. https://arxiv.org/abs/1807.06521
    """

    def __init__(
        self,
        kernel_size=7,
        momentum=0.99,
        epsilon=1e-5,
        gate_activation="sigmoid",
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        kernel_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = checks.check_odd_kernel_size("kernel_size", kernel_size)
        self.momentum = checks.check_number_in_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = checks.check_positive_number("epsilon", epsilon)
        self.gate_activation = layer_utils.activation_argument("gate_activation", gate_activation)
        layer_utils.set_weight_arguments(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        input_checks.check_channels(self, input_shape, self.data_format, min_rank=3, max_rank=5)
        spatial_shape = tuple(
            input_shape[a] for a in checks.spatial_axes(len(input_shape), self.data_format)
        )
        policy = self.build_gate_policy()
        # The pooled maps are stacked channels-last whatever the data format: they are new
        # tensors, so the layout costs nothing. Keras's convolution (the same weights), computed
        # as XLA's CPU compiler runs well.
        self.conv = layer_utils.SINGLE_FILTER_CONVOLUTIONS[len(spatial_shape)](
            1,
            self.kernel_size,
            padding="same",
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            kernel_constraint=self.kernel_constraint,
            data_format="channels_last",
            dtype=policy,
            name="conv",
        )
        self.conv.build((None, *spatial_shape, 2))
        self.norm = keras.layers.BatchNormalization(
            axis=-1, momentum=self.momentum, epsilon=self.epsilon, dtype=policy, name="norm"
        )
        self.norm.build((None, *spatial_shape, 1))
        self.gate = layer_utils.activation_layer(self.gate_activation, policy)
        self.gate.build((None, *spatial_shape, 1))

    def gate_values(self, x, training=None):
        axis = checks.channel_axis(self.data_format)
        pooled = ops.stack([ops.max(x, axis=axis), ops.mean(x, axis=axis)], axis=-1)
        gate = self.gate(self.norm(self.conv(pooled), training=training))
        return ops.moveaxis(gate, -1, 1) if self.data_format == "channels_first" else gate

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "gate_activation": self.gate_activation,
                **layer_utils.weight_arguments_config(self, "kernel"),
                "data_format": self.data_format,
            }
        )
        return config


# The arguments of CBAM that configure its channel gate.
_CHANNEL_ARGUMENTS = (
    "reduction",
    "inner_activation",
    "gate_activation",
    "kernel_initializer",
    "kernel_regularizer",
    "kernel_constraint",
    "bias_initializer",
    "bias_regularizer",
    "bias_constraint",
    "data_format",
)


@register("cbam", kind="attention")
@keras_atac_export("keras_atac.layers.CBAM")
class CBAM(keras.layers.Layer):
    """Convolutional block attention module: a channel gate, then a spatial gate.

        CBAM(x) = SpatialAttention(ChannelAttention(x))

    The two gates are the layers `ChannelAttention` (shared bottleneck MLP over average- and
    max-pooled features, reduction 16) and `SpatialAttention` (a `k x k` convolution and
    BatchNorm over the channel-wise max and mean maps, k = 7), applied in that order as in the
    paper. Parameters for `C` channels and 2-D inputs: `2*C*Ci + Ci + C + 2*k*k + 2` trainable
    (`Ci = floor(C / reduction)`) and 2 non-trainable. Works on 1-D, 2-D and 3-D feature maps.

    Args:
        reduction: the channel gate's reduction ratio, a positive number with
            `floor(C / reduction) >= 1`.
        kernel_size: the spatial gate's kernel size, a positive odd integer.
        momentum, epsilon: of the spatial gate's BatchNorm (see `SpatialAttention`).
        inner_activation: the activation inside the channel gate's MLP.
        gate_activation: the activation that makes both gates.
        kernel_initializer, kernel_regularizer, kernel_constraint: for the MLP kernels and the
            spatial convolution kernel.
        bias_initializer, bias_regularizer, bias_constraint: for the MLP biases.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> inputs = keras.Input((32, 32, 64))
    >>> x = keras.layers.Conv2D(64, 3, padding="same")(inputs)
    >>> x = keras_atac.layers.CBAM()(x)

    Reference:
        Sanghyun Woo, Jongchan Park, Joon-Young Lee, In So Kweon. "CBAM: Convolutional Block
        Attention Module". ECCV 2018. https://arxiv.org/abs/1807.06521
    """

    def __init__(
        self,
        reduction=16,
        kernel_size=7,
        momentum=0.99,
        epsilon=1e-5,
        inner_activation="relu",
        gate_activation="sigmoid",
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        kernel_constraint=None,
        bias_initializer="zeros",
        bias_regularizer=None,
        bias_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channel_attention = ChannelAttention(
            reduction=reduction,
            inner_activation=inner_activation,
            gate_activation=gate_activation,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            kernel_constraint=kernel_constraint,
            bias_initializer=bias_initializer,
            bias_regularizer=bias_regularizer,
            bias_constraint=bias_constraint,
            data_format=data_format,
            dtype=self.dtype_policy,
            name="channel_attention",
        )
        self.spatial_attention = SpatialAttention(
            kernel_size=kernel_size,
            momentum=momentum,
            epsilon=epsilon,
            gate_activation=gate_activation,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            kernel_constraint=kernel_constraint,
            data_format=data_format,
            dtype=self.dtype_policy,
            name="spatial_attention",
        )

    def build(self, input_shape):
        # Checked here, so that an input the spatial gate rejects builds no channel gate either.
        input_checks.check_channels(
            self, input_shape, self.channel_attention.data_format, min_rank=3, max_rank=5
        )
        self.channel_attention.build(input_shape)
        self.spatial_attention.build(input_shape)

    def call(self, inputs, training=None):
        inputs = input_checks.floating_inputs(self, inputs)
        return self.spatial_attention(self.channel_attention(inputs), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        channel = self.channel_attention.get_config()
        spatial = self.spatial_attention.get_config()
        config = super().get_config()
        config.update({key: channel[key] for key in _CHANNEL_ARGUMENTS})
        config.update({key: spatial[key] for key in ("kernel_size", "momentum", "epsilon")})
        return config
