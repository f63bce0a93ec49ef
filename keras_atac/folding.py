"""Inference models with the BatchNorms of the package's units folded away: `fold_batchnorm`.

At inference a BatchNormalization is an affine map per channel. Where it follows a linear map
inside a unit of the package (ATAC's two pointwise maps), it folds into that map's kernel and a
bias, which removes every normalisation from the unit.
"""

import keras
import numpy as np

from keras_atac.api_export import keras_atac_export
from keras_atac.layers.atac import ATAC
from keras_atac.layers.folded_atac import FoldedATAC


def batch_norm_affine(norm):
    """A built BatchNormalization's inference map as float64 `(scale, offset)` per channel.

    BN(z) = gamma * (z - moving_mean) / sqrt(moving_variance + epsilon) + beta
          = scale * z + offset
    """

    def numpy(variable, default=None):
        if variable is None:  # gamma or beta of a BatchNormalization without scale or center
            return default
        return keras.ops.convert_to_numpy(variable).astype("float64")

    variance = numpy(norm.moving_variance)
    scale = numpy(norm.gamma, 1.0) / np.sqrt(variance + norm.epsilon)
    return scale, numpy(norm.beta, 0.0) - scale * numpy(norm.moving_mean)


def _fold_atac(layer):
    """`FoldedATAC` in place of a built `ATAC`, and its weights: `K = W * scale`, `b = offset`."""
    folded = FoldedATAC(
        reduction=layer.reduction,
        context=layer.context,
        use_inner_relu=layer.use_inner_relu,
        kernel_initializer=layer.kernel_initializer,
        kernel_regularizer=layer.kernel_regularizer,
        kernel_constraint=layer.kernel_constraint,
        data_format=layer.data_format,
        dtype=layer.dtype_policy,
        name=layer.name,
        trainable=layer.trainable,
    )
    weights = []
    for kernel, norm in (
        (layer.reduce_kernel, layer.reduce_norm),
        (layer.expand_kernel, layer.expand_norm),
    ):
        scale, offset = batch_norm_affine(norm)
        weights += [keras.ops.convert_to_numpy(kernel).astype("float64") * scale, offset]
    return folded, weights


# Layer class -> function(built layer) returning (new unbuilt layer, its weights).
_FOLDERS = {ATAC: _fold_atac}


def _is_graph_model(model):
    """Whether clone_model can rewrite `model`: Sequential, or Functional (inputs -> outputs)."""
    return isinstance(model, keras.Sequential) or (
        isinstance(model, keras.Model) and hasattr(model, "_operations")
    )


@keras_atac_export("keras_atac.fold_batchnorm")
def fold_batchnorm(model):
    """Returns an inference copy of `model` whose ATAC units run with their BatchNorms folded.

    Every `ATAC` layer, in nested models too, is replaced by a `FoldedATAC` whose two
    pointwise kernels absorb the BatchNorms' scales and whose biases absorb their offsets
    (computed in float64). The unit then costs two matrix products with a bias each, a ReLU,
    a sigmoid and a product. Every other layer is copied with its weights, name, dtype policy
    and trainable flag; the input model is not modified.

    The copy computes what `model(x, training=False)` computes (up to float rounding), so it
    is meant for `predict`, export and serving; it saves to and loads from `.keras` files like
    any model of the package. It is not meant for further training: the folded units have no
    BatchNorm left to normalise with batch statistics.

    Args:
        model: a built Functional or Sequential `keras.Model`.

    Returns:
        A new `keras.Model` of the same kind.

    Raises:
        TypeError: for a model that is neither Functional nor Sequential (a subclassed model,
            whose `call` cannot be rewritten) or an object that is not a model.
        ValueError: for a model that is not built.

    Example:

    >>> model = keras_atac.models.cifar_resnet(20, activation="atac")
    >>> # ... train ...
    >>> fast = keras_atac.fold_batchnorm(model)
    >>> fast.predict(images)  # equal to model.predict(images)
    """
    if not isinstance(model, keras.Model) or not _is_graph_model(model):
        raise TypeError(
            "fold_batchnorm rewrites Functional models (keras.Model(inputs, outputs)) and "
            "Sequential models, whose graph of layers it can see. Received: model of type "
            f"{type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"fold_batchnorm needs a built model with trained weights; model '{model.name}' is "
            "not built. Build it (e.g. give the Sequential model a keras.Input) first."
        )
    copies = []  # (new layer, weights it receives once the new model has built it)

    def clone_layer(layer):
        fold = _FOLDERS.get(type(layer))
        if fold is not None:
            new_layer, weights = fold(layer)
        else:
            # Also raw tensor operations of a Functional graph (`x + 1`), which have no weights.
            new_layer = type(layer).from_config(layer.get_config())
            weights = layer.get_weights() if isinstance(layer, keras.layers.Layer) else None
        if weights is not None:
            copies.append((new_layer, weights))
        return new_layer

    folded = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    for new_layer, weights in copies:
        new_layer.set_weights(
            [np.asarray(w).astype(v.dtype) for w, v in zip(weights, new_layer.weights)]
        )
    return folded
