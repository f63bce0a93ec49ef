"""Swap the activations of an existing model: `keras_atac.clone_model`.

Replacing the ReLUs of a trained network by ATAC (or any other layer of the package) by hand is
error-prone in Keras 3: assigning `layer.activation` is ignored by already compiled functions,
`keras.models.clone_model` copies no weights, and nested models, shared layers and raw tensor
operations each need care. `clone_model` does it through `keras.models.clone_model`.
"""

import dataclasses
import fnmatch
import warnings

import keras

from keras_atac import _keras_internals
from keras_atac._keras_internals import is_graph_model
from keras_atac.api_export import keras_atac_export
from keras_atac.layers import registry

# The default `match`: the rectifier family. A `ReLU` layer is "relu", or "relu6" when it is
# capped at 6 like MobileNetV2's `ReLU(6.0)`.
RECTIFIERS = ("relu", "relu6", "leaky_relu")

# Layers that apply an activation of their own to their result (`activation=...`).
EMBEDDING_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
    keras.layers.EinsumDense,
)

# Activations a classifier ends with: never replaced where they produce a model output.
CLASSIFIER_ACTIVATIONS = ("softmax", "log_softmax", "sigmoid")

# Why a site was kept (`SwapSite.reason`).
NOT_MATCHED = "not matched"
IDENTITY = "identity activation"
EXCLUDED = "excluded"
CLASSIFIER_OUTPUT = "classifier output"
GATE = "attention gate (its output multiplies another tensor)"
NOT_RECURSIVE = "inside a nested model (recursive=False)"


@keras_atac_export("keras_atac.SwapSite")
@dataclasses.dataclass
class SwapSite:
    """One activation of the input model and what `clone_model` did with it.

    Attributes:
        layer: name of the layer that applies the activation; for an embedded activation, the
            name of the `Conv2D`, `Dense`, ... layer.
        model: name of the model or nested model the layer belongs to.
        activation: the activation's name as the factory spells it (`"relu"`, `"silu"`, ...).
        embedded: whether it is the `activation=` of a convolution or dense layer.
        replaced_by: names of the new layers, one per call of the site; empty if kept.
        reason: why the site was kept (one of the module's reason strings), or None.
    """

    layer: str
    model: str
    activation: str
    embedded: bool
    replaced_by: list = dataclasses.field(default_factory=list)
    reason: str | None = None


@keras_atac_export("keras_atac.SwapReport")
@dataclasses.dataclass
class SwapReport:
    """What `clone_model` replaced and what it kept, site by site, in the model's layer order.

    `str(report)` is a table with one line per site; `verbose=True` prints it.
    """

    model: str
    activation: str
    sites: list

    @property
    def replaced(self):
        """The sites that were replaced."""
        return [site for site in self.sites if site.reason is None]

    @property
    def skipped(self):
        """The sites that were kept, each with its `reason`."""
        return [site for site in self.sites if site.reason is not None]

    def __str__(self):
        lines = [
            f"clone_model('{self.model}', activation={self.activation}): "
            f"{len(self.replaced)} of {len(self.sites)} activation sites replaced."
        ]
        width = max((len(site.layer) for site in self.sites), default=0) + len(" (embedded)")
        for site in self.sites:
            where = site.layer + (" (embedded)" if site.embedded else "")
            outcome = (
                f"kept: {site.reason}"
                if site.reason is not None
                else "replaced by " + ", ".join(site.replaced_by)
            )
            lines.append(f"  {where:<{width}}  {site.activation:<12}  {outcome}")
        return "\n".join(lines)


