"""Multiply-accumulate (MAC) counts of functional models, layer type by layer type."""

import math

import keras

from keras_atac import _keras_internals
from keras_atac import layers as package_layers
from keras_atac.api_export import keras_atac_export
from keras_atac.layers import registry
from keras_atac.utils import checks
from keras_atac.utils.checks import spatial_axes

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

    The package's other layers follow the same rule: their convolutions (xUnit's depthwise
    `k x k`, ECA's 1-D convolution over channels, CBAM's spatial convolution, Gather-Excite's
    depthwise gathers, GE-θ's map-sized gather included) and dense maps (the SE-style MLPs of
    SE, CBAM's channel attention, which applies it twice, and GE-θ⁺) are counted; their
    element-wise parts (the learnable activations APL, Mixture, SLAF, PAU, PReLU, Maxout; the
    gates; pooling and normalisation) count zero. The folded units count as their originals.

    Nested functional models are counted layer by layer, and every call of a layer counts, at
    the shapes of that call: a layer shared between several sites is counted once per call.

    Args:
        model: a built functional or sequential `keras.Model` (or a single layer that has
            been called on a symbolic input) whose sizes are all defined.

    Returns:
        The number of MACs, an `int`.

    Raises:
        ValueError: for a layer type without a counter (register one with
            `keras_atac.models.register_mac_counter`), or an undefined spatial size.
    """
    counter = _counter(model)
    if counter is not None:
        return int(counter(model))
    if isinstance(model, keras.Model):
        calls = _layer_calls(model)
        if calls is None:  # a subclassed model: its layers at their first calls
            return sum(count_macs(layer) for layer in model.layers)
        total = 0
        for layer, node in calls:
            counter = _counter(layer)
            if counter is None or isinstance(layer, keras.Model):
                total += count_macs(layer)
            else:
                total += int(counter(_Call(layer, node)))
        return total
    raise ValueError(
        f"count_macs has no rule for layer '{model.name}' of type {type(model).__name__}. "
        "Register one with keras_atac.models.register_mac_counter. "
        f"Known types: {', '.join(sorted(cls.__name__ for cls in _COUNTERS))}."
    )


def _counter(layer):
    for cls in type(layer).__mro__:
        if cls in _COUNTERS:
            return _COUNTERS[cls]
    return None


def _layer_calls(model):
    """`(layer, node)` for every call of a layer in a Functional (or built Sequential) model's
    graph, or None for a model without one."""
    nodes = _keras_internals.graph_nodes(model)
    if nodes is None:
        return None
    return [
        (node.operation, node)
        for node in nodes
        if not node.is_input and isinstance(node.operation, keras.layers.Layer)
    ]


class _Call:
    """A layer as seen by a counter at one of its calls: `input` and `output` are that call's
    symbolic tensors, every other attribute is the layer's."""

    def __init__(self, layer, node):
        self._layer = layer
        self.input = node.input_tensors[0] if len(node.input_tensors) == 1 else node.input_tensors
        self.output = (
            node.output_tensors[0] if len(node.output_tensors) == 1 else node.output_tensors
        )

    def __getattr__(self, name):
        return getattr(self._layer, name)


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


@register_mac_counter(package_layers.ATAC)
@register_mac_counter(package_layers.FoldedATAC)
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
    *registry.KERAS_ACTIVATION_LAYERS,
    package_layers.AReLU,
    package_layers.APL,
    package_layers.Mixture,
    package_layers.SLAF,
    package_layers.PAU,
    package_layers.PReLU,
    package_layers.Maxout,
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


def _spatial_positions(layer):
    shape = layer.input.shape
    return _positions(layer, shape, spatial_axes(len(shape), layer.data_format))


@register_mac_counter(package_layers.XUnit)
@register_mac_counter(package_layers.FoldedXUnit)
def _xunit_macs(layer):
    """The depthwise `k x k` convolution at every position ("same" padding)."""
    return _spatial_positions(layer) * math.prod(layer.depthwise.kernel.shape)


def _mlp_macs(layer):
    """The SE-style bottleneck `C -> Ci -> C` on one pooled vector."""
    return math.prod(layer.reduce.kernel.shape) + math.prod(layer.expand.kernel.shape)


register_mac_counter(package_layers.SqueezeExcite)(_mlp_macs)


@register_mac_counter(package_layers.ChannelAttention)
def _channel_attention_macs(layer):
    """The shared MLP on the average- and on the max-pooled vector."""
    return 2 * _mlp_macs(layer)


@register_mac_counter(package_layers.SpatialAttention)
def _spatial_attention_macs(layer):
    """The `k x k` convolution from the two pooled maps to one, at every position."""
    return _spatial_positions(layer) * math.prod(layer.conv.kernel.shape)


@register_mac_counter(package_layers.CBAM)
def _cbam_macs(layer):
    shape = layer.input.shape
    positions = _positions(
        layer, shape, spatial_axes(len(shape), layer.spatial_attention.data_format)
    )
    return 2 * _mlp_macs(layer.channel_attention) + positions * math.prod(
        layer.spatial_attention.conv.kernel.shape
    )


@register_mac_counter(package_layers.ECA)
def _eca_macs(layer):
    """The `k`-tap convolution over the `C` pooled channels."""
    return layer.input.shape[checks.channel_axis(layer.data_format)] * math.prod(
        layer.conv.kernel.shape
    )


@register_mac_counter(package_layers.GatherExcite)
def _gather_excite_macs(layer):
    """The learned gather's depthwise convolutions at their output positions (the map-sized
    global kernel once per channel and position), and the MLP at every gathered position."""
    shape = tuple(layer.input.shape)
    _positions(layer, shape, spatial_axes(len(shape), layer.data_format))
    macs = 0
    for conv in layer.gather_convs:
        if layer.extent != "global":
            shape = conv.compute_output_shape(layer._padded_shape(shape, 1))
        else:
            shape = conv.compute_output_shape(shape)
        macs += _positions(layer, shape, spatial_axes(len(shape), layer.data_format)) * math.prod(
            conv.kernel.shape
        )
    if layer.use_mlp:
        if not layer.extra_params:
            shape = layer._gathered_shape(shape)
        positions = _positions(layer, shape, spatial_axes(len(shape), layer.data_format))
        macs += positions * _mlp_macs(layer)
    return macs
