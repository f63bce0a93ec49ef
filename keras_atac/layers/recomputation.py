"""Recomputation that stays in the backward pass when XLA compiles both passes together.

A written-out gradient (`keras.ops.custom_gradient`) or a rematerialization recomputes
intermediates from a layer's input so that the training step need not keep them from the
forward pass to the backward one. Under XLA (JAX; TensorFlow with `jit_compile=True`) that
holds only if the recomputation depends on something the forward pass does not have: XLA sees
one program for both passes, merges the recomputation with the forward pass's identical
operations, or computes it as soon as its inputs exist, and keeps the results in memory.
"""

from keras import ops

from keras_atac.layers import xla_sums


def tied_to_upstream(x, upstream):
    """`x`, for a backward pass that recomputes from it: under XLA `x + 0 * upstream`, which
    XLA cannot compute before the upstream gradient exists.

    Measured in `cifar_resnet(20)` (`docs/benchmarks.md`): without the tie, PAU's written-out
    gradient had its terms kept from the forward pass (6.3x ReLU's peak memory on TensorFlow
    and JAX; 1.0x and 1.1x with the tie, and the step 18% and 26% faster), and ATAC's
    `remat=True` saved no memory on JAX. JAX's `optimization_barrier` (which
    `jax.checkpoint` uses) stops the merging but not the early computation: XLA's CPU
    compiler removes the barrier before it schedules.

    The product with zero stays: IEEE arithmetic gives NaN for `0 * inf`, so XLA does not
    simplify it away. Where the upstream gradient is not finite, so is the recomputed `x`,
    and a gradient that is the upstream gradient times a finite factor is NaN there instead
    of infinite. Outside XLA (PyTorch; TensorFlow without XLA) the gradient function runs
    when it is called, and `x` is returned as it is.

    Args:
        x: the tensor the backward pass recomputes from.
        upstream: the upstream gradient, of the shape of `x` or broadcast against it.
    """
    if not xla_sums.compiled_by_xla():
        return x
    return x + ops.cast(0.0, upstream.dtype) * upstream
