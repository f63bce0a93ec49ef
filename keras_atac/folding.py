"""Inference models with the BatchNorms of the package's units folded away: `fold_batchnorm`.

At inference a BatchNormalization is an affine map per channel. Where it follows a linear map
inside a unit of the package (ATAC's two pointwise maps, xUnit's depthwise convolution), it
folds into that map's kernel and a bias; elsewhere (xUnit's first BatchNorm, before a ReLU) it
becomes a plain scale and offset, without statistics.
"""

import warnings

import keras
import numpy as np

from keras_atac import _keras_internals
from keras_atac.api_export import keras_atac_export
from keras_atac.layers.atac import ATAC
from keras_atac.layers.folded_atac import FoldedATAC
from keras_atac.layers.folded_xunit import FoldedXUnit
from keras_atac.layers.xunit import XUnit


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable).astype("float64")


def batch_norm_affine(norm):
    """A built BatchNormalization's inference map as float64 `(scale, offset)` per channel.

    BN(z) = gamma * (z - moving_mean) / sqrt(moving_variance + epsilon) + beta
          = scale * z + offset
    """
    # gamma or beta is None for a BatchNormalization built with scale=False or center=False.
    gamma = 1.0 if norm.gamma is None else _numpy(norm.gamma)
    beta = 0.0 if norm.beta is None else _numpy(norm.beta)
    scale = gamma / np.sqrt(_numpy(norm.moving_variance) + norm.epsilon)
    return scale, beta - scale * _numpy(norm.moving_mean)


def _fold_atac(layer):
    """`FoldedATAC` in place of a built `ATAC`: `K = W * scale` per output column, `b = offset`."""
    folded = FoldedATAC(
        reduction=layer.reduction,
        context=layer.context,
        inner_activation=layer.inner_activation,
        kernel_initializer=layer.kernel_initializer,
        kernel_regularizer=layer.kernel_regularizer,
        kernel_constraint=layer.kernel_constraint,
        **_base_arguments(layer),
    )
    reduce_scale, reduce_offset = batch_norm_affine(layer.reduce_norm)
    expand_scale, expand_offset = batch_norm_affine(layer.expand_norm)
    weights = {
        "reduce_kernel": _numpy(layer.reduce_kernel) * reduce_scale,
        "reduce_bias": reduce_offset,
        "expand_kernel": _numpy(layer.expand_kernel) * expand_scale,
        "expand_bias": expand_offset,
    }
    return folded, weights


def _fold_xunit(layer):
    """`FoldedXUnit` in place of a built `XUnit`: the first BatchNorm as a scale and an offset,
    the second folded into the depthwise kernel (each channel's filter scaled) and a bias."""
    folded = FoldedXUnit(
        kernel_size=layer.kernel_size,
        depthwise_initializer=layer.depthwise_initializer,
        depthwise_regularizer=layer.depthwise_regularizer,
        depthwise_constraint=layer.depthwise_constraint,
        **_base_arguments(layer),
    )
    input_scale, input_offset = batch_norm_affine(layer.input_norm)
    gate_scale, gate_offset = batch_norm_affine(layer.gate_norm)
    weights = {
        "scale": input_scale,
        "offset": input_offset,
        # (*window, C, 1): channel c's filter is scaled by gate_scale[c].
        "depthwise/kernel": _numpy(layer.depthwise.kernel) * gate_scale[:, None],
        "depthwise/bias": gate_offset,
    }
    return folded, weights


def _base_arguments(layer):
    return {
        "data_format": layer.data_format,
        "dtype": layer.dtype_policy,
        "name": layer.name,
        "trainable": layer.trainable,
    }


# Layer class -> function(built layer) returning (new unbuilt layer, {weight path: value}),
# the paths relative to the new layer.
_FOLDERS = {ATAC: _fold_atac, XUnit: _fold_xunit}


def _warn_about_hidden_units(layer):
    """Warns when `layer`, copied as it is, holds units that are then left unfolded.

    A subclassed model or a custom layer has a `call` that cannot be rewritten, so the ATAC
    and xUnit layers it calls stay as they are (as `keras_atac.clone_model` warns about the
    activations of such a model).
    """
    if not isinstance(layer, keras.layers.Layer) or _keras_internals.is_graph_model(layer):
        return
    hidden = [inner.name for inner in _keras_internals.sublayers(layer) if type(inner) in _FOLDERS]
    if hidden:
        warnings.warn(
            f"fold_batchnorm cannot rewrite layer '{layer.name}' of type "
            f"{type(layer).__name__} (a subclassed model or custom layer, whose call() it "
            f"cannot see into): its units {', '.join(map(repr, hidden))} are copied unfolded. "
            "Build it with the Functional API to fold them.",
            stacklevel=3,
        )


@keras_atac_export("keras_atac.fold_batchnorm")
def fold_batchnorm(model):
    """Returns an inference copy of `model` whose ATAC and xUnit units run with folded BatchNorms.

    Every `ATAC` layer, in nested Functional and Sequential models too, is replaced by a
    `FoldedATAC` whose two pointwise kernels absorb the BatchNorms' scales and whose biases
    absorb their offsets (computed in float64): the unit then costs two matrix products with a
    bias each, a ReLU, a sigmoid and a product. Every `XUnit` is replaced by a `FoldedXUnit`,
    whose depthwise convolution absorbs the BatchNorm after it. Every other layer is copied with
    its weights, name, dtype policy and trainable flag; the input model is not modified. A
    nested subclassed model or custom layer is copied as it is, since its `call` cannot be
    rewritten: the ATAC and xUnit layers inside it stay unfolded, and a warning names them.

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
    _keras_internals.check_graph_model(model, "fold_batchnorm")
    if not model.built:
        raise ValueError(
            f"fold_batchnorm needs a built model with trained weights; model '{model.name}' is "
            "not built. Build it (e.g. give the Sequential model a keras.Input) first."
        )
    folds = []  # (folded layer, {weight path: value})

    def clone_layer(layer, copy):
        fold = _FOLDERS.get(type(layer))
        if fold is None:
            _warn_about_hidden_units(layer)
            return copy(layer)
        new_layer, weights = fold(layer)
        folds.append((new_layer, weights))
        return new_layer

    folded, _ = _keras_internals.clone_with_weights(model, clone_layer, recursive=True)
    for new_layer, weights in folds:
        for variable in new_layer.weights:
            relative_path = variable.path.removeprefix(f"{new_layer.path}/")
            variable.assign(weights[relative_path].astype(variable.dtype))
    return folded
