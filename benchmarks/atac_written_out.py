"""ATAC's training gate with its gradient written out: an experiment of issue 14, kept here.

In training, ATAC's gate is

    z1 = PW1(c),  n1 = (z1 - mean(z1)) / sqrt(var(z1) + eps),  h = ReLU(g1 * n1 + b1)
    z2 = PW2(h),  n2 = (z2 - mean(z2)) / sqrt(var(z2) + eps),  s = sigmoid(g2 * n2 + b2)

with the batch statistics taken over every axis but the channels. Here the backward pass of
the whole unit is one custom gradient: each BatchNorm's backward is the closed form (with `R`
the number of reduced positions)

    db = sum(da),  dg = sum(da * n),  dz = g / sqrt(var + eps) * (da - db / R - n * dg / R)

and the pass keeps only the inputs, the two pre-normalization maps `z1`, `z2` and their
statistics, recomputing `n1`, `h`, `n2` and the gate from them. The statistics are the two-pass
mean and biased variance (as `ops.moments` computes them on TensorFlow and JAX), so that
inputs with a large mean do not lose their variance to cancellation.

`keras_atac.layers.ATAC` does not use it, because it does not pay (`python -m
benchmarks.atac_cost`, the row `atac_written_out`, and `docs/benchmarks.md`). With the
pointwise maps as rank-4 products it was 1.4x faster than the automatic gradient on JAX, but
flattening the maps (`layer_utils.pointwise`) gave the automatic gradient the same speed. On
TensorFlow it was as fast as the automatic gradient, and on PyTorch eager slower, since each of
its recomputing elementwise operations is a kernel launch there. Its values, gradients and
batch statistics equal the layer's (`tests/benchmarks/test_atac_written_out.py`, against
NumPy and finite differences, on every backend).
"""

import keras
from keras import ops

from keras_atac.layers import layer_utils


