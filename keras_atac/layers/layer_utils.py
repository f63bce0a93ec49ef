"""Helpers shared by the layers: the dtype of numerically sensitive parts, activation arguments,
per-channel values broadcast against a feature map, and convolutions by spatial rank."""

import keras
from keras import ops

# Keras convolution layers by number of spatial axes (Keras has no 3-D depthwise convolution).
CONVOLUTIONS = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
DEPTHWISE_CONVOLUTIONS = {1: keras.layers.DepthwiseConv1D, 2: keras.layers.DepthwiseConv2D}


def sensitive_dtype_policy(layer):
    """The dtype policy for the numerically sensitive parts of `layer` (gates, polynomials).

    As in Keras's `BatchNormalization`, float16 and bfloat16 computations are done in float32
    and cast back: float16's largest value is 65504, so sums and powers of large activations
    overflow it, and both 16-bit types lose most digits to cancellation. Other compute dtypes
    (float32, float64) are kept.
    """
    dtype = keras.backend.result_type(layer.compute_dtype, "float32")
    return layer.dtype_policy if dtype == layer.compute_dtype else keras.DTypePolicy(dtype)


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


def activation_argument(argument, identifier):
    """Checks an activation argument of a layer and returns it in serializable form.

    Anything `keras_atac.layers.get` accepts is allowed; a name is kept as it is, anything else
    (a layer, a layer class, a callable) is stored as the Keras serialization of the layer that
    `get` makes of it, so that `get_config` is JSON and round-trips through `from_config`.

    Raises:
        ValueError, TypeError: naming `argument` and the value received, for anything `get`
            rejects.
    """
    # Imported here because the factory imports every layer module of the package.
    from keras_atac.layers import factory

    try:
        layer = factory.get(identifier)
    except (ValueError, TypeError) as error:
        raise type(error)(
            f"`{argument}` is not an activation that keras_atac.layers.get knows. "
            f"Received: {argument}={identifier!r}. {error}"
        ) from None
    if isinstance(identifier, str):
        return identifier
    return keras.saving.serialize_keras_object(layer)


def activation_layer(identifier, dtype):
    """A new activation layer for an identifier checked by `activation_argument`."""
    from keras_atac.layers import factory

    return factory.get(identifier, dtype=dtype)
