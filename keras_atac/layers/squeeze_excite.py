"""Squeeze-and-excitation (Hu, Shen, Albanie, Sun and Wu, CVPR 2018 / TPAMI 2020)."""

from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.utils import checks


@register("se", aliases=("squeeze_excite",), kind="attention")
@keras_atac_export("keras_atac.layers.SqueezeExcite")
class SqueezeExcite(gating.GatingLayer):
    """Squeeze-and-excitation: a channel gate computed from globally pooled features.

        s = GAP(x)                                   squeeze: (N, C)
        SE(x) = x * gate(W2 inner(W1 s + b1) + b2)   excite: one value per channel

    `W1` maps `C` to `Ci = floor(C / reduction)` channels and `W2` back to `C`, both with a
    bias; `inner` is ReLU and `gate` the sigmoid by default. The gate is broadcast over the
    spatial axes. Parameters for `C` channels: `2*C*Ci + Ci + C`, all trainable.

    The module refines a feature map and returns a map of the same shape; in a residual block it
    goes on the residual branch after the last convolution and BatchNorm, before the addition.
    Works for any rank >= 2 (for (N, C) inputs the squeeze is the identity). Under float16 and
    bfloat16 policies the gate is computed in float32 and cast back, as Keras's
    `BatchNormalization` does: pooled sums and the dense maps of large activations overflow
    float16.

    Args:
        reduction: the channel reduction ratio of the bottleneck (16 in the paper), a positive
            number with `floor(C / reduction) >= 1`.
        inner_activation: the activation between the two dense maps; anything
            `keras_atac.layers.get` accepts.
        gate_activation: the activation that makes the gate; anything `keras_atac.layers.get`
            accepts.
        kernel_initializer, kernel_regularizer, kernel_constraint: for both dense kernels.
        bias_initializer, bias_regularizer, bias_constraint: for both biases.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> inputs = keras.Input((32, 32, 64))
    >>> x = keras.layers.Conv2D(64, 3, padding="same")(inputs)
    >>> x = keras_atac.layers.SqueezeExcite(reduction=16)(x)

    Reference:
        Jie Hu, Li Shen, Samuel Albanie, Gang Sun, Enhua Wu. "Squeeze-and-Excitation
        Networks". CVPR 2018; TPAMI 2020. https://arxiv.org/abs/1709.01507
    """

    def __init__(
        self,
        reduction=16,
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
        self.reduction = checks.check_positive_number("reduction", reduction)
        self.inner_activation = layer_utils.activation_argument(
            "inner_activation", inner_activation
        )
        self.gate_activation = layer_utils.activation_argument("gate_activation", gate_activation)
        layer_utils.set_weight_arguments(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        layer_utils.set_weight_arguments(
            self, "bias", bias_initializer, bias_regularizer, bias_constraint
        )
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        channels = input_checks.check_channels(self, input_shape, self.data_format)
        inner_channels = input_checks.reduced_channels(self, channels, self.reduction)
        self._spatial_axes = checks.spatial_axes(len(input_shape), self.data_format)
        policy = self.build_gate_policy()
        self.reduce = layer_utils.dense_sublayer(self, inner_channels, "reduce", policy)
        self.reduce.build((None, channels))
        self.inner = layer_utils.activation_layer(self.inner_activation, policy)
        self.inner.build((None, inner_channels))
        self.expand = layer_utils.dense_sublayer(self, channels, "expand", policy)
        self.expand.build((None, inner_channels))
        self.gate = layer_utils.activation_layer(self.gate_activation, policy)
        self.gate.build((None, channels))

    def _pool(self, x, reduce_fn):
        """Reduces the spatial axes of `x` with `reduce_fn`, giving (N, C)."""
        return reduce_fn(x, axis=self._spatial_axes) if self._spatial_axes else x

    def _excite(self, pooled):
        """The shared bottleneck MLP: (N, C) -> (N, C) gate logits."""
        return self.expand(self.inner(self.reduce(pooled)))

    def _gate_logits(self, x):
        """(N, C) logits of the gate from the feature map (CBAM's channel gate overrides it)."""
        return self._excite(self._pool(x, ops.mean))

    def gate_values(self, x, training=None):
        gate = self.gate(self._gate_logits(x))
        return layer_utils.to_channel_map(gate, len(x.shape), self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reduction": self.reduction,
                "inner_activation": self.inner_activation,
                "gate_activation": self.gate_activation,
                **layer_utils.weight_arguments_config(self, "kernel", "bias"),
                "data_format": self.data_format,
            }
        )
        return config
