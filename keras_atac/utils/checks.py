"""Argument checks shared by the whole package, and the data format of feature maps.

Every check raises a `ValueError` that names the argument and the value received, so it can
run before any state changes (a layer's weights, a model's layers, a file written).
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