@keras_atac_export("keras_atac.clone_model")
def clone_model(
    model,
    activation="atac",
    *,
    match=None,
    exclude=None,
    clone_function=None,
    recursive=True,
    copy_weights=True,
    verbose=False,
    return_report=False,
):
    """Returns a copy of a Functional or Sequential model with its activations swapped.

    Every activation *site* of the model is visited: a stand-alone activation layer
    (`Activation`, `ReLU`, `LeakyReLU`, `ELU`, `PReLU`, `Softmax` and the layers of
    `keras_atac.layers`) or the `activation=` of a convolution or dense layer (`Conv1D/2D/3D`,
    their transposes, `DepthwiseConv`, `SeparableConv`, `Dense`, `EinsumDense`). A site that is
    replaced gets a new layer of its own, `keras_atac.layers.get(activation)`, named after the
    site (an activation layer's own name; `"<layer>_activation"` after a convolution or dense
    layer, which is cloned with `activation="linear"`) and with the site's dtype policy and
    trainable flag. A shared activation layer gets a new layer per call.

    Whatever `match` says, these sites are kept:

    - identity (`"linear"`) activations;
    - a softmax or sigmoid that produces an output of the model (the classifier);
    - gates of attention blocks: an activation whose output multiplies another tensor that it
      was not computed from, such as the sigmoid of a squeeze-excite block or the `ReLU(6)` of
      MobileNetV3's hard sigmoid (looking through raw operations such as `* (1 / 6)`).

    Everything else is copied: every layer that is not replaced gets the weights of the original
    (with `copy_weights=True`), its dtype policy, trainable flag and name; shared layers stay
    shared; raw tensor operations (`x + 3`) pass through unchanged; the model-level trainable
    flag and the compile configuration are kept. The input model is not modified.

    Args:
        model: a Functional model (`keras.applications` models included) or a Sequential model.
        activation: what goes in place of each replaced activation: anything
            `keras_atac.layers.get` accepts, e.g. `"atac"`, `"arelu"`, `"relu"`,
            `keras_atac.layers.ATAC(reduction=4)` or a config dict. It is built with the
            global `image_data_format()` unless it says otherwise, e.g.
            `ATAC(data_format="channels_first")`.
        match: which activations to replace: a name or list of names, compared after
            `keras.activations.serialize` and the factory's alias resolution (so `"swish"`
            matches EfficientNet's `"silu"`, `"relu6"` matches `ReLU(6.0)` layers), or a
            predicate `match(layer) -> bool` on the layer of the site. Defaults to the rectifier
            family, `("relu", "relu6", "leaky_relu")`; names given replace that default, so
            ReLUs and GELUs together are `match=("relu", "relu6", "leaky_relu", "gelu")`.
        exclude: sites to keep besides the ones listed above: a layer name, a glob pattern of
            layer names (`"conv2_*"`) or a list of them, or a predicate `exclude(layer) -> bool`.
        clone_function: how the layers that are kept are copied, as in
            `keras.models.clone_model`: `clone_function(layer)` returns the copy. Defaults to
            `type(layer).from_config(layer.get_config())`. It is not called for replaced sites
            nor, with `recursive=True`, for nested Functional and Sequential models.
        recursive: whether nested Functional and Sequential models are rewritten too. With
            False they are copied unchanged.
        copy_weights: whether the layers that are kept get the original's weights. With False
            the new model is freshly initialized, like `keras.models.clone_model`'s.
        verbose: print the report (which site was replaced, which kept and why).
        return_report: return `(new_model, report)`, `report` being a `SwapReport` with the
            `sites`, `replaced` and `skipped` lists of `SwapSite` records.

    Returns:
        The new model, or `(new_model, report)` with `return_report=True`.

    Raises:
        TypeError: for a model that is neither Functional nor Sequential (a subclassed model),
            or an argument of the wrong type.
        ValueError: for an unknown activation name in `activation` or `match`, or a
            `clone_function` that changes the weights of a layer while `copy_weights=True`.

    Example:

    >>> backbone = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    >>> model, report = keras_atac.clone_model(backbone, "atac", return_report=True)
    >>> len(report.replaced)
    49
    >>> efficientnet = keras.applications.EfficientNetB0(weights=None)
    >>> swapped = keras_atac.clone_model(efficientnet, "arelu", match="swish")
    """
    _keras_internals.check_graph_model(
        model,
        "keras_atac.clone_model",
        ": build it with the Functional API, or pass `keras_atac.layers.get(...)` to its "
        "constructor",
    )
    try:
        registry.layer_class(activation)
    except (TypeError, ValueError) as error:
        raise type(error)(
            f"Invalid `activation`: {error} Received: activation={activation!r}"
        ) from error
    for name, value in (
        ("recursive", recursive),
        ("copy_weights", copy_weights),
        ("verbose", verbose),
        ("return_report", return_report),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"`{name}` must be a bool. Received: {name}={value!r}")
    if clone_function is not None and not callable(clone_function):
        raise TypeError(
            "`clone_function` must be a callable or None. "
            f"Received: clone_function={clone_function!r}"
        )

    swapper = _Swapper(
        activation,
        matches=_activation_matcher(match),
        excluded=_layer_filter(exclude),
        clone_function=clone_function,
        recursive=recursive,
        copy_weights=copy_weights,
    )
    swapper.analyze(model)
    new_model = swapper.clone(model)
    swapper.restore_trainable_flags()

    report = SwapReport(model.name, _describe(activation), list(swapper.sites.values()))
    if verbose:
        print(report)
    return (new_model, report) if return_report else new_model


