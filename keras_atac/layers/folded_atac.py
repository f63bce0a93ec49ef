"""FoldedATAC: an ATAC unit whose BatchNorms are folded into its pointwise maps, for inference."""

from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils
from keras_atac.layers.atac import CONTEXTS, inner_activation_argument
from keras_atac.utils import checks


@keras_atac_export("keras_atac.layers.FoldedATAC")
class FoldedATAC(gating.GatingLayer):
    """ATAC for inference: its BatchNorms folded into the two pointwise maps as biases.

    At inference a BatchNorm is an affine map per channel,
    `BN(z) = s * z + (beta - s * moving_mean)` with `s = gamma / sqrt(moving_variance + eps)`,
    so ATAC's gate `sigmoid(BN2(PW2(ReLU(BN1(PW1(X))))))` equals

        G(X)          = sigmoid(ReLU(X @ K1 + b1) @ K2 + b2)
        FoldedATAC(X) = X * G(X)

    with `K1 = W1 * s1` (each output column scaled), `b1 = beta1 - s1 * moving_mean1`, and the
    same for `K2, b2`. What is left is two matrix products with a bias each, a ReLU, a sigmoid
    and a product: no normalisation at all. `keras_atac.fold_batchnorm(model)` puts this layer,
    with the folded weights, in place of every ATAC unit of a trained model; the result is
    equal to the model in inference mode. The layer can also be built and trained on its own:
    it is then an ATAC unit without normalisation.

    Parameters for `C` channels: `2*C*Ci + Ci + C` (the two kernels and biases), where
    `Ci = floor(C / reduction)`. The variants of ATAC are kept: `inner_activation=None` and
    `context="global"` (pooled context, one gate per channel). Under float16 and bfloat16
    policies the gate is computed in float32, as in ATAC.

    Args:
        reduction: the channel reduction ratio `r` of the bottleneck, as in ATAC.
        context: `"local"` (a gate per element) or `"global"` (a gate per channel).
        inner_activation: `"relu"` (the paper's) or `None`, as in `ATAC` (and, as there, the
            older `use_inner_relu=True/False` of saved configs).
        kernel_initializer: initializer of both kernels (MXNet's MSRAPrelu by default, as ATAC).
        bias_initializer: initializer of both biases (zeros by default).
        kernel_regularizer, bias_regularizer: optional regularizers of the kernels and biases.
        kernel_constraint, bias_constraint: optional constraints of the kernels and biases.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 16)), keras_atac.layers.ATAC()])
    >>> folded = keras_atac.fold_batchnorm(model)
    >>> type(folded.layers[-1]).__name__
    'FoldedATAC'

    Reference:
        Yimian Dai, Stefan Oehmcke, Fabian Gieseke, Yiquan Wu, Kobus Barnard.
        "Attention as Activation". ICPR 2020. https://arxiv.org/abs/2007.07729
        Sergey Ioffe, Christian Szegedy. "Batch Normalization". ICML 2015.
        https://arxiv.org/abs/1502.03167
    """

    def __init__(
        self,
        reduction=2,
        context="local",
        inner_activation="relu",
        kernel_initializer=None,
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        data_format=None,
        use_inner_relu=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.reduction = checks.check_positive_number("reduction", reduction)
        self.context = checks.check_choice("context", context, CONTEXTS)
        self.inner_activation = inner_activation_argument(inner_activation, use_inner_relu)
        layer_utils.set_weight_arguments(
            self,
            "kernel",
            kernel_initializer
            if kernel_initializer is not None
            else layer_utils.msra_prelu_initializer(),
            kernel_regularizer,
            kernel_constraint,
        )
        layer_utils.set_weight_arguments(
            self, "bias", bias_initializer, bias_regularizer, bias_constraint
        )
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        channels = input_checks.check_channels(self, input_shape, self.data_format)
        inner_channels = int(channels // self.reduction)
        if inner_channels < 1:
            raise ValueError(
                f"`reduction` leaves no channel in the bottleneck of FoldedATAC layer "
                f"'{self.name}': floor({channels} / reduction) must be at least 1, so reduction "
                f"must be at most {channels}. Received: reduction={self.reduction}"
            )
        self._spatial_axes = checks.spatial_axes(len(input_shape), self.data_format)
        self.build_gate_policy()
        self.reduce_kernel = self._add("reduce_kernel", (channels, inner_channels), "kernel")
        self.reduce_bias = self._add("reduce_bias", (inner_channels,), "bias")
        self.expand_kernel = self._add("expand_kernel", (inner_channels, channels), "kernel")
        self.expand_bias = self._add("expand_bias", (channels,), "bias")

    def _add(self, name, shape, kind):
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=getattr(self, f"{kind}_initializer"),
            regularizer=getattr(self, f"{kind}_regularizer"),
            constraint=getattr(self, f"{kind}_constraint"),
            # Read at full precision: under mixed_float16 the gate is computed in float32.
            autocast=False,
        )

    def _affine(self, x, kernel, bias):
        return layer_utils.add_channel_bias(
            layer_utils.pointwise(x, kernel, self.data_format), bias, self.data_format
        )

    def gate(self, inputs):
        """The gate `G(inputs)`, in (0, 1), in the gate's compute dtype (as `ATAC.gate`)."""
        return self.gate_values(ops.cast(inputs, self._gate_dtype))

    def gate_values(self, x, training=None):
        context = x
        if self.context == "global" and self._spatial_axes:
            context = ops.mean(x, axis=self._spatial_axes, keepdims=True)
        logits = self._affine(context, self.reduce_kernel, self.reduce_bias)
        if self.inner_activation == "relu":
            logits = ops.relu(logits)
        return ops.sigmoid(self._affine(logits, self.expand_kernel, self.expand_bias))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reduction": self.reduction,
                "context": self.context,
                "inner_activation": self.inner_activation,
                **layer_utils.weight_arguments_config(self, "kernel", "bias"),
                "data_format": self.data_format,
            }
        )
        return config
