"""NumPy building blocks of the layers' reference implementations (channels-last, float64)."""

import numpy as np

from tests.layers.test_atac import batch_norm_reference, random_weights


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


def conv_reference(x, kernel, *, strides=1, padding=0, depthwise=False):
    """Cross-correlation of `x` (N, *spatial, C_in), as Keras convolutions compute it.

    Args:
        kernel: (*window, C_in, C_out), or (*window, C, 1) when `depthwise`.
        strides: the same stride on every spatial axis.
        padding: zeros added on both sides of every spatial axis.
    """
    spatial = x.ndim - 2
    x = np.pad(x, [(0, 0)] + [(padding, padding)] * spatial + [(0, 0)])
    window = kernel.shape[:spatial]
    sizes = [(x.shape[1 + a] - window[a]) // strides + 1 for a in range(spatial)]
    outputs = 0.0
    for offset in np.ndindex(*window):
        index = tuple(slice(o, o + strides * (n - 1) + 1, strides) for o, n in zip(offset, sizes))
        patch = x[(slice(None), *index, slice(None))]
        weights = kernel[offset]
        outputs = outputs + (patch * weights[:, 0] if depthwise else patch @ weights)
    return outputs


def weights_by_path(layer, seed=0):
    """Sets random, non-trivial values for all of `layer`'s weights (BatchNorm variances in
    [0.5, 2]) and returns them as float64 arrays keyed by path relative to the layer."""
    values = random_weights(layer, seed)
    return {w.path.split("/", 1)[1]: v.astype("float64") for w, v in zip(layer.weights, values)}


def norm_reference(x, weights, prefix, training):
    """BatchNorm over the last axis with the weights stored under `prefix`."""
    output, _, _ = batch_norm_reference(
        x,
        weights[f"{prefix}/gamma"],
        weights[f"{prefix}/beta"],
        weights[f"{prefix}/moving_mean"],
        weights[f"{prefix}/moving_variance"],
        training,
        -1,
    )
    return output
