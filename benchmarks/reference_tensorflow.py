"""The layers' formulas written in plain TensorFlow: `tf.Module`s with `tf.Variable`s.

Each entry of `REFERENCES` maps a factory name to a `tf.Module` class built from a built Keras
layer, whose weights it copies. Inputs are channels-last. The modules use TensorFlow's own ops
(`tf.nn.moments`, `tf.nn.batch_normalization`, `tf.nn.depthwise_conv2d`, `tf.math.polyval`,
...) and update the moving statistics with `assign`, as hand-written TensorFlow training code
does.
"""

import tensorflow as tf

from benchmarks.backend_steps import to_numpy


def _variable(variable, trainable=True):
    return tf.Variable(to_numpy(variable), trainable=trainable)


def _spatial_axes(x):
    return list(range(1, x.shape.rank - 1))


def _channel_gate(x, logits):
    """`x * sigmoid(logits)` for (N, C) logits broadcast over the spatial axes."""
    shape = tf.concat([tf.shape(logits)[:1], tf.ones([x.shape.rank - 2], tf.int32), [-1]], 0)
    return x * tf.reshape(tf.sigmoid(logits), shape)


class BatchNorm(tf.Module):
    """Training-mode BatchNorm over every axis but the last, with moving statistics."""

    def __init__(self, norm):
        super().__init__()
        self.gamma = _variable(norm.gamma)
        self.beta = _variable(norm.beta)
        self.moving_mean = _variable(norm.moving_mean, trainable=False)
        self.moving_variance = _variable(norm.moving_variance, trainable=False)
        self.momentum = norm.momentum
        self.epsilon = norm.epsilon

    def __call__(self, z):
        mean, variance = tf.nn.moments(z, axes=list(range(z.shape.rank - 1)))
        self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
        self.moving_variance.assign(
            self.momentum * self.moving_variance + (1 - self.momentum) * variance
        )
        return tf.nn.batch_normalization(z, mean, variance, self.beta, self.gamma, self.epsilon)


