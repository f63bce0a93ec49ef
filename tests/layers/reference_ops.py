"""NumPy building blocks of the layers' reference implementations (channels-last, float64),
and the closed-form parameter budgets the layer tests compare against.

The one support module of the layer tests: a test module imports its references from here,
never from another test module.
"""

import numpy as np

from tests.layer_test_case import parameter_count

# The epsilon of the BatchNormalizations in the package's units (MXNet Gluon's default).
EPSILON = 1e-5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


def batch_norm_reference(x, gamma, beta, mean, variance, training, axis):
    """BatchNorm in NumPy; in training, normalises with the biased batch statistics."""
    reduce_axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    if training:
        mean = x.mean(axis=reduce_axes)
        variance = x.var(axis=reduce_axes)
    shape = [1] * x.ndim
    shape[axis] = -1
    normalized = (x - mean.reshape(shape)) / np.sqrt(variance.reshape(shape) + EPSILON)
    return gamma.reshape(shape) * normalized + beta.reshape(shape), mean, variance


def finite_difference_gradients(function, arrays, step=1e-6):
    """Central differences of the scalar float64 `function(*arrays)` for every entry of every
    array: the independent check of a layer's gradients."""
    arrays = [np.asarray(a, "float64") for a in arrays]
    result = []
    for index, array in enumerate(arrays):
        gradient = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] += step
            above = function(*shifted)
            shifted[index][position] -= 2 * step
            gradient[position] = (above - function(*shifted)) / (2 * step)
        result.append(gradient)
    return result


def random_weights(layer, seed=0):
    """Non-trivial weights (BN statistics included) in the layer's own order."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in layer.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            values.append(rng.uniform(0.5, 2.0, shape))
        else:
            values.append(rng.normal(0.0, 0.7, shape))
    values = [v.astype("float32") for v in values]
    layer.set_weights(values)
    return values


def channel_gate_reference(x, weights, *, axis, pools, prefix=""):
    """x * sigmoid(sum over pools of MLP(pool(x))), MLP = expand(relu(reduce(.)))."""
    x = np.moveaxis(x, axis, -1).astype("float64")
    spatial = tuple(range(1, x.ndim - 1))

    def mlp(v):
        hidden = relu(v @ weights[f"{prefix}reduce/kernel"] + weights[f"{prefix}reduce/bias"])
        return hidden @ weights[f"{prefix}expand/kernel"] + weights[f"{prefix}expand/bias"]

    logits = sum(mlp(pool(x, axis=spatial)) for pool in pools)
    gate = sigmoid(logits).reshape(x.shape[0], *([1] * len(spatial)), x.shape[-1])
    return np.moveaxis(x * gate, -1, axis)


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


# ResNet-50's bottleneck outputs: (channels, spatial size, blocks) per stage.
RESNET50_STAGES = ((256, 56, 3), (512, 28, 4), (1024, 14, 6), (2048, 7, 3))
# ResNet-50 v1b without conv biases (REFERENCE 1.2): 25.557M trainable, 53,120 BN statistics.
RESNET50_PARAMETERS = 25_557_032 + 53_120


def resnet50_added_parameters(make_layer):
    """All parameters that `make_layer()` adds after every bottleneck of ResNet-50."""
    total = 0
    for channels, size, blocks in RESNET50_STAGES:
        layer = make_layer()
        layer.build((None, size, size, channels))
        total += blocks * parameter_count(layer.weights)
    return total
