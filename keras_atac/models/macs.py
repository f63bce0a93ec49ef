"""Multiply-accumulate (MAC) counts of functional models, layer type by layer type."""

import math

import keras

from keras_atac.api_export import keras_atac_export
from keras_atac.layers.arelu import AReLU
from keras_atac.layers.atac import ATAC
from keras_atac.layers.input_checks import spatial_axes

# Layer class -> function(layer) returning the MACs of one call. Looked up along the MRO, so a
# subclass is counted like its parent unless it has a counter of its own.
_COUNTERS = {}


@keras_atac_export("keras_atac.models.register_mac_counter")
def register_mac_counter(layer_class):
    """Registers `function(layer) -> int`, the MACs of one call of a `layer_class` layer.

    The function may read the layer's weights and its symbolic `layer.input` / `layer.output`.

    Example:

    >>> @keras_atac.models.register_mac_counter(MyGate)
    ... def _(layer):
    ...     return math.prod(layer.output.shape[1:])
    """

    def decorator(function):
        _COUNTERS[layer_class] = function
        return function

    return decorator


@keras_atac_export("keras_atac.models.count_macs")
def count_macs(model):
    """The multiply-accumulates of one forward pass of one example through `model`.

    Counted are the products of convolutions, dense layers and ATAC's two pointwise maps
    (`2 * C * floor(C / r)` per position); normalisation, element-wise activations (ReLU, AReLU,
    the gate multiplication), pooling, padding, additions and biases count zero. This is the
    convention of the ATAC paper's Table IV (ResNet-50: 4.09 GMACs, with ATAC 4.397 GMACs).

    Nested functional models are counted layer by layer. Each layer is counted at the shapes of
    its first call, so a layer shared between several sites is counted once.

    Args:
        model: a built functional or sequential `keras.Model` (or a single layer that has
            been called on a symbolic input) whose sizes are all defined.

    Returns:
        The number of MACs, an `int`.

    Raises:
        ValueError: for a layer type without a counter (register one with
            `keras_atac.models.register_mac_counter`), or an undefined spatial size.
    """
    for cls in type(model).__mro__:
        if cls in _COUNTERS:
            return int(_COUNTERS[cls](model))
    if isinstance(model, keras.Model):
        return sum(count_macs(layer) for layer in model.layers)
    raise ValueError(
        f"count_macs has no rule for layer '{model.name}' of type {type(model).__name__}. "
        "Register one with keras_atac.models.register_mac_counter. "
        f"Known types: {', '.join(sorted(cls.__name__ for cls in _COUNTERS))}."
    )


def _positions(layer, shape, axes):
    """The product of the sizes of `shape` on `axes`, which must be defined."""
    sizes = [shape[axis] for axis in axes]
    if None in sizes:
        raise ValueError(
            f"count_macs needs defined spatial sizes, but layer '{layer.name}' sees "
            f"shape={tuple(shape)}. Build the model with a fixed input_shape."
        )
    return math.prod(sizes)


def _conv_macs(layer):
    """Every output position multiplies the whole kernel (groups are in the kernel's shape)."""
    shape = layer.output.shape
    return _positions(layer, shape, spatial_axes(len(shape), layer.data_format)) * math.prod(
        layer.kernel.shape
    )


for _conv in (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
):
    register_mac_counter(_conv)(_conv_macs)


@register_mac_counter(keras.layers.Dense)
def _dense_macs(layer):
    shape = layer.input.shape
    return _positions(layer, shape, range(1, len(shape) - 1)) * math.prod(layer.kernel.shape)


@register_mac_counter(ATAC)
def _atac_macs(layer):
    shape = layer.input.shape
    positions = 1
    if layer.context == "local":
        positions = _positions(layer, shape, spatial_axes(len(shape), layer.data_format))
    kernels = math.prod(layer.reduce_kernel.shape) + math.prod(layer.expand_kernel.shape)
    return positions * kernels


for _free in (
    keras.layers.InputLayer,
    keras.layers.BatchNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
    AReLU,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.Add,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
    keras.layers.Identity,
):
    register_mac_counter(_free)(lambda layer: 0)
