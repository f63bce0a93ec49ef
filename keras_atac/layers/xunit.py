"""xUnit: a learnable spatial activation (Kligvasser, Rott Shaham and Michaeli, CVPR 2018)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.utils import checks


@register("xunit")
@keras_atac_export("keras_atac.layers.XUnit")
class XUnit(gating.GatingLayer):
    """xUnit: a spatial activation that gates each element by a Gaussian of its neighbourhood.

        XUnit(x) = x * exp(-z**2),    z = BN2(DWConv_k(ReLU(BN1(x))))

    `DWConv_k` is a depthwise `k x k` convolution without bias (the BatchNorm after it makes a
    bias redundant) and "same" padding, so the gate has the full shape of `x` and every value
    depends on a `k x k` window of its own channel. The gate is in (0, 1].

    Parameters for `C` channels and 2-D inputs: `k*k*C + 4*C` trainable (the depthwise kernel
    and the two BatchNorms' scales and offsets), `4*C` non-trainable (their moving statistics).
    Works on 1-D (N, L, C) and 2-D (N, H, W, C) feature maps.

    Under float16 and bfloat16 policies the gate is computed in float32 and cast back, as
    Keras's `BatchNormalization` does: the depthwise sums of large activations overflow
    float16.

    Args:
        kernel_size: the depthwise kernel size `k`, a positive odd integer (9 in the xUnit
            paper; the size used in the ATAC paper's comparison is not stated).
        momentum: momentum of the BatchNorm moving statistics (Keras convention; 0.9 is the
            `momentum=0.1` of PyTorch, which the xUnit code uses).
        epsilon: BatchNorm epsilon.
        depthwise_initializer: initializer of the depthwise kernel.
        depthwise_regularizer: optional regularizer of the depthwise kernel.
        depthwise_constraint: optional constraint of the depthwise kernel.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((32, 32, 3)),
    ...     keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
    ...     keras.layers.BatchNormalization(),
    ...     keras_atac.layers.XUnit(kernel_size=9),
    ... ])

    Reference:
        Idan Kligvasser, Tamar Rott Shaham, Tomer Michaeli. "xUnit: Learning a Spatial
        Activation Function for Efficient Image Restoration". CVPR 2018.
        https://arxiv.org/abs/1711.06445
    """

    def __init__(
        self,
        kernel_size=9,
        momentum=0.9,
        epsilon=1e-5,
        depthwise_initializer="glorot_uniform",
        depthwise_regularizer=None,
        depthwise_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = checks.check_odd_kernel_size("kernel_size", kernel_size)
        self.momentum = checks.check_number_in_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = checks.check_positive_number("epsilon", epsilon)
        layer_utils.set_weight_arguments(
            self, "depthwise", depthwise_initializer, depthwise_regularizer, depthwise_constraint
        )
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        input_checks.check_channels(self, input_shape, self.data_format, min_rank=3, max_rank=4)
        policy = self.build_gate_policy()
        axis = checks.channel_axis(self.data_format)
        self.input_norm = keras.layers.BatchNormalization(
            axis=axis, momentum=self.momentum, epsilon=self.epsilon, dtype=policy, name="input_norm"
        )
        # Keras's depthwise layer (same weights) with the convolution XLA runs well.
        self.depthwise = layer_utils.BIASED_DEPTHWISE_CONVOLUTIONS[len(input_shape) - 2](
            kernel_size=self.kernel_size,
            padding="same",
            use_bias=False,
            depthwise_initializer=self.depthwise_initializer,
            depthwise_regularizer=self.depthwise_regularizer,
            depthwise_constraint=self.depthwise_constraint,
            data_format=self.data_format,
            dtype=policy,
            name="depthwise",
        )
        self.gate_norm = keras.layers.BatchNormalization(
            axis=axis, momentum=self.momentum, epsilon=self.epsilon, dtype=policy, name="gate_norm"
        )
        for sublayer in (self.input_norm, self.depthwise, self.gate_norm):
            sublayer.build(input_shape)

    def gate_values(self, x, training=None):
        z = self.input_norm(x, training=training)
        z = self.gate_norm(self.depthwise(ops.relu(z)), training=training)
        return ops.exp(-ops.square(z))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                **layer_utils.weight_arguments_config(self, "depthwise"),
                "data_format": self.data_format,
            }
        )
        return config
