"""Gather-Excite (Hu, Shen, Albanie, Sun and Vedaldi, NeurIPS 2018)."""

import numbers

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils
from keras_atac.layers.registry import register
from keras_atac.utils import checks

GLOBAL = "global"


@register("ge", aliases=("gather_excite",), kind="attention")
@register("ge_theta", extra_params=True)
@register("ge_theta_plus", extra_params=True, use_mlp=True)
@keras_atac_export("keras_atac.layers.GatherExcite")
class GatherExcite(gating.GatingLayer):
    """Gather-Excite: a gate from context gathered over a spatial extent.

        g = gather_e(x)                        context over extent e (or the whole map)
        GE(x) = x * upsample(gate(MLP(g)))     excite: one value per element

    The three variants of the paper:

    - GE-θ⁻ (`extra_params=False`, `use_mlp=False`, the default): parameter-free. The gather is
      an average: global average pooling for `extent="global"`; for an integer extent `e`,
      average pooling with window `2e - 1` and stride `e`, zero padding `e - 1` on each side and
      padded positions left out of the average (as in timm's implementation).
    - GE-θ (`extra_params=True`): the gather is learned. For `extent="global"` it is one
      depthwise convolution whose kernel covers the whole feature map (so the spatial size must
      be known when the layer is built, and is fixed from then on); for an integer extent
      `e = 2**n` it is `n` depthwise 3x3 convolutions with stride 2 and zero padding 1, with
      `inner_activation` between them. Every convolution has no bias and is followed by a
      BatchNorm.
    - GE-θ⁺ (`extra_params=True`, `use_mlp=True`): GE-θ followed by an SE-like bottleneck
      MLP of two 1x1 convolutions with biases, `C -> floor(C / reduction) -> C`, with
      `inner_activation` between them. (`use_mlp` also works without `extra_params`.)

    `gate` is the sigmoid by default. For an integer extent the gate map, of spatial size
    `G = ceil(H / e)`, is upsampled to the input size by nearest neighbours as in timm's
    reference (`F.interpolate(..., mode="nearest")`): position `i` takes gathered cell
    `floor(i * G / H)`, which is `floor(i / e)` when `H` is a multiple of `e`.

    Parameters for `C` channels and an `H x W` map: GE-θ⁻ none; GE-θ global `H*W*C + 2*C`
    trainable and `2*C` non-trainable, GE-θ with extent `2**n` `n * (9*C + 2*C)` trainable and
    `n * 2*C` non-trainable; GE-θ⁺ adds `2*C*Ci + Ci + C` with `Ci = floor(C / reduction)`.
    With global extent in every bottleneck of ResNet-50 these add up to the paper's 33.7M
    parameters for GE-θ⁺. Works on 1-D and 2-D feature maps. Under float16 and bfloat16
    policies the gate is computed in float32 and cast back, as Keras's `BatchNormalization`
    does.

    Args:
        extent: `"global"`, or the integer extent `e >= 2` of the gather (a power of 2 with
            `extra_params=True`).
        extra_params: whether the gather is learned (depthwise convolutions, GE-θ).
        use_mlp: whether the gathered context goes through the bottleneck MLP (GE-θ⁺).
        reduction: the MLP's channel reduction ratio (16 in the paper), a positive number with
            `floor(C / reduction) >= 1`; used only with `use_mlp=True`.
        momentum: momentum of the gather's BatchNorm moving statistics (Keras convention; 0.9
            is PyTorch's default `momentum=0.1`).
        epsilon: BatchNorm epsilon.
        inner_activation: the activation between the gather's convolutions and inside the
            MLP; anything `keras_atac.layers.get` accepts.
        gate_activation: the activation that makes the gate.
        depthwise_initializer, depthwise_regularizer, depthwise_constraint: for the gather's
            depthwise kernels.
        kernel_initializer, kernel_regularizer, kernel_constraint: for the MLP kernels.
        bias_initializer, bias_regularizer, bias_constraint: for the MLP biases.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> inputs = keras.Input((56, 56, 256))          # GE-θ⁺ needs the spatial size
    >>> x = keras_atac.layers.GatherExcite(extra_params=True, use_mlp=True)(inputs)
    >>> y = keras_atac.layers.GatherExcite(extent=8, extra_params=True)(inputs)

    Reference:
        Jie Hu, Li Shen, Samuel Albanie, Gang Sun, Andrea Vedaldi. "Gather-Excite: Exploiting
        Feature Context in Convolutional Neural Networks". NeurIPS 2018.
        https://arxiv.org/abs/1810.12348
    """

    def __init__(
        self,
        extent=GLOBAL,
        extra_params=False,
        use_mlp=False,
        reduction=16,
        momentum=0.9,
        epsilon=1e-5,
        inner_activation="relu",
        gate_activation="sigmoid",
        depthwise_initializer="glorot_uniform",
        depthwise_regularizer=None,
        depthwise_constraint=None,
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
        self.extra_params = checks.check_bool("extra_params", extra_params)
        self.extent = _check_extent(extent, extra_params)
        self.use_mlp = checks.check_bool("use_mlp", use_mlp)
        self.reduction = checks.check_positive_number("reduction", reduction)
        self.momentum = checks.check_number_in_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = checks.check_positive_number("epsilon", epsilon)
        self.inner_activation = layer_utils.activation_argument(
            "inner_activation", inner_activation
        )
        self.gate_activation = layer_utils.activation_argument("gate_activation", gate_activation)
        layer_utils.set_weight_arguments(
            self, "depthwise", depthwise_initializer, depthwise_regularizer, depthwise_constraint
        )
        layer_utils.set_weight_arguments(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        layer_utils.set_weight_arguments(
            self, "bias", bias_initializer, bias_regularizer, bias_constraint
        )
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        channels = input_checks.check_channels(
            self, input_shape, self.data_format, min_rank=3, max_rank=4
        )
        rank = len(input_shape)
        self._spatial_axes = checks.spatial_axes(rank, self.data_format)
        spatial_shape = tuple(input_shape[a] for a in self._spatial_axes)
        learned_global = self.extra_params and self.extent == GLOBAL
        if learned_global and None in spatial_shape:
            raise ValueError(
                f"GatherExcite layer '{self.name}' with extent='global' and extra_params=True "
                "gathers with a depthwise kernel as large as the feature map, so it needs "
                f"defined spatial dimensions. Received: input_shape={input_shape}"
            )
        inner_channels = (
            input_checks.reduced_channels(self, channels, self.reduction) if self.use_mlp else None
        )
        policy = self.build_gate_policy()
        self.gather_convs, self.gather_norms, self.gather_activations = [], [], []
        if self.extra_params:
            shape = self._build_learned_gather(tuple(input_shape), policy)
        else:
            shape = self._gathered_shape(tuple(input_shape))

        if self.use_mlp:
            # 1x1 convolutions as dense maps over a channels-last layout: Keras's TensorFlow
            # backend adds a channels-first convolution's bias along the wrong axis when the
            # map's width equals the number of filters (its `ops.add` takes the bias for NHWC).
            mlp_shape = (shape[0], *(shape[a] for a in self._spatial_axes), channels)
            self.reduce = layer_utils.dense_sublayer(self, inner_channels, "reduce", policy)
            self.reduce.build(mlp_shape)
            self.inner = layer_utils.activation_layer(self.inner_activation, policy)
            self.inner.build(mlp_shape[:-1] + (inner_channels,))
            self.expand = layer_utils.dense_sublayer(self, channels, "expand", policy)
            self.expand.build(mlp_shape[:-1] + (inner_channels,))
        self.gate = layer_utils.activation_layer(self.gate_activation, policy)
        self.gate.build(shape)
        if learned_global:
            # The gather kernel fixes the spatial size: any other size is an input error.
            self.input_spec = keras.InputSpec(
                ndim=rank, axes={a: input_shape[a] for a in range(1, rank)}
            )

    def _build_learned_gather(self, shape, policy):
        """Builds GE-theta's depthwise convolutions, BatchNorms and activations; returns the
        gathered shape."""
        spatial_shape = tuple(shape[a] for a in self._spatial_axes)
        learned_global = self.extent == GLOBAL
        num_convs = 1 if learned_global else self.extent.bit_length() - 1
        axis = checks.channel_axis(self.data_format)
        for i in range(num_convs):
            # For the global extent the convolution is computed as a weighted sum (see
            # `_MapSizedGather`).
            convolutions = (
                _MAP_SIZED_GATHERS if learned_global else layer_utils.DEPTHWISE_CONVOLUTIONS
            )
            conv = convolutions[len(spatial_shape)](
                kernel_size=spatial_shape if learned_global else 3,
                strides=1 if learned_global else 2,
                padding="valid",
                use_bias=False,
                depthwise_initializer=self.depthwise_initializer,
                depthwise_regularizer=self.depthwise_regularizer,
                depthwise_constraint=self.depthwise_constraint,
                data_format=self.data_format,
                dtype=policy,
                name=f"gather_conv{i + 1}",
            )
            if not learned_global:
                shape = self._padded_shape(shape, 1)
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm = keras.layers.BatchNormalization(
                axis=axis,
                momentum=self.momentum,
                epsilon=self.epsilon,
                dtype=policy,
                name=f"gather_norm{i + 1}",
            )
            norm.build(shape)
            self.gather_convs.append(conv)
            self.gather_norms.append(norm)
            if i < num_convs - 1:
                activation = layer_utils.activation_layer(self.inner_activation, policy)
                activation.build(shape)
                self.gather_activations.append(activation)
        return shape

    def _padded_shape(self, shape, width):
        return tuple(
            d + 2 * width if a in self._spatial_axes and d is not None else d
            for a, d in enumerate(shape)
        )

    def _gathered_shape(self, shape):
        """The shape of the parameter-free gather's output."""
        gathered = list(shape)
        for a in self._spatial_axes:
            if self.extent == GLOBAL:
                gathered[a] = 1
            elif gathered[a] is not None:
                gathered[a] = -(-gathered[a] // self.extent)
        return tuple(gathered)

    def _pad(self, x, width):
        widths = [[0, 0]] * len(x.shape)
        for a in self._spatial_axes:
            widths[a] = [width, width]
        return ops.pad(x, widths)

    def _average(self, x):
        """Average pooling over windows of 2e - 1 with stride e and padding e - 1, padded
        positions left out of the average."""
        e = self.extent
        window = 2 * e - 1
        channel = checks.channel_axis(self.data_format)
        ones = ops.ones_like(x[..., :1] if channel == -1 else x[:, :1])
        sums = ops.average_pool(self._pad(x, e - 1), window, e, "valid", self.data_format)
        counts = ops.average_pool(self._pad(ones, e - 1), window, e, "valid", self.data_format)
        return sums / counts

    def _gather(self, x, training):
        if self.extra_params:
            for i, (conv, norm) in enumerate(zip(self.gather_convs, self.gather_norms)):
                if self.extent == GLOBAL:
                    x = norm(conv(x), training=training)
                    continue
                x = norm(conv(self._pad(x, 1)), training=training)
                if i < len(self.gather_activations):
                    x = self.gather_activations[i](x)
            return x
        if self.extent == GLOBAL:
            return ops.mean(x, axis=self._spatial_axes, keepdims=True)
        return self._average(x)

    def _mlp(self, x):
        """The bottleneck MLP of 1x1 convolutions, applied over the channel axis."""
        if self.data_format == "channels_first":
            x = ops.moveaxis(x, 1, -1)
        x = self.expand(self.inner(self.reduce(x)))
        return ops.moveaxis(x, -1, 1) if self.data_format == "channels_first" else x

    def gate_values(self, x, training=None):
        context = self._gather(x, training)
        if self.use_mlp:
            context = self._mlp(context)
        gate = self.gate(context)
        if self.extent != GLOBAL:
            input_shape, gate_shape = ops.shape(x), ops.shape(gate)
            for a in self._spatial_axes:
                # PyTorch's nearest rule, in integers: source cell floor(i * G / H).
                cells = ops.arange(input_shape[a]) * gate_shape[a] // input_shape[a]
                gate = ops.take(gate, cells, axis=a)
        return gate

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "extent": self.extent,
                "extra_params": self.extra_params,
                "use_mlp": self.use_mlp,
                "reduction": self.reduction,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "inner_activation": self.inner_activation,
                "gate_activation": self.gate_activation,
                **layer_utils.weight_arguments_config(self, "depthwise", "kernel", "bias"),
                "data_format": self.data_format,
            }
        )
        return config


class _MapSizedGather:
    """GE-θ's global gather: a depthwise kernel as large as the map, with valid padding, is
    one weighted sum over the positions per channel.

    Computed as that sum (an elementwise product and a reduction) rather than as a
    convolution: XLA's CPU convolution is 10³ times slower on a map-sized kernel, and its
    gradient more so. A sublayer (not a function of `GatherExcite`) so that its kernel is read
    under its own float32 policy, not autocast to GatherExcite's 16-bit compute dtype.
    """

    def call(self, inputs):
        kernel = ops.squeeze(ops.cast(self.kernel, inputs.dtype), axis=-1)  # spatial + (C,)
        if self.data_format == "channels_first":
            kernel = ops.moveaxis(kernel, -1, 0)
        axes = checks.spatial_axes(len(inputs.shape), self.data_format)
        return ops.sum(inputs * kernel, axis=axes, keepdims=True)


# Named as Keras's classes on purpose: `.keras` files store the layers of a list such as
# `gather_convs` under their class names, so files saved with Keras's depthwise layers load.
class DepthwiseConv1D(_MapSizedGather, keras.layers.DepthwiseConv1D):
    pass


class DepthwiseConv2D(_MapSizedGather, keras.layers.DepthwiseConv2D):
    pass


_MAP_SIZED_GATHERS = {1: DepthwiseConv1D, 2: DepthwiseConv2D}


def _check_extent(extent, extra_params):
    """`"global"`, or an integer >= 2 (a power of 2 when the gather is learned)."""
    if extent == GLOBAL:
        return extent
    if isinstance(extent, bool) or not isinstance(extent, numbers.Integral) or extent < 2:
        raise ValueError(
            f"`extent` must be 'global' or an integer >= 2. Received: extent={extent!r}"
        )
    if extra_params and extent & (extent - 1):
        raise ValueError(
            "With extra_params=True, `extent` must be 'global' or a power of 2 (one strided "
            f"convolution per halving). Received: extent={extent!r}"
        )
    return int(extent)
