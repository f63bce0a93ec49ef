"""Input checks of the layers: real-valued inputs, the rank and channels of an input shape,
the width of a bottleneck.

Every check raises an error that names the layer, the argument and the value received, and is
called before any weight is created, so a rejected call leaves the layer unbuilt. The argument
checks of the whole package live in `keras_atac.utils.checks`.
"""

import keras

from keras_atac.utils.checks import channel_axis


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