class Dense(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.kernel = _variable(layer.kernel)
        self.bias = _variable(layer.bias)

    def __call__(self, x):
        return tf.matmul(x, self.kernel) + self.bias


class ReLU(tf.Module):
    def __init__(self, layer):
        super().__init__()

    def __call__(self, x):
        return tf.nn.relu(x)


class ATAC(tf.Module):
    """x * sigmoid(BN(PW(ReLU(BN(PW(x)))))), the pointwise maps as `tf.matmul` on (M, C)."""

    def __init__(self, layer):
        super().__init__()
        self.global_context = layer.context == "global"
        self.use_inner_relu = layer.inner_activation == "relu"
        self.reduce_kernel = _variable(layer.reduce_kernel)
        self.reduce_norm = BatchNorm(layer.reduce_norm)
        self.expand_kernel = _variable(layer.expand_kernel)
        self.expand_norm = BatchNorm(layer.expand_norm)

    def __call__(self, x):
        context = x
        if self.global_context and x.shape.rank > 2:
            context = tf.reduce_mean(x, axis=_spatial_axes(x), keepdims=True)
        flat = tf.reshape(context, [-1, x.shape[-1]])
        hidden = self.reduce_norm(tf.matmul(flat, self.reduce_kernel))
        if self.use_inner_relu:
            hidden = tf.nn.relu(hidden)
        logits = self.expand_norm(tf.matmul(hidden, self.expand_kernel))
        return x * tf.reshape(tf.sigmoid(logits), tf.shape(context))


class AReLU(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.alpha = _variable(layer.alpha)
        self.beta = _variable(layer.beta)

    def __call__(self, x):
        alpha = tf.clip_by_value(self.alpha, 0.01, 0.99)
        return tf.nn.relu(x) * (1.0 + tf.sigmoid(self.beta)) - tf.nn.relu(-x) * alpha


class APL(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.slopes = _variable(layer.slopes)
        self.hinges = _variable(layer.hinges)

    def __call__(self, x):
        output = tf.nn.relu(x)
        for s in range(self.slopes.shape[0]):
            output = output + self.slopes[s] * tf.nn.relu(self.hinges[s] - x)
        return output


class Mixture(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.p = _variable(layer.p)

    def __call__(self, x):
        return self.p * x + (1.0 - self.p) * tf.nn.relu(x)


class SLAF(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.coefficients = _variable(layer.coefficients)

    def __call__(self, x):
        # tf.math.polyval wants the highest degree first.
        return tf.math.polyval(tf.unstack(self.coefficients[::-1]), x)


class PAU(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.numerator = _variable(layer.numerator)
        self.denominator = _variable(layer.denominator)

    def __call__(self, x):
        numerator = tf.math.polyval(tf.unstack(self.numerator[::-1]), x)
        weights = tf.unstack(tf.abs(self.denominator[::-1])) + [tf.zeros([])]
        return numerator / (1.0 + tf.math.polyval(weights, tf.abs(x)))


class Maxout(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.pool_size = layer.pool_size

    def __call__(self, x):
        grouped = tf.reshape(x, [*x.shape[:-1], -1, self.pool_size])
        return tf.reduce_max(grouped, axis=-1)


class PReLU(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.alpha = _variable(layer.alpha)

    def __call__(self, x):
        return tf.where(x > 0, x, self.alpha * x)


class SqueezeExcite(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.reduce = Dense(layer.reduce)
        self.expand = Dense(layer.expand)

    def excite(self, pooled):
        return self.expand(tf.nn.relu(self.reduce(pooled)))

    def __call__(self, x):
        return _channel_gate(x, self.excite(tf.reduce_mean(x, axis=_spatial_axes(x))))


class ChannelAttention(SqueezeExcite):
    def __call__(self, x):
        axes = _spatial_axes(x)
        logits = self.excite(tf.reduce_mean(x, axes)) + self.excite(tf.reduce_max(x, axes))
        return _channel_gate(x, logits)


class SpatialAttention(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.kernel = _variable(layer.conv.kernel)
        self.norm = BatchNorm(layer.norm)

    def __call__(self, x):
        pooled = tf.stack([tf.reduce_max(x, -1), tf.reduce_mean(x, -1)], axis=-1)
        logits = self.norm(tf.nn.conv2d(pooled, self.kernel, 1, "SAME"))
        return x * tf.sigmoid(logits)


class CBAM(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.channel_attention = ChannelAttention(layer.channel_attention)
        self.spatial_attention = SpatialAttention(layer.spatial_attention)

    def __call__(self, x):
        return self.spatial_attention(self.channel_attention(x))


class ECA(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.kernel = _variable(layer.conv.kernel)  # (k, 1, 1)

    def __call__(self, x):
        pooled = tf.reduce_mean(x, axis=_spatial_axes(x))[..., None]  # (N, C, 1): C steps
        return _channel_gate(x, tf.nn.conv1d(pooled, self.kernel, 1, "SAME")[..., 0])


class GatherExcite(tf.Module):
    def __init__(self, layer):
        super().__init__()
        if layer.extent != "global":
            raise NotImplementedError("the reference covers the global extent (the factory's)")
        self.learned = layer.extra_params
        if self.learned:
            self.kernel = tf.Variable(to_numpy(layer.gather_convs[0].kernel)[..., 0])
            self.norm = BatchNorm(layer.gather_norms[0])
        self.mlp = layer.use_mlp
        if self.mlp:
            self.reduce = Dense(layer.reduce)
            self.expand = Dense(layer.expand)

    def __call__(self, x):
        if self.learned:
            # A depthwise kernel as large as the map: a weighted sum over the positions.
            context = self.norm(tf.einsum("nhwc,hwc->nc", x, self.kernel))
        else:
            context = tf.reduce_mean(x, axis=_spatial_axes(x))
        if self.mlp:
            context = self.expand(tf.nn.relu(self.reduce(context)))
        return _channel_gate(x, context)


class XUnit(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.input_norm = BatchNorm(layer.input_norm)
        self.kernel = _variable(layer.depthwise.kernel)  # (k, k, C, 1)
        self.gate_norm = BatchNorm(layer.gate_norm)

    def __call__(self, x):
        z = tf.nn.relu(self.input_norm(x))
        z = self.gate_norm(tf.nn.depthwise_conv2d(z, self.kernel, [1, 1, 1, 1], "SAME"))
        return x * tf.exp(-tf.square(z))


REFERENCES = {
    "relu": ReLU,
    "atac": ATAC,
    "atac_global": ATAC,
    "arelu": AReLU,
    "apl": APL,
    "mixture": Mixture,
    "slaf": SLAF,
    "pau": PAU,
    "maxout": Maxout,
    "prelu": PReLU,
    "se": SqueezeExcite,
    "channel_attention": ChannelAttention,
    "spatial_attention": SpatialAttention,
    "cbam": CBAM,
    "eca": ECA,
    "ge": GatherExcite,
    "ge_theta": GatherExcite,
    "ge_theta_plus": GatherExcite,
    "xunit": XUnit,
}
