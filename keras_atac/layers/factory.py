"""One factory for every activation and attention layer the package knows.

`get("atac")`, `get("swish")`, `get(ATAC(reduction=4))`: everything in the package that takes an
activation (host networks, the activation swap, the command line, the benchmarks) builds its
layers here, so this module holds the only table of names.
"""

import functools

import keras

from keras_atac.api_export import keras_atac_export
from keras_atac.layers.apl import APL
from keras_atac.layers.arelu import AReLU
from keras_atac.layers.atac import ATAC
from keras_atac.layers.cbam import CBAM, ChannelAttention, SpatialAttention
from keras_atac.layers.eca import ECA
from keras_atac.layers.gather_excite import GatherExcite
from keras_atac.layers.maxout import Maxout
from keras_atac.layers.mixture import Mixture
from keras_atac.layers.pau import PAU
from keras_atac.layers.prelu import PReLU
from keras_atac.layers.slaf import SLAF
from keras_atac.layers.squeeze_excite import SqueezeExcite
from keras_atac.layers.xunit import XUnit


def _keras_activation(activation, **kwargs):
    # Not `name`: that keyword belongs to the layer (`get("swish", name="act1")`).
    return keras.layers.Activation(activation, **kwargs)


# Canonical name -> callable(**kwargs) returning a new layer.
_BUILDERS = {
    "atac": ATAC,
    "atac_global": functools.partial(ATAC, context="global"),
    "arelu": AReLU,
    # The learnable activations of the AReLU comparison (PReLU per layer or per channel).
    "apl": APL,
    "mixture": Mixture,
    "slaf": SLAF,
    "pau": PAU,
    "maxout": Maxout,
    "prelu": PReLU,
    # The spatial activation and attention modules of the ATAC comparison.
    "xunit": XUnit,
    "se": SqueezeExcite,
    "cbam": CBAM,
    "channel_attention": ChannelAttention,
    "spatial_attention": SpatialAttention,
    "eca": ECA,
    "ge": GatherExcite,
    "ge_theta": functools.partial(GatherExcite, extra_params=True),
    "ge_theta_plus": functools.partial(GatherExcite, extra_params=True, use_mlp=True),
    # Keras activations that have a layer class with arguments of its own.
    "relu": keras.layers.ReLU,
    "relu6": functools.partial(keras.layers.ReLU, max_value=6.0),
    "leaky_relu": keras.layers.LeakyReLU,
    "elu": keras.layers.ELU,
    "softmax": keras.layers.Softmax,
}
# Keras activation functions without parameters, wrapped in an `Activation` layer.
_BUILDERS.update(
    {
        name: functools.partial(_keras_activation, name)
        for name in (
            "selu",
            "gelu",
            "silu",
            "celu",
            "mish",
            "softplus",
            "softsign",
            "tanh",
            "sigmoid",
            "hard_sigmoid",
            "hard_silu",
            "log_sigmoid",
            "exponential",
            "linear",
        )
    }
)

# Alternative spelling -> canonical name. Names are also matched case-insensitively and with
# "-" read as "_", so "Leaky-ReLU" finds "leaky_relu".
_ALIASES = {
    "swish": "silu",
    "hard_swish": "hard_silu",
    "leakyrelu": "leaky_relu",
    "identity": "linear",
    "atac_local": "atac",
    "squeeze_excite": "se",
    "gather_excite": "ge",
}


# The attention modules: layers that refine a feature map and go on the residual branch of a
# block (`attention=` of the host networks), as opposed to activations. Subclasses count too.
_ATTENTION_CLASSES = [SqueezeExcite, CBAM, ChannelAttention, SpatialAttention, ECA, GatherExcite]


