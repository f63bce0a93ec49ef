"""The one place where the package relies on Keras's private API, and the model cloning on it.

`keras_atac.clone_model` (the swap helper) and `keras_atac.fold_batchnorm` (folding) rewrite a
model through `keras.models.clone_model`, and `keras_atac.models.count_macs` walks its graph.
Keras 3 has no public name for the class of Functional models and no public accessors for a
model's graph or for the sublayers of a layer; every such access of the three is here, so that
a Keras release that moves one breaks this module only. The swap helper and folding also share
what tells a model they can rewrite from one they cannot (`check_graph_model`) and the cloning
that copies the weights (`clone_with_weights`).
"""

import keras

# Keras exports no name for the class of Functional models (`keras.Model(inputs, outputs)`).
from keras.src.models.functional import Functional


def is_graph_model(model):
    """Whether `model`'s graph of layers can be rewritten: a Sequential or Functional model
    (`keras.applications` included), not a subclassed model, whose `call` is opaque."""
    return isinstance(model, (keras.Sequential, Functional))


def check_graph_model(model, caller, advice=""):
    """Raises the one "unsupported model" error of `caller` unless `is_graph_model(model)`.

    Args:
        model: what the user passed as the model.
        caller: the public name of the function, e.g. `"keras_atac.clone_model"`.
        advice: a sentence for the user of a subclassed model, appended to the message.

    Raises:
        TypeError: naming the supported kinds of model and the type received.
    """
    if not is_graph_model(model):
        raise TypeError(
            f"{caller} rewrites Functional models (keras.Model(inputs, outputs), "
            "keras.applications included) and Sequential models, whose graph of layers it can "
            f"see. A subclassed model's call() cannot be rewritten{advice}. "
            f"Received: model of type {type(model).__name__}"
        )


def sublayers(layer):
    """Every layer tracked inside `layer`, at any depth, itself excluded.

    Keras has no public accessor for the sublayers of a layer that is not a model.
    """
    return layer._flatten_layers(include_self=False)


# The graph of a Functional model: the attributes `keras.models.clone_model` itself walks.


def graph_nodes(model):
    """The nodes of `model`'s graph in the order they run (one per call of an operation, the
    inputs' included), or None for a model without a graph (subclassed, or an unbuilt
    Sequential model: a built one runs a Functional graph of its own)."""
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    nodes_by_depth = getattr(graph, "_nodes_by_depth", None)
    if nodes_by_depth is None:
        return None
    return [
        node for depth in sorted(nodes_by_depth, reverse=True) for node in nodes_by_depth[depth]
    ]


def producer(tensor):
    """The node of a Functional graph that computed the symbolic `tensor`."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def clone_with_weights(model, clone_function, *, copy_weights=True, **clone_arguments):
    """`keras.models.clone_model(model, ...)` whose layers copied by config keep their weights.

    `keras.models.clone_model` copies no weights, and a copy has none until the new graph
    calls it; so `clone_function(layer, copy)` returns the clone of each layer (and of each raw
    tensor operation, such as `x + 1`), where `copy(layer, copy_function=None)` is the usual
    clone: `copy_function(layer)`, by default a new layer from `layer`'s config, whose weights
    are copied from `layer` once the new model is built. A clone made otherwise (a replacement
    layer, a folded unit, a nested model cloned on its own) is left to `clone_function`.

    Args:
        model: a Functional or Sequential model.
        clone_function: `clone_function(layer, copy) -> clone`.
        copy_weights: whether the weights of the copies are copied (else freshly initialized).
        **clone_arguments: more arguments of `keras.models.clone_model` (`call_function`,
            `recursive`).

    Returns:
        The new model, and the `(original, copy)` pairs of the layers copied by `copy`.

    Raises:
        ValueError: if a copy's weights do not have the shapes of its original's.
    """
    copies = []

    def copy(layer, copy_function=None):
        if copy_function is None:
            new = type(layer).from_config(layer.get_config())
        else:
            new = copy_function(layer)
        if isinstance(layer, keras.layers.Layer):
            copies.append((layer, new))
        return new

    new_model = keras.models.clone_model(
        model, clone_function=lambda layer: clone_function(layer, copy), **clone_arguments
    )
    if copy_weights:
        for original, new in copies:
            if new is not original:
                _copy_weights(original, new)
    return new_model, copies


def _copy_weights(original, new):
    values = original.get_weights()
    shapes = [tuple(weight.shape) for weight in new.weights]
    if shapes != [value.shape for value in values]:
        raise ValueError(
            f"Cannot copy the weights of layer '{original.name}' into its clone: the clone has "
            f"weights of shapes {shapes}, the original {[value.shape for value in values]}. "
            "A `clone_function` that changes a layer's weights needs copy_weights=False."
        )
    new.set_weights(values)
