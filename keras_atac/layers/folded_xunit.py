"""FoldedXUnit: an xUnit whose BatchNorms are reduced to affine maps, for inference."""

from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils
from keras_atac.utils import checks


@keras_atac_export("keras_atac.layers.FoldedXUnit")
class FoldedXUnit(gating.GatingLayer):
    """xUnit for inference: the BatchNorm after the depthwise convolution folded into it.

    At inference a BatchNorm is the affine map `BN(z) = s * z + o` per channel, with
    `s = gamma / sqrt(moving_variance + eps)` and `o = beta - s * moving_mean`. In xUnit,
    `x * exp(-BN2(DWConv_k(ReLU(BN1(x))))**2)`, the second BatchNorm follows the depthwise
    convolution and folds into its kernel (each channel's filter scaled by `s2`) and a bias
    (`o2`); the first one, before the ReLU, becomes a per-channel scale and offset:

        z              = DWConv'_k(ReLU(scale * x + offset)) + bias
        FoldedXUnit(x) = x * exp(-z**2)

    `keras_atac.fold_batchnorm(model)` puts this layer, with the folded weights, in place of
    every `XUnit` of a trained model; the result equals the model in inference mode. The layer
    can also be built and trained on its own: it is then an xUnit without normalisation.

    Parameters for `C` channels and 2-D inputs: `k*k*C + 3*C` (the depthwise kernel, its bias,
    the scale and the offset). Works on 1-D (N, L, C) and 2-D (N, H, W, C) feature maps. Under
    float16 and bfloat16 policies the gate is computed in float32, as in `XUnit`.

    Args:
        kernel_size: the depthwise kernel size `k`, a positive odd integer.
        scale_initializer, offset_initializer: initializers of the per-channel scale (ones)
            and offset (zeros) applied before the ReLU.
        depthwise_initializer, bias_initializer: initializers of the depthwise kernel and of
            its bias (zeros).
        scale_regularizer, offset_regularizer, depthwise_regularizer, bias_regularizer:
            optional regularizers of the four weights.
        scale_constraint, offset_constraint, depthwise_constraint, bias_constraint: optional
            constraints of the four weights.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> model = keras.Sequential([keras.Input((16, 16, 8)), keras_atac.layers.XUnit()])
    >>> folded = keras_atac.fold_batchnorm(model)
    >>> type(folded.layers[-1]).__name__
    'FoldedXUnit'

    Reference:
        Idan Kligvasser, Tamar Rott Shaham, Tomer Michaeli. "xUnit: Learning a Spatial
        Activation Function for Efficient Image Restoration". CVPR 2018.
        https://arxiv.org/abs/1711.06445
    """

    def __init__(
        self,
        kernel_size=9,
        scale_initializer="ones",
        offset_initializer="zeros",
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        scale_regularizer=None,
        offset_regularizer=None,
        depthwise_regularizer=None,
        bias_regularizer=None,
        scale_constraint=None,
        offset_constraint=None,
        depthwise_constraint=None,
        bias_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = checks.check_odd_kernel_size("kernel_size", kernel_size)
        for arguments in (
            ("scale", scale_initializer, scale_regularizer, scale_constraint),
            ("offset", offset_initializer, offset_regularizer, offset_constraint),
            ("depthwise", depthwise_initializer, depthwise_regularizer, depthwise_constraint),
            ("bias", bias_initializer, bias_regularizer, bias_constraint),
        ):
            layer_utils.set_weight_arguments(self, *arguments)
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        channels = input_checks.check_channels(
            self, input_shape, self.data_format, min_rank=3, max_rank=4
        )
        policy = self.build_gate_policy()
        self._rank = len(input_shape)
        self.scale, self.offset = (
            self.add_weight(
                name=kind,
                shape=(channels,),
                initializer=getattr(self, f"{kind}_initializer"),
                regularizer=getattr(self, f"{kind}_regularizer"),
                constraint=getattr(self, f"{kind}_constraint"),
                # Not rounded to a 16-bit compute dtype: the gate is computed in float32 then.
                autocast=False,
            )
            for kind in ("scale", "offset")
        )
        # Not Keras's own layer: it adds a channels-first bias along the width when W == C.
        self.depthwise = layer_utils.BIASED_DEPTHWISE_CONVOLUTIONS[self._rank - 2](
            kernel_size=self.kernel_size,
            padding="same",
            depthwise_initializer=self.depthwise_initializer,
            depthwise_regularizer=self.depthwise_regularizer,
            depthwise_constraint=self.depthwise_constraint,
            bias_initializer=self.bias_initializer,
            bias_regularizer=self.bias_regularizer,
            bias_constraint=self.bias_constraint,
            data_format=self.data_format,
            dtype=policy,
            name="depthwise",
        )
        self.depthwise.build(input_shape)

    def _per_channel(self, weight):
        value = layer_utils.weight_value(weight, self._gate_dtype)
        return layer_utils.to_channel_map(value, self._rank, self.data_format)

    def gate_values(self, x, training=None):
        z = ops.relu(x * self._per_channel(self.scale) + self._per_channel(self.offset))
        return ops.exp(-ops.square(self.depthwise(z)))

    def get_config(self):
        config = super().get_config()
        config["kernel_size"] = self.kernel_size
        config.update(
            layer_utils.weight_arguments_config(self, "scale", "offset", "depthwise", "bias")
        )
        config["data_format"] = self.data_format
        return config
