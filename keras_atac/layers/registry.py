"""The one table of activation and attention layer names, filled by the layers themselves.

A layer class joins it with the `register` decorator (stacked once per preset):

    @register("ge", aliases=("gather_excite",), kind="attention")
    @register("ge_theta", extra_params=True)
    class GatherExcite(keras.layers.Layer): ...

`get("atac")`, `get("swish")`, `get(ATAC(reduction=4))`: everything in the package that takes an
activation (host networks, the activation swap, the command line, the benchmarks) builds its
layers through `get`. This module imports no layer of the package (the layer modules import it),
so it is also where layers look up the activations they take as arguments.
"""

import dataclasses

import keras

from keras_atac.api_export import keras_atac_export

KINDS = ("activation", "attention")

# Keras's activation layer classes, which apply an activation on their own.
KERAS_ACTIVATION_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
)
# Keras activation functions without arguments; the factory wraps each in an `Activation` layer.
KERAS_ACTIVATIONS = (
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


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A registered name: the class it builds and the arguments it presets."""

    layer_class: type
    preset: dict


# Canonical name -> entry; alias -> canonical name.
_ENTRIES = {}
_ALIASES = {}
# The attention modules: layers that refine a feature map and go on the residual branch of a
# block (`attention=` of the host networks), as opposed to activations. Subclasses count too.
_ATTENTION_CLASSES = []


def _normalize(name):
    # Names are matched case-insensitively and with "-" read as "_": "Leaky-ReLU" finds
    # "leaky_relu".
    return name.strip().lower().replace("-", "_")


def _check_layer_class(argument, layer_class):
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise ValueError(
            f"`{argument}` must be a subclass of keras.layers.Layer. "
            f"Received: {argument}={layer_class!r}"
        )


def _check_new_name(argument, name):
    if not isinstance(name, str) or not _normalize(name):
        raise ValueError(f"`{argument}` must be a non-empty string. Received: {argument}={name!r}")
    key = _normalize(name)
    if key in _ENTRIES or key in _ALIASES:
        taken_by = _ENTRIES.get(key) or _ENTRIES[_ALIASES[key]]
        raise ValueError(
            f"The layer name {key!r} is taken (by {taken_by.layer_class.__name__}); "
            f"unregister it first or choose another. Received: {argument}={name!r}"
        )
    return key


@keras_atac_export("keras_atac.layers.register")
def register(name, *, aliases=(), kind="activation", **preset):
    """A class decorator that makes a layer class known to `get` under `name`.

    Stack it for presets: each `register` adds one name whose layer is the class built with the
    `preset` arguments (arguments passed to `get` override them). The name then works
    everywhere a name works: `keras_atac.layers.get`, the host networks' `activation=` (and
    `attention=` for `kind="attention"`), `keras_atac.clone_model(model, name)` and the command
    line. Register the class with `keras.saving.register_keras_serializable` too, so that
    `.keras` files that contain it load.

    Args:
        name: the new name (matched case-insensitively, `"-"` read as `"_"`).
        aliases: other names of the same entry, e.g. `("swish",)` for `"silu"`.
        kind: `"activation"`, or `"attention"` to mark the class (and its subclasses) as an
            attention module, as `register_attention` does.
        **preset: arguments of the class that this name sets, e.g. `context="global"`.

    Returns:
        A decorator that registers the class and returns it unchanged.

    Raises:
        ValueError: naming the name, if it or an alias is already taken, or for a bad argument.

    Example:

    >>> @keras_atac.layers.register("square_gate", aliases=("sqg",))
    ... @keras.saving.register_keras_serializable("my_package")
    ... class SquareGate(keras.layers.Layer):
    ...     def call(self, x):
    ...         return x * keras.ops.sigmoid(x * x)
    >>> model = keras_atac.models.cifar_resnet(20, activation="square_gate")
    """
    aliases = (aliases,) if isinstance(aliases, str) else tuple(aliases)
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")

    def decorator(layer_class):
        _check_layer_class("layer_class", layer_class)
        keys = [_check_new_name("name", name), *(_check_new_name("aliases", a) for a in aliases)]
        if len(set(keys)) != len(keys):
            raise ValueError(
                f"`aliases` repeat a name. Received: name={name!r}, aliases={aliases!r}"
            )
        _ENTRIES[keys[0]] = _Entry(layer_class, dict(preset))
        _ALIASES.update(dict.fromkeys(keys[1:], keys[0]))
        if kind == "attention":
            register_attention(layer_class)
        return layer_class

    return decorator


@keras_atac_export("keras_atac.layers.unregister")
def unregister(name):
    """Removes a name registered with `register` (a canonical name, not an alias), with its
    aliases. The class stays an attention module if it was one.

    Raises:
        ValueError: if `name` is not a registered canonical name.
    """
    key = _normalize(name) if isinstance(name, str) else name
    if key not in _ENTRIES:
        raise ValueError(f"`name` is not a registered layer name. Received: name={name!r}")
    del _ENTRIES[key]
    for alias in [alias for alias, target in _ALIASES.items() if target == key]:
        del _ALIASES[alias]


@keras_atac_export("keras_atac.layers.register_attention")
def register_attention(layer_class):
    """Marks a layer class as an attention module, so host networks accept it as `attention`.

    An attention module maps a feature map to a refined map of the same shape (e.g.
    `x * gate(x)`); `cifar_resnet(..., attention=...)` and `resnet50_v1b(..., attention=...)`
    put a fresh one on the residual branch of every block. The package's modules (SE, CBAM and
    its two gates, ECA, Gather-Excite) are registered; activations (ATAC, ReLU, ...) are not.
    Usable as a class decorator; returns `layer_class`. It adds no name: to make the class
    known to `get` by name as well, use `register(name, kind="attention")`. Register the class
    with `keras.saving.register_keras_serializable` too, for `.keras` files.

    Example:

    >>> @keras_atac.layers.register_attention
    ... @keras.saving.register_keras_serializable("my_package")
    ... class MyGate(keras.layers.Layer):
    ...     def call(self, x):
    ...         return x * keras.ops.sigmoid(x)
    >>> model = keras_atac.models.cifar_resnet(20, attention=MyGate)
    """
    _check_layer_class("layer_class", layer_class)
    if layer_class not in _ATTENTION_CLASSES:
        _ATTENTION_CLASSES.append(layer_class)
    return layer_class


def unregister_attention(layer_class):
    """Undoes `register_attention` (for tests that register a class of their own)."""
    if layer_class in _ATTENTION_CLASSES:
        _ATTENTION_CLASSES.remove(layer_class)


def is_attention_class(layer_class):
    """Whether instances of `layer_class` are attention modules (see `register_attention`)."""
    return isinstance(layer_class, type) and issubclass(layer_class, tuple(_ATTENTION_CLASSES))


@keras_atac_export("keras_atac.layers.is_attention")
def is_attention(layer):
    """Whether `layer` (a layer instance) is an attention module (see `register_attention`)."""
    return is_attention_class(type(layer))


@keras_atac_export("keras_atac.layers.attention_names")
def attention_names():
    """The sorted factory names of attention modules: `"cbam"`, `"eca"`, `"se"`, ..."""
    return sorted(name for name, entry in _ENTRIES.items() if is_attention_class(entry.layer_class))


@keras_atac_export("keras_atac.layers.names")
def names(include_aliases=False):
    """The sorted names `get` accepts (canonical names; with `include_aliases`, aliases too)."""
    known = set(_ENTRIES)
    if include_aliases:
        known |= set(_ALIASES)
    return sorted(known)


@keras_atac_export("keras_atac.layers.layer_class")
def layer_class(identifier):
    """The class of the layer `get(identifier)` returns, without creating a layer.

    This is how the package checks an identifier: it raises what `get` raises. Only a config
    dict is deserialized, the one way to check the arguments it holds.

    Args:
        identifier: anything `get` accepts: a name, a layer, a layer class, a config dict or a
            callable (`keras.layers.Activation`).

    Raises:
        ValueError: for an unknown name; the message lists the known names.
        TypeError: for an identifier of another type, or a dict that describes no layer.
    """
    if isinstance(identifier, str):
        return _entry(identifier).layer_class
    if isinstance(identifier, keras.layers.Layer):
        return type(identifier)
    if isinstance(identifier, type) and issubclass(identifier, keras.layers.Layer):
        return identifier
    if isinstance(identifier, dict):
        return type(get(identifier))
    if callable(identifier):
        return keras.layers.Activation
    raise _type_error(identifier)


@keras_atac_export("keras_atac.layers.layer_classes")
def layer_classes(include_keras=True):
    """The distinct classes behind `names()`: the layers `get` builds by name, sorted by module
    and name. With `include_keras=False`, without Keras's own activation layers (the package's
    layers and those of users' registrations)."""
    classes = {entry.layer_class for entry in _ENTRIES.values()}
    if not include_keras:
        classes -= set(KERAS_ACTIVATION_LAYERS)
    return sorted(classes, key=lambda cls: (cls.__module__, cls.__qualname__))


