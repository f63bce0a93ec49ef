"""Pieces shared by the host-network builders: input checks, convolutions, activation sites."""

import numbers

import keras

from keras_atac.layers import get
from keras_atac.layers.atac import msra_prelu_initializer
from keras_atac.layers.input_checks import channel_axis, check_positive_number

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
    channels = shape[channel_axis(data_format)] if len(shape) == 3 else None
    if channels is None or not all(
        size is None
        or (isinstance(size, numbers.Integral) and not isinstance(size, bool))
        and size > 0
        for size in shape
    ):
        raise ValueError(
            "`input_shape` must be a tuple of 3 positive sizes (height, width, channels) in the "
            f"order of data_format='{data_format}', with a defined number of channels. "
            f"Received: input_shape={input_shape!r}"
        )
    return shape


def check_integer_in_range(name, value, low, high):
    """Checks that `value` is an integer in the closed interval [low, high]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not low <= value <= high
    ):
        raise ValueError(
            f"`{name}` must be an integer in [{low}, {high}]. Received: {name}={value!r}"
        )
    return int(value)


def check_activation(activation):
    """Raises for an identifier `keras_atac.layers.get` rejects, before anything is built."""
    get(activation)


def activation_layer(activation, data_format, name):
    """A fresh layer from `keras_atac.layers.get(activation)`, for one site of a model.

    A layer that has a `data_format` (ATAC, the attention layers) is given the model's, so
    `activation="atac"` works in a channels-first model without further arguments.
    """
    layer = get(activation, name=name)
    if layer.get_config().get("data_format", data_format) != data_format:
        layer = get(layer, name=name, data_format=data_format)
    return layer


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