class _Swapper:
    """The state of one `clone_model` call: the sites found, the clones made, the new layers."""

    def __init__(self, activation, *, matches, excluded, clone_function, recursive, copy_weights):
        self.activation = activation
        self.matches = matches
        self.excluded = excluded
        self.clone_function = clone_function
        self.recursive = recursive
        self.copy_weights = copy_weights
        self.sites = {}  # id(layer) -> SwapSite, in the order the layers were found
        self._clones = {}  # id(original layer) -> its clone, so shared layers stay shared
        self._follow = {}  # id(linear clone) -> (original layer, site) whose activation follows
        self._new_layers = {}  # id(new activation layer) -> (original layer, site)
        self._placed = set()  # ids of new activation layers already in the new graph
        self._kept = []  # (original, copy): weights (if copy_weights) and trainable flag copied
        self._added = []  # (site layer, new activation layer): trainable flag copied
        self._models = []  # (original, clone) for every rewritten model, innermost first
        self._taken_names = set()

    def analyze(self, model):
        """Finds every site and decides, once per layer, whether it is replaced."""
        levels, nested_models = [(model, 0)], {id(model)}
        gates, outputs, found_in, names = set(), set(), {}, []
        # Breadth first, so a layer shared between levels is reported at the outermost one.
        for level, depth in levels:
            level_gates, level_outputs = _graph_facts(level)
            gates |= level_gates
            outputs |= level_outputs
            for layer in level.layers:
                names.append((id(layer), layer.name))
                if is_graph_model(layer):
                    if id(layer) not in nested_models:
                        nested_models.add(id(layer))
                        levels.append((layer, depth + 1))
                elif isinstance(layer, keras.Model):
                    warnings.warn(
                        f"Nested model '{layer.name}' of type {type(layer).__name__} is a "
                        "subclassed model: its activations cannot be seen, so clone_model "
                        "copies it unchanged.",
                        stacklevel=3,
                    )
                elif id(layer) not in self.sites:
                    found = _site_activation(layer)
                    if found is not None:
                        self.sites[id(layer)] = SwapSite(layer.name, level.name, *found)
                        found_in[id(layer)] = (layer, depth)
        for layer_id, site in self.sites.items():
            layer, depth = found_in[layer_id]
            site.reason = self._reason(layer, site, depth, gates, outputs)
        # A replaced activation layer leaves the model: its name is free for its successor.
        gone = {
            key for key, site in self.sites.items() if site.reason is None and not site.embedded
        }
        self._taken_names = {name for layer_id, name in names if layer_id not in gone}

    def _reason(self, layer, site, depth, gates, outputs):
        layer_id = id(layer)
        if depth > 0 and not self.recursive:
            return NOT_RECURSIVE
        if not self.matches(layer, site.activation):
            return NOT_MATCHED
        if site.activation == "linear":
            return IDENTITY
        if self.excluded(layer):
            return EXCLUDED
        if site.activation in CLASSIFIER_ACTIVATIONS and layer_id in outputs:
            return CLASSIFIER_OUTPUT
        if layer_id in gates:
            return GATE
        return None

    def clone(self, model):
        """Clones one (nested) model through `keras.models.clone_model`."""
        sequential = isinstance(model, keras.Sequential)
        new_model, copies = _keras_internals.clone_with_weights(
            model,
            self._clone_layer,
            copy_weights=self.copy_weights,
            # Sequential models take no `call_function`: the new layers are inserted afterwards.
            **({} if sequential else {"call_function": self._call}),
        )
        if sequential:
            self._insert_followers(new_model)
        self._kept.extend(copies)
        self._models.append((model, new_model))
        return new_model

    def _clone_layer(self, layer, copy):
        if id(layer) not in self._clones:
            self._clones[id(layer)] = self._new_clone(layer, copy)
        return self._clones[id(layer)]

    def _new_clone(self, layer, copy):
        if not isinstance(layer, keras.layers.Layer):
            # A raw tensor operation such as `x + 3`: an equal, stateless copy.
            return copy(layer)
        site = self.sites.get(id(layer))
        if site is not None and site.reason is None:
            if not site.embedded:
                return self._new_activation(layer, site, layer.name)
            clone = copy(layer, _linear_copy)
            self._follow[id(clone)] = (layer, site)
            return clone
        if self.recursive and is_graph_model(layer):
            return self.clone(layer)
        return copy(layer, self.clone_function)

    def _new_activation(self, site_layer, site, base_name):
        layer = registry.get(
            self.activation, name=self._unique_name(base_name), dtype=site_layer.dtype_policy
        )
        layer.trainable = site_layer.trainable
        site.replaced_by.append(layer.name)
        self._new_layers[id(layer)] = (site_layer, site)
        self._added.append((site_layer, layer))
        return layer

    def _call(self, operation, *args, **kwargs):
        """Calls a clone in the new Functional graph, adding the new activation layers."""
        if id(operation) in self._new_layers:
            if id(operation) in self._placed:
                # A shared activation layer: each of its calls gets a new layer of its own.
                site_layer, site = self._new_layers[id(operation)]
                operation = self._new_activation(site_layer, site, site_layer.name)
            self._placed.add(id(operation))
        outputs = operation(*args, **kwargs)
        if id(operation) in self._follow:
            outputs = self._follower(operation)(outputs)
        return outputs

    def _follower(self, linear_clone):
        site_layer, site = self._follow[id(linear_clone)]
        return self._new_activation(site_layer, site, f"{site_layer.name}_activation")

    def _insert_followers(self, sequential):
        """Rewrites a cloned Sequential model's layer list as `_call` does a Functional graph:
        a shared activation layer gets a new layer for each of its places after the first,
        and each embedded activation's follower is inserted after its layer."""
        layers = sequential.layers
        expanded = []
        for layer in layers:
            if id(layer) in self._new_layers and id(layer) in self._placed:
                site_layer, site = self._new_layers[id(layer)]
                layer = self._new_activation(site_layer, site, site_layer.name)
            self._placed.add(id(layer))
            expanded.append(layer)
            if id(layer) in self._follow:
                expanded.append(self._follower(layer))
        if [id(layer) for layer in expanded] != [id(layer) for layer in layers]:
            for _ in layers:
                sequential.pop(rebuild=False)
            for index, layer in enumerate(expanded):
                sequential.add(layer, rebuild=index == len(expanded) - 1)
        self._placed.update(id(layer) for layer in sequential.layers)

    def _unique_name(self, base):
        name, index = base, 0
        while name in self._taken_names:
            index += 1
            name = f"{base}_{index}"
        self._taken_names.add(name)
        return name

    def restore_trainable_flags(self):
        """Gives every new model and layer the trainable flag of the one it stands for.

        `keras.models.clone_model` drops a Functional model's own flag, and setting it back
        propagates to the sublayers, so the layers' flags are restored after the models'.
        """
        for original, new in [*reversed(self._models), *self._kept, *self._added]:
            if new is not original and new.trainable != original.trainable:
                new.trainable = original.trainable


