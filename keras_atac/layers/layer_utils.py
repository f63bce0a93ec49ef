"""Helpers shared by the layers: the dtype of numerically sensitive parts, activation arguments,
per-channel values broadcast against a feature map, and sublayers."""

import keras
from keras import ops

from keras_atac.layers import depthwise, registry

# Keras depthwise convolution layers by number of spatial axes (Keras has no 3-D one).
DEPTHWISE_CONVOLUTIONS = {1: keras.layers.DepthwiseConv1D, 2: keras.layers.DepthwiseConv2D}


def sensitive_dtype_policy(layer):
    """The dtype policy for the numerically sensitive parts of `layer` (gates, polynomials).

    As in Keras's `BatchNormalization`, float16 and bfloat16 computations are done in float32
    and cast back: float16's largest value is 65504, so sums and powers of large activations
    overflow it, and both 16-bit types lose most digits to cancellation. Other compute dtypes
    (float32, float64) are kept. (Not `keras.backend.result_type(dtype, "float32")`: Keras
    promotes float64 with float32 to float32.)
    """
    if layer.compute_dtype in ("float16", "bfloat16"):
        return keras.DTypePolicy("float32")
    return layer.dtype_policy


def weight_value(variable, dtype):
    """The value of `variable` as a tensor of `dtype`.

    The variable is converted first: on JAX, some `keras.ops` reject raw variables under jit.
    """
    return ops.cast(ops.convert_to_tensor(variable), dtype)


def to_channel_map(values, rank, data_format):
    """Reshapes per-channel values to broadcast against a feature map of rank `rank`.

    `values` is a `(C,)` weight or an `(N, C)` gate; the result has singleton axes where the
    feature map has its spatial axes, e.g. `(N, C, 1, 1)` for channels-first images.
    """
    axis = -1 if data_format == "channels_first" else -2
    for _ in range(rank - 2):
        values = ops.expand_dims(values, axis)
    return values


def add_channel_bias(x, bias, data_format):
    """`x` plus a per-channel `(C,)` bias or offset, broadcast over the batch and spatial axes.

    Written with the `+` operator, not `ops.add`: Keras's TensorFlow backend turns `ops.add`
    of a bias-shaped tensor into `tf.nn.bias_add` and takes the layout from the shapes, so a
    `(1, C, 1, 1)` bias added to an `(N, C, H, W)` map with `W == C` is added along the width
    (this is what a Keras `Conv*D(use_bias=True, data_format="channels_first")` does).
    """
    return x + to_channel_map(weight_value(bias, x.dtype), len(x.shape), data_format)


class _BiasSafeConvolution:
    """Mixin for Keras convolution layers: the bias added by `add_channel_bias`.

    The same weights and configuration as the Keras layer; the result differs only on the
    TensorFlow backend, for channels-first maps whose last spatial size equals the number of
    filters, where the Keras layer adds its bias along that axis.
    """

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            outputs = add_channel_bias(outputs, self.bias, self.data_format)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


def _same_size_odd_kernel(layer):
    """Whether a Keras convolution layer has stride 1, "same" padding, no dilation and an odd
    kernel: the case of `keras_atac.layers.depthwise`'s formulations."""
    return (
        layer.padding == "same"
        and set(layer.strides) == {1}
        and set(layer.dilation_rate) == {1}
        and all(size % 2 == 1 for size in layer.kernel_size)
    )


class _DepthwiseOperation:
    """The convolution of a Keras depthwise layer, as `convolution_op` (which Keras's depthwise
    layers do not have). Stride 1, "same" padding and an odd kernel, xUnit's case, take the
    formulation XLA's CPU compiler runs well (`depthwise.depthwise_conv`)."""

    def convolution_op(self, inputs, kernel):
        if _same_size_odd_kernel(self):
            return depthwise.depthwise_conv(inputs, kernel, self.data_format)
        return ops.depthwise_conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )


