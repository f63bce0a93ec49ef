"""Pieces shared by the host-network builders: input checks, convolutions, activation sites."""

import numbers

import keras

from keras_atac.layers import registry
from keras_atac.layers.layer_utils import msra_prelu_initializer
from keras_atac.utils.checks import channel_axis, check_positive_number

# MXNet Gluon's BatchNorm defaults, used by the official ATAC code in every host network.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def image_input_shape(input_shape, data_format, default):
    """The (non-batch) shape of an image input, checked.

    Args:
        input_shape: `None` for `default`, or a 3-tuple of positive sizes (the spatial sizes may
            be `None`), in the order of `data_format`.
        data_format: a standardized data format.
        default: the channels-last default `(height, width, channels)`.
    """
    if input_shape is None:
        height, width, channels = default
        return default if data_format == "channels_last" else (channels, height, width)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) != 3 or shape[channel_axis(data_format)] is None or not all(map(_is_size, shape)):
        raise ValueError(
            "`input_shape` must be a tuple of 3 positive sizes (height, width, channels) in the "
            f"order of data_format='{data_format}', with a defined number of channels. "
            f"Received: input_shape={input_shape!r}"
        )
    return shape


def _is_size(size):
    """An undefined (`None`) or positive integer size."""
    if size is None:
        return True
    return isinstance(size, numbers.Integral) and not isinstance(size, bool) and size > 0


def check_activation(activation):
    """Raises for an identifier `keras_atac.layers.get` rejects, before anything is built."""
    registry.layer_class(activation)


def activation_layer(activation, data_format, name):
    """A fresh layer from `keras_atac.layers.get(activation)`, for one site of a model.

    A layer that has a `data_format` (ATAC, the attention layers) is given the model's, so
    `activation="atac"` works in a channels-first model without further arguments.
    """
    layer = registry.get(activation, name=name)
    if layer.get_config().get("data_format", data_format) != data_format:
        layer = registry.get(layer, name=name, data_format=data_format)
    return layer


def check_attention(attention):
    """Raises a ValueError naming `attention` unless it is None or gives an attention module.

    An attention module is a layer whose class is registered with
    `keras_atac.layers.register_attention` (the package's SE, CBAM, ECA, Gather-Excite, ...);
    `attention` is a factory name of one, such a layer (copied), its class or its config dict.
    """
    if attention is None:
        return
    try:
        attention_class = registry.layer_class(attention)
    except (ValueError, TypeError):
        attention_class = None
    if not registry.is_attention_class(attention_class):
        raise ValueError(
            "`attention` must be None or an attention module: one of "
            f"{', '.join(registry.attention_names())}, a layer or layer class registered with "
            "keras_atac.layers.register_attention, or its config dict. "
            f"Received: attention={attention!r}"
        )


def attention_layer(attention, x, data_format, name):
    """`x` through a fresh attention module (model's data format), or `x` for `None`."""
    if attention is None:
        return x
    return activation_layer(attention, data_format, name)(x)


def batch_norm(data_format, name, **kwargs):
    return keras.layers.BatchNormalization(
        axis=channel_axis(data_format),
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        name=name,
        **kwargs,
    )


def conv2d(x, filters, kernel_size, data_format, name, strides=1):
    """A bias-free convolution with MXNet's symmetric padding `kernel_size // 2`.

    Keras's `padding="same"` pads a strided convolution of an even-sized input only at the
    bottom and right, which shifts its sampling grid by one pixel against the 1x1 strided
    shortcut; explicit `ZeroPadding2D` + `padding="valid"` samples the same grid as MXNet and
    PyTorch. Kernels use MXNet's MSRAPrelu initializer, as the official training scripts do.
    """
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(
            kernel_size // 2, data_format=data_format, name=f"{name}_pad"
        )(x)
        padding = "valid"
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=msra_prelu_initializer(),
        data_format=data_format,
        name=name,
    )(x)


def classification_head(x, num_classes, classifier_activation, data_format):
    """Global average pooling, then `Dense(num_classes)` with MSRAPrelu kernels."""
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="avg_pool")(x)
    return keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        kernel_initializer=msra_prelu_initializer(),
        name="predictions",
    )(x)


def check_head(num_classes, classifier_activation):
    """Checks the arguments of the `Dense(num_classes, activation=classifier_activation)` head."""
    check_positive_number("num_classes", num_classes, integer=True)
    try:
        keras.activations.get(classifier_activation)
    except ValueError as error:
        raise ValueError(
            "`classifier_activation` must be None (logits) or a Keras activation such as "
            f"'softmax'. Received: classifier_activation={classifier_activation!r}"
        ) from error
