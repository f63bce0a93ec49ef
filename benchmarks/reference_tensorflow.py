"""The layers' formulas written in plain TensorFlow: `tf.Module`s with `tf.Variable`s.

Each entry of `REFERENCES` maps a factory name to a `tf.Module` class built from a built Keras
layer, whose weights it copies. The modules use TensorFlow's own ops (`tf.nn.moments`,
`tf.nn.batch_normalization`, `tf.nn.relu`, ...) and update the moving statistics with
`assign`, as hand-written TensorFlow training code does.
"""

import tensorflow as tf

from benchmarks.backend_steps import layer_weights


class ReLU(tf.Module):
    def __init__(self, layer):
        super().__init__()

    def __call__(self, x):
        return tf.nn.relu(x)


class _BatchNorm(tf.Module):
    def __init__(self, weights, prefix, layer):
        super().__init__()
        self.gamma = tf.Variable(weights[f"{prefix}/gamma"])
        self.beta = tf.Variable(weights[f"{prefix}/beta"])
        self.moving_mean = tf.Variable(weights[f"{prefix}/moving_mean"], trainable=False)
        self.moving_variance = tf.Variable(weights[f"{prefix}/moving_variance"], trainable=False)
        self.momentum = layer.momentum
        self.epsilon = layer.epsilon

    def __call__(self, z):
        mean, variance = tf.nn.moments(z, axes=list(range(z.shape.rank - 1)))
        self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
        self.moving_variance.assign(
            self.momentum * self.moving_variance + (1 - self.momentum) * variance
        )
        return tf.nn.batch_normalization(z, mean, variance, self.beta, self.gamma, self.epsilon)


class ATAC(tf.Module):
    """x * sigmoid(BN(PW(ReLU(BN(PW(x)))))), the pointwise maps as `tf.matmul` on (M, C)."""

    def __init__(self, layer):
        super().__init__()
        weights = layer_weights(layer)
        self.global_context = layer.context == "global"
        self.use_inner_relu = layer.use_inner_relu
        self.reduce_kernel = tf.Variable(weights["reduce_kernel"])
        self.reduce_norm = _BatchNorm(weights, "reduce_norm", layer)
        self.expand_kernel = tf.Variable(weights["expand_kernel"])
        self.expand_norm = _BatchNorm(weights, "expand_norm", layer)

    def __call__(self, x):
        context = x
        if self.global_context and x.shape.rank > 2:
            context = tf.reduce_mean(x, axis=list(range(1, x.shape.rank - 1)), keepdims=True)
        flat = tf.reshape(context, [-1, x.shape[-1]])
        hidden = self.reduce_norm(tf.matmul(flat, self.reduce_kernel))
        if self.use_inner_relu:
            hidden = tf.nn.relu(hidden)
        logits = self.expand_norm(tf.matmul(hidden, self.expand_kernel))
        return x * tf.reshape(tf.sigmoid(logits), tf.shape(context))


class AReLU(tf.Module):
    def __init__(self, layer):
        super().__init__()
        weights = layer_weights(layer)
        self.alpha = tf.Variable(weights["alpha"])
        self.beta = tf.Variable(weights["beta"])

    def __call__(self, x):
        alpha = tf.clip_by_value(self.alpha, 0.01, 0.99)
        return tf.nn.relu(x) * (1.0 + tf.sigmoid(self.beta)) - tf.nn.relu(-x) * alpha


REFERENCES = {"relu": ReLU, "atac": ATAC, "atac_global": ATAC, "arelu": AReLU}
