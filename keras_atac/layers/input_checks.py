"""Argument and input-shape checks shared by the layers of the package.

Every check raises a `ValueError` that names the argument and the value received, and is called
before any weight is created, so a rejected call leaves the layer unbuilt.
"""

import numbers

import keras

DATA_FORMATS = ("channels_last", "channels_first")


def standardize_data_format(data_format):
    """Returns `"channels_last"` or `"channels_first"`; `None` means Keras's global setting."""
    if data_format is None:
        return keras.config.image_data_format()
    if isinstance(data_format, str) and data_format.lower() in DATA_FORMATS:
        return data_format.lower()
    raise ValueError(
        f"`data_format` must be one of {DATA_FORMATS} or None. "
        f"Received: data_format={data_format!r}"
    )


def channel_axis(data_format):
    """The channel axis for a standardized `data_format` (valid for any rank)."""
    return -1 if data_format == "channels_last" else 1


def spatial_axes(rank, data_format):
    """The axes between batch and channels, e.g. (1, 2) for (N, H, W, C); empty for rank 2."""
    return tuple(range(1, rank - 1)) if data_format == "channels_last" else tuple(range(2, rank))


def floating_inputs(layer, inputs):
    """Returns `inputs` with integer and boolean values cast to the layer's compute dtype.

    Keras autocasts floating-point inputs only; the layers of the package compute real-valued
    gates and slopes, which integer arithmetic would truncate. Other dtypes (complex, string)
    raise a `TypeError` naming the layer and the dtype received.
    """
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if keras.backend.is_float_dtype(dtype):
        return inputs
    if keras.backend.is_int_dtype(dtype) or dtype == "bool":
        return keras.ops.cast(inputs, layer.compute_dtype)
    raise TypeError(
        f"{type(layer).__name__} layer '{layer.name}' expects real-valued inputs (floating "
        f"point, integer or bool). Received: inputs.dtype={dtype}"
    )


def check_positive_number(name, value, *, integer=False):
    """Checks that `value` is a positive real number (a positive integer if `integer`)."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"`{name}` must be {what}. Received: {name}={value!r}")
    return value


def check_number_in_range(name, value, low, high, *, integer=False):
    """Checks that `value` is a real number (an integer if `integer`) in the closed interval
    [low, high]."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ValueError(f"`{name}` must be {what} in [{low}, {high}]. Received: {name}={value!r}")
    return value


def check_bool(name, value):
    """Checks that `value` is a bool (not merely truthy)."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")
    return value


def check_odd_kernel_size(name, value):
    """Checks that `value` is a positive odd integer: a kernel with a centre, so that "same"
    padding is symmetric and agrees with the reference implementations' `padding=k // 2`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive odd integer. Received: {name}={value!r}")
    if value % 2 == 0:
        raise ValueError(f"`{name}` must be odd. Received: {name}={value!r}")
    return int(value)


def check_choice(name, value, choices):
    """Checks that `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}")
    return value


def check_channels(layer, input_shape, data_format, *, min_rank=2, max_rank=None):
    """Checks the rank of `input_shape` and returns its (defined) number of channels.

    Args:
        layer: the layer being built (its class and name go into the message).
        input_shape: the full input shape, batch axis included.
        data_format: a standardized data format.
        min_rank: the smallest rank the layer accepts, batch axis included.
        max_rank: the largest rank the layer accepts, batch axis included (None: no limit).
    """
    where = f"{type(layer).__name__} layer '{layer.name}'"
    rank = None if input_shape is None else len(input_shape)
    if rank is None or rank < min_rank or (max_rank is not None and rank > max_rank):
        expected = f">= {min_rank}" if max_rank is None else f"in [{min_rank}, {max_rank}]"
        raise ValueError(
            f"{where} expects inputs of rank {expected} (batch axis included). "
            f"Received: input_shape={input_shape}"
        )
    channels = input_shape[channel_axis(data_format)]
    if channels is None:
        raise ValueError(
            f"{where} needs a defined channel dimension (axis {channel_axis(data_format)} with "
            f"data_format='{data_format}'). Received: input_shape={input_shape}"
        )
    return int(channels)


def reduced_channels(layer, channels, reduction):
    """The bottleneck width `floor(channels / reduction)`, checked to be at least 1."""
    inner_channels = int(channels // reduction)
    if inner_channels < 1:
        raise ValueError(
            f"`reduction` leaves no channel in the bottleneck of {type(layer).__name__} layer "
            f"'{layer.name}': floor({channels} / reduction) must be at least 1, so reduction "
            f"must be at most {channels}. Received: reduction={reduction}"
        )
    return inner_channels