def _linear_copy(layer):
    """A copy of `layer` with the identity as its embedded activation: the new activation
    follows it as a layer of its own."""
    return type(layer).from_config({**layer.get_config(), "activation": "linear"})


def _describe(activation):
    """A short name of the `activation` argument for the report."""
    if isinstance(activation, str):
        return repr(activation)
    if isinstance(activation, dict):
        return activation.get("class_name", "config")
    return getattr(activation, "__name__", type(activation).__name__)


def _standalone_layer_types():
    """The layer classes that are an activation on their own: Keras's and the registry's."""
    return (*registry.KERAS_ACTIVATION_LAYERS, *registry.layer_classes(include_keras=False))


def _site_activation(layer):
    """`(activation name, embedded)` if `layer` applies an activation, else None."""
    if isinstance(layer, EMBEDDING_LAYERS):
        name = registry.canonical_name(_function_name(layer.activation))
        return None if name == "linear" else (name, True)
    if isinstance(layer, keras.layers.Activation):
        return registry.canonical_name(_function_name(layer.activation)), False
    if isinstance(layer, keras.layers.ReLU):
        return ("relu6" if layer.max_value == 6 else "relu"), False
    if isinstance(layer, _standalone_layer_types()):
        name = registry.name_of(type(layer)) or registry.canonical_name(type(layer).__name__)
        return name, False
    return None