def training_gate(context, weights, *, data_format, epsilon, inner_relu, gated=False):
    """The training-mode gate `s` and the batch statistics of both BatchNorms.

    Args:
        context: the gate's input (ATAC's `X`, or its spatial mean for the global context),
            in the gate's compute dtype.
        weights: `(reduce_kernel, expand_kernel, gamma1, beta1, gamma2, beta2)` as tensors of
            that dtype.
        data_format: `"channels_last"` or `"channels_first"`.
        epsilon: the BatchNorms' epsilon.
        inner_relu: whether the ReLU between the two BatchNorms is applied.
        gated: whether to return the gated input `context * gate` (ATAC's output for the
            local context) instead of the gate; the backward pass then recomputes the gate
            from `z2` instead of keeping it.

    Returns:
        `(gate, mean1, variance1, mean2, variance2)`: the gate (or the gated input) in the
        shape of `context` and the biased batch statistics (shape `(channels,)`), which carry
        no gradient.
    """
    channel_axis = -1 if data_format == "channels_last" else 1
    axes = [axis for axis in range(len(context.shape)) if axis != channel_axis % len(context.shape)]

    def per_channel(vector):
        """A `(channels,)` vector shaped to broadcast against the maps."""
        if data_format == "channels_last":
            return vector
        return ops.reshape(vector, (-1,) + (1,) * (len(context.shape) - 2))

    def statistics(z):
        mean = ops.mean(z, axis=axes)
        variance = ops.mean(ops.square(z - per_channel(mean)), axis=axes)
        return mean, variance

    def normalized(z, mean, variance):
        return (z - per_channel(mean)) * per_channel(ops.rsqrt(variance + epsilon))

    def inner(pre_activation):
        return ops.relu(pre_activation) if inner_relu else pre_activation

    def norm_backward(d_out, norm, gamma, variance, count):
        """The BatchNorm's closed-form backward: the input gradient, gamma's and beta's."""
        d_beta = ops.sum(d_out, axis=axes)
        d_gamma = ops.sum(d_out * norm, axis=axes)
        scale = per_channel(gamma * ops.rsqrt(variance + epsilon))
        d_in = scale * (d_out - per_channel(d_beta / count) - norm * per_channel(d_gamma / count))
        return d_in, d_gamma, d_beta

    def weight_gradient(inputs, d_outputs):
        """The gradient of a pointwise kernel: the channel-by-channel sum over positions."""
        if data_format == "channels_last":
            # As a matrix product of the maps flattened to (positions, channels).
            return ops.matmul(
                ops.transpose(ops.reshape(inputs, (-1, inputs.shape[-1]))),
                ops.reshape(d_outputs, (-1, d_outputs.shape[-1])),
            )
        return ops.tensordot(inputs, d_outputs, axes=(axes, axes))

    def forward(x, reduce_kernel, expand_kernel, gamma1, beta1, gamma2, beta2):
        z1 = layer_utils.pointwise(x, reduce_kernel, data_format)
        mean1, variance1 = statistics(z1)
        z2 = layer_utils.pointwise(
            inner(normalized(z1, mean1, variance1) * per_channel(gamma1) + per_channel(beta1)),
            expand_kernel,
            data_format,
        )
        mean2, variance2 = statistics(z2)
        gate = ops.sigmoid(
            normalized(z2, mean2, variance2) * per_channel(gamma2) + per_channel(beta2)
        )
        # What the backward pass keeps: the inputs, the two pre-normalization maps and their
        # statistics; it recomputes the rest.
        residuals = (x, reduce_kernel, expand_kernel, gamma1, beta1, gamma2, beta2)
        residuals += (z1, mean1, variance1, z2, mean2, variance2)
        output = x * gate if gated else gate
        return (output, mean1, variance1, mean2, variance2), residuals

    def backward(residuals, d_output):
        x, reduce_kernel, expand_kernel, gamma1, beta1, gamma2, beta2 = residuals[:7]
        z1, mean1, variance1, z2, mean2, variance2 = residuals[7:]
        # The number of reduced positions, from the shape at run time (the batch size is
        # unknown when TensorFlow traces a step).
        count = ops.cast(ops.size(z2), z2.dtype) / ops.cast(ops.shape(z2)[channel_axis], z2.dtype)
        n2 = normalized(z2, mean2, variance2)
        s = ops.sigmoid(n2 * per_channel(gamma2) + per_channel(beta2))
        d_gate = d_output * x if gated else d_output
        dz2, d_gamma2, d_beta2 = norm_backward(d_gate * s * (1.0 - s), n2, gamma2, variance2, count)
        n1 = normalized(z1, mean1, variance1)
        a1 = n1 * per_channel(gamma1) + per_channel(beta1)
        h = inner(a1)
        dh = layer_utils.pointwise(dz2, ops.transpose(expand_kernel), data_format)
        da1 = ops.where(a1 > 0, dh, ops.zeros_like(dh)) if inner_relu else dh
        dz1, d_gamma1, d_beta1 = norm_backward(da1, n1, gamma1, variance1, count)
        dx = layer_utils.pointwise(dz1, ops.transpose(reduce_kernel), data_format)
        if gated:
            dx = dx + d_output * s
        return (
            dx,
            weight_gradient(x, dz1),
            weight_gradient(h, dz2),
            d_gamma1,
            d_beta1,
            d_gamma2,
            d_beta2,
        )

    return _function_with_gradient(forward, backward)(context, *weights)


def _function_with_gradient(forward, backward):
    """`forward(*args)[0]`, differentiated by `backward(residuals, output_cotangent)`.

    `forward(*args)` returns `(outputs, residuals)`: a tuple of tensors whose first one alone
    carries a gradient (the others' cotangents are ignored), and the tensors `backward`
    needs. Unlike `keras.ops.custom_gradient`, whose JAX form (`jax.custom_gradient`) traces
    the gradient function during the forward pass, the backward pass here is traced when it
    runs (`jax.custom_vjp`); and the PyTorch form here takes one cotangent per output
    (Keras's passes a single one).
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        @jax.custom_vjp
        def function(*args):
            return forward(*args)[0]

        def function_backward(residuals, cotangents):
            return backward(residuals, cotangents[0])

        function.defvjp(forward, function_backward)
        return function
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.custom_gradient
        def function(*args):
            outputs, residuals = forward(*args)
            return outputs, lambda *cotangents: backward(residuals, cotangents[0])

        return function
    import torch

    class FunctionWithGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            outputs, ctx.residuals = forward(*args)
            ctx.mark_non_differentiable(*outputs[1:])
            return outputs

        @staticmethod
        def backward(ctx, *cotangents):
            return backward(ctx.residuals, cotangents[0])

    return FunctionWithGradient.apply