@keras_atac_export("keras_atac.layers.register_attention")
def register_attention(layer_class):
    """Marks a layer class as an attention module, so host networks accept it as `attention`.

    An attention module maps a feature map to a refined map of the same shape (e.g.
    `x * gate(x)`); `cifar_resnet(..., attention=...)` and `resnet50_v1b(..., attention=...)`
    put a fresh one on the residual branch of every block. The package's modules (SE, CBAM and
    its two gates, ECA, Gather-Excite) are registered; activations (ATAC, ReLU, ...) are not.
    Usable as a class decorator; returns `layer_class`. Register the class with
    `keras.saving.register_keras_serializable` too, for `.keras` files.

    Example:

    >>> @keras_atac.layers.register_attention
    ... @keras.saving.register_keras_serializable("my_package")
    ... class MyGate(keras.layers.Layer):
    ...     def call(self, x):
    ...         return x * keras.ops.sigmoid(x)
    >>> model = keras_atac.models.cifar_resnet(20, attention=MyGate)
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise ValueError(
            "`layer_class` must be a subclass of keras.layers.Layer. "
            f"Received: layer_class={layer_class!r}"
        )
    if layer_class not in _ATTENTION_CLASSES:
        _ATTENTION_CLASSES.append(layer_class)
    return layer_class


@keras_atac_export("keras_atac.layers.is_attention")
def is_attention(layer):
    """Whether `layer` (a layer instance) is an attention module (see `register_attention`)."""
    return isinstance(layer, tuple(_ATTENTION_CLASSES))


@keras_atac_export("keras_atac.layers.attention_names")
def attention_names():
    """The sorted factory names of attention modules: `"cbam"`, `"eca"`, `"se"`, ..."""
    return sorted(
        name for name in _BUILDERS if issubclass(_built_class(name), tuple(_ATTENTION_CLASSES))
    )


def _built_class(name):
    """The class `_BUILDERS[name]` instantiates (`object` for wrapped Keras functions)."""
    builder = _BUILDERS[name]
    builder = getattr(builder, "func", builder)
    return builder if isinstance(builder, type) else object


@keras_atac_export("keras_atac.layers.names")
def names(include_aliases=False):
    """The sorted names `get` accepts (canonical names; with `include_aliases`, aliases too)."""
    known = set(_BUILDERS)
    if include_aliases:
        known |= set(_ALIASES)
    return sorted(known)


@keras_atac_export("keras_atac.layers.canonical_name")
def canonical_name(identifier):
    """Returns the factory's spelling of an activation name, e.g. `"Swish"` -> `"silu"`.

    The name is lower-cased, `"-"` is read as `"_"` and aliases are resolved (`"LeakyReLU"` ->
    `"leaky_relu"`). A name the factory does not know comes back normalized but otherwise
    unchanged, so any two spellings of one activation compare equal after this call.
    """
    key = identifier.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


@keras_atac_export("keras_atac.layers.get")
def get(identifier, **kwargs):
    """Returns a new layer for an activation or attention identifier.

    Every call returns a fresh layer, never a shared instance, so the result can be placed at
    one site of a model.

    Args:
        identifier: one of
            - a name from `names(include_aliases=True)`, e.g. `"atac"`, `"arelu"`, `"relu"`,
              `"swish"` (matched case-insensitively);
            - a layer instance: a fresh copy is built from its config (the copy gets a new
              unique name unless `name` is passed);
            - a layer class: it is instantiated with `kwargs`;
            - a Keras serialization dict (`{"class_name": ..., "config": ...}`), as written by
              `keras.saving.serialize_keras_object`;
            - any other callable, wrapped in `keras.layers.Activation`.
        **kwargs: arguments of the layer, e.g. `get("atac", reduction=4, name="act1")`.

    Returns:
        A new, unbuilt `keras.layers.Layer`.

    Raises:
        ValueError: for an unknown name; the message lists the known names.
        TypeError: for an identifier of another type.
    """
    if isinstance(identifier, keras.layers.Layer):
        config = identifier.get_config()
        config.pop("name", None)
        config.update(kwargs)
        return type(identifier).from_config(config)
    if isinstance(identifier, type) and issubclass(identifier, keras.layers.Layer):
        return identifier(**kwargs)
    if isinstance(identifier, dict):
        config = dict(identifier)
        config["config"] = {**config.get("config", {}), **kwargs}
        layer = keras.saving.deserialize_keras_object(config)
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"The config dict does not describe a layer. Received: identifier={identifier!r}"
            )
        return layer
    if isinstance(identifier, str):
        name = canonical_name(identifier)
        if name not in _BUILDERS:
            raise ValueError(
                f"Unknown activation or attention layer: identifier={identifier!r}. "
                f"Known names: {', '.join(names(include_aliases=True))}."
            )
        return _BUILDERS[name](**kwargs)
    if callable(identifier):
        return keras.layers.Activation(identifier, **kwargs)
    raise TypeError(
        "`identifier` must be a name, a layer, a layer class, a config dict or a callable. "
        f"Received: identifier={identifier!r} of type {type(identifier).__name__}"
    )
