"""Every layer the package exports, for the checks that must cover all of them.

The list is derived, never written down: every name of `keras_atac.layers.names()` that makes
a layer of the package (so variants such as `"atac_global"` are covered), plus every layer
class exported under `keras_atac.layers` that no name makes, built with its defaults. A layer
added to the package is thereby checked without editing the tests.
"""

import functools

import keras

from keras_atac import layers
from keras_atac.api_export import EXPORTED


def _is_package_layer(layer_cls):
    return layer_cls.__module__.startswith("keras_atac.")


@functools.cache
def package_layers():
    """A dict from case name to a function `(**kwargs) -> new layer`, sorted by name."""
    cases = {}
    for name in layers.names():
        if _is_package_layer(layers.layer_class(name)):
            cases[name] = functools.partial(layers.get, name)
    made = set(layers.layer_classes())
    for path, symbol in EXPORTED.items():
        if (
            path.startswith("keras_atac.layers.")
            and isinstance(symbol, type)
            and issubclass(symbol, keras.layers.Layer)
            and symbol not in made
        ):
            cases[symbol.__name__] = symbol
    return dict(sorted(cases.items()))


def takes_data_format(make):
    """Whether the layer has a channel axis (a `data_format` argument)."""
    return "data_format" in make().get_config()


# Channels-last; 16 channels leave a bottleneck channel for the default reductions (SE's 16).
EVERY_LAYER_INPUT_SHAPE = (6, 6, 16)


def every_layer_model():
    """A functional model that applies every package layer to one input, one output each.

    The outputs are a dict keyed by case name, which is also each layer's name.
    """
    inputs = keras.Input(EVERY_LAYER_INPUT_SHAPE)
    outputs = {name: make(name=name)(inputs) for name, make in package_layers().items()}
    return keras.Model(inputs, outputs, name="every_layer")