@keras.saving.register_keras_serializable(package="keras_atac")
class BiasSafeConv2D(_BiasSafeConvolution, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with a correct channels-first bias (see `add_channel_bias`); the
    host networks use it for their convolutions with a bias."""


class BiasSafeDepthwiseConv1D(
    _BiasSafeConvolution, _DepthwiseOperation, keras.layers.DepthwiseConv1D
):
    """`keras.layers.DepthwiseConv1D` with a correct channels-first bias."""


class BiasSafeDepthwiseConv2D(
    _BiasSafeConvolution, _DepthwiseOperation, keras.layers.DepthwiseConv2D
):
    """`keras.layers.DepthwiseConv2D` with a correct channels-first bias."""


class _SingleFilterOperation:
    """The convolution of a Keras convolution layer with one filter. Stride 1, "same" padding
    and an odd kernel, CBAM's spatial gate, take the formulation XLA's CPU compiler runs well
    (`depthwise.single_filter_conv`)."""

    def convolution_op(self, inputs, kernel):
        if self.filters == 1 and self.groups == 1 and _same_size_odd_kernel(self):
            return depthwise.single_filter_conv(inputs, kernel, self.data_format)
        return super().convolution_op(inputs, kernel)


class SingleFilterConv1D(_SingleFilterOperation, keras.layers.Conv1D):
    """`keras.layers.Conv1D` (the same weights), computed as `depthwise.single_filter_conv`
    where it applies."""


class SingleFilterConv2D(_SingleFilterOperation, keras.layers.Conv2D):
    """`keras.layers.Conv2D` (the same weights), computed as `depthwise.single_filter_conv`
    where it applies."""


# Convolutions to one filter, by number of spatial axes (Keras's own for 3-D maps).
SINGLE_FILTER_CONVOLUTIONS = {1: SingleFilterConv1D, 2: SingleFilterConv2D, 3: keras.layers.Conv3D}

# Depthwise convolutions with a bias, by number of spatial axes.
BIASED_DEPTHWISE_CONVOLUTIONS = {1: BiasSafeDepthwiseConv1D, 2: BiasSafeDepthwiseConv2D}


def dense_sublayer(layer, units, name, dtype):
    """A `Dense` sublayer of `layer` with its `kernel_*` and `bias_*` initializers,
    regularizers and constraints."""
    return keras.layers.Dense(
        units,
        kernel_initializer=layer.kernel_initializer,
        kernel_regularizer=layer.kernel_regularizer,
        kernel_constraint=layer.kernel_constraint,
        bias_initializer=layer.bias_initializer,
        bias_regularizer=layer.bias_regularizer,
        bias_constraint=layer.bias_constraint,
        dtype=dtype,
        name=name,
    )


def activation_argument(argument, identifier):
    """Checks an activation argument of a layer and returns it in serializable form.

    Anything `keras_atac.layers.get` accepts is allowed; a name is kept as it is, anything else
    (a layer, a layer class, a callable) is stored as the Keras serialization of the layer that
    `get` makes of it, so that `get_config` is JSON and round-trips through `from_config`.

    Raises:
        ValueError, TypeError: naming `argument` and the value received, for anything `get`
            rejects.
    """
    try:
        if isinstance(identifier, str):
            registry.layer_class(identifier)
            return identifier
        layer = registry.get(identifier)
    except (ValueError, TypeError) as error:
        raise type(error)(
            f"`{argument}` is not an activation that keras_atac.layers.get knows. "
            f"Received: {argument}={identifier!r}. {error}"
        ) from None
    return keras.saving.serialize_keras_object(layer)


def activation_layer(identifier, dtype):
    """A new activation layer for an identifier checked by `activation_argument`."""
    return registry.get(identifier, dtype=dtype)


def set_weight_arguments(layer, kind, initializer, regularizer, constraint):
    """Sets `layer.<kind>_initializer`, `_regularizer` and `_constraint` from the arguments."""
    setattr(layer, f"{kind}_initializer", keras.initializers.get(initializer))
    setattr(layer, f"{kind}_regularizer", keras.regularizers.get(regularizer))
    setattr(layer, f"{kind}_constraint", keras.constraints.get(constraint))


def weight_arguments_config(layer, *kinds):
    """The `get_config` entries of the initializer, regularizer and constraint of each kind of
    weight (`"kernel"`, `"bias"`, ...) of `layer`."""
    config = {}
    for kind in kinds:
        config[f"{kind}_initializer"] = keras.initializers.serialize(
            getattr(layer, f"{kind}_initializer")
        )
        config[f"{kind}_regularizer"] = keras.regularizers.serialize(
            getattr(layer, f"{kind}_regularizer")
        )
        config[f"{kind}_constraint"] = keras.constraints.serialize(
            getattr(layer, f"{kind}_constraint")
        )
    return config


def msra_prelu_initializer():
    """MXNet's `MSRAPrelu()` initializer, which the official ATAC code uses for every kernel.

    MSRAPrelu draws from a normal distribution with variance `2 / ((1 + slope**2) * fan_avg)` and
    slope 0.25, i.e. Keras's `VarianceScaling` with scale `2 / 1.0625 = 1.88235...`.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0 / (1.0 + 0.25**2), mode="fan_avg", distribution="untruncated_normal"
    )


def pointwise(x, kernel, data_format):
    """A 1x1 convolution without bias: a dense map over the channel axis."""
    kernel = ops.cast(kernel, x.dtype)
    if data_format == "channels_first":
        return ops.einsum("nc...,cd->nd...", x, kernel)
    if keras.backend.backend() != "jax" or len(x.shape) == 2:
        return ops.matmul(x, kernel)
    # On JAX, as a product of the map flattened to (positions, channels): XLA's CPU backend ran
    # the forward and backward of a rank-4 `matmul` (and its kernel gradient, contracting three
    # axes) 1.6x slower at cifar_resnet(20)'s shapes (measured for ATAC's two pointwise maps:
    # 15.3 ms against 9.7 ms, `python -m benchmarks.atac_cost`). TensorFlow and PyTorch ran both
    # alike.
    shape = ops.shape(x)
    flat = ops.matmul(ops.reshape(x, (-1, shape[-1])), kernel)
    return ops.reshape(flat, (*shape[:-1], kernel.shape[-1]))