def name_of(layer_class):
    """The name `layer_class` is registered under without a preset (`SqueezeExcite` -> `"se"`),
    or None if there is none."""
    for name, entry in _ENTRIES.items():
        if entry.layer_class is layer_class and not entry.preset:
            return name
    return None


@keras_atac_export("keras_atac.layers.canonical_name")
def canonical_name(identifier):
    """Returns the factory's spelling of an activation name, e.g. `"Swish"` -> `"silu"`.

    The name is lower-cased, `"-"` is read as `"_"` and aliases are resolved (`"LeakyReLU"` ->
    `"leaky_relu"`). A name the factory does not know comes back normalized but otherwise
    unchanged, so any two spellings of one activation compare equal after this call.
    """
    key = _normalize(identifier)
    return _ALIASES.get(key, key)


def _entry(identifier):
    entry = _ENTRIES.get(canonical_name(identifier))
    if entry is None:
        raise ValueError(
            f"Unknown activation or attention layer: identifier={identifier!r}. "
            f"Known names: {', '.join(names(include_aliases=True))}."
        )
    return entry


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
        **kwargs: arguments of the layer, e.g. `get("atac", reduction=4, name="act1")`; for a
            name, they override the arguments its registration presets.

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
        entry = _entry(identifier)
        return entry.layer_class(**{**entry.preset, **kwargs})
    if callable(identifier):
        return keras.layers.Activation(identifier, **kwargs)
    raise _type_error(identifier)


def _type_error(identifier):
    return TypeError(
        "`identifier` must be a name, a layer, a layer class, a config dict or a callable. "
        f"Received: identifier={identifier!r} of type {type(identifier).__name__}"
    )


# Keras's activations. `Activation` takes its function as the preset `activation`.
register("relu")(keras.layers.ReLU)
register("relu6", max_value=6.0)(keras.layers.ReLU)
register("leaky_relu", aliases=("leakyrelu",))(keras.layers.LeakyReLU)
register("elu")(keras.layers.ELU)
register("softmax")(keras.layers.Softmax)
_KERAS_ALIASES = {"silu": ("swish",), "hard_silu": ("hard_swish",), "linear": ("identity",)}
for _name in KERAS_ACTIVATIONS:
    register(_name, aliases=_KERAS_ALIASES.get(_name, ()), activation=_name)(
        keras.layers.Activation
    )