def _function_name(function):
    """The name of an activation function; Keras's own through `keras.activations.serialize`."""
    name = getattr(function, "__name__", type(function).__name__)
    try:
        is_keras_activation = keras.activations.get(name) is function
    except ValueError:
        is_keras_activation = False
    # Serialization gives a built-in activation its one name: "swish" is stored as "silu".
    return keras.activations.serialize(function) if is_keras_activation else name


def _activation_matcher(match):
    """`matches(layer, activation_name) -> bool` for the `match` argument."""
    if callable(match):
        return lambda layer, name: bool(match(layer))
    names = _names("match", RECTIFIERS if match is None else match)
    unknown = [name for name in names if not _is_known_activation(name)]
    if unknown:
        raise ValueError(
            f"`match` names an unknown activation: {', '.join(map(repr, unknown))}. Use Keras "
            f"activation names or names of keras_atac.layers.names(). Received: match={match!r}"
        )
    wanted = {registry.canonical_name(name) for name in names}
    return lambda layer, name: name in wanted


def _is_known_activation(name):
    canonical = registry.canonical_name(name)
    layer_names = {registry.canonical_name(cls.__name__) for cls in _standalone_layer_types()}
    if canonical in set(registry.names()) | layer_names:
        return True
    try:
        keras.activations.get(canonical)
    except ValueError:
        return False
    return True


def _layer_filter(exclude):
    """`excluded(layer) -> bool` for the `exclude` argument."""
    if exclude is None:
        return lambda layer: False
    if callable(exclude):
        return lambda layer: bool(exclude(layer))
    patterns = _names("exclude", exclude)
    return lambda layer: any(fnmatch.fnmatchcase(layer.name, pattern) for pattern in patterns)


def _names(argument, value):
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple | set | frozenset) and all(
        isinstance(name, str) for name in value
    ):
        return tuple(value)
    raise TypeError(
        f"`{argument}` must be a name, a list of names or a callable. "
        f"Received: {argument}={value!r}"
    )


# The graph of a Functional model, read through `_keras_internals` (Keras 3 has no public
# accessors for it).


def _graph_facts(model):
    """Ids of the layers whose output gates another tensor, and of those giving an output."""
    if isinstance(model, keras.Sequential):
        return set(), {id(model.layers[-1])} if model.layers else set()
    output_ids = {id(tensor) for tensor in model.outputs}
    gates, outputs = set(), set()
    for node in _keras_internals.graph_nodes(model):
        if node.is_input:
            continue
        if any(id(tensor) in output_ids for tensor in node.output_tensors):
            outputs.add(id(node.operation))
        operands = node.input_tensors
        # The `Multiply` layer and the `*` / `keras.ops.multiply` operation share this name.
        if type(node.operation).__name__ == "Multiply" and len(operands) > 1:
            for index, operand in enumerate(operands):
                others = operands[:index] + operands[index + 1 :]
                # An operand the others were computed from is the gated signal, not a gate.
                if not any(_depends_on(other, operand) for other in others):
                    gates.add(id(_gate_source(operand)))
    return gates, outputs


def _gate_source(tensor):
    """The layer that computed `tensor`, looking through raw operations with one tensor input.

    MobileNetV3's hard sigmoid is `ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`: its gate is the `ReLU`.
    """
    node = _keras_internals.producer(tensor)
    while not isinstance(node.operation, keras.layers.Layer) and len(node.input_tensors) == 1:
        node = _keras_internals.producer(node.input_tensors[0])
    return node.operation


def _depends_on(tensor, ancestor):
    """Whether `tensor` was computed from `ancestor`."""
    pending, visited = [tensor], set()
    while pending:
        current = pending.pop()
        if current is ancestor:
            return True
        node = _keras_internals.producer(current)
        if id(node) not in visited:
            visited.add(id(node))
            pending.extend(node.input_tensors)
    return False
