"""Several sums over the same axes in one pass, where XLA compiles the computation.

XLA's CPU backend compiles separate reductions of the same shape to separate passes over
their inputs, recomputing any elementwise work fused into them each time; a variadic reduce
(`jax.lax.reduce` on JAX, XLA's `XlaVariadicReduceV2` on TensorFlow) makes one pass that
accumulates every sum. The gradients of xUnit's depthwise kernel (81 sums) and of PAU's ten
coefficients are such sums: one PAU unit's training step at cifar_resnet(20)'s three stages
took 44% less time with them on TensorFlow, 25% less on JAX (`docs/benchmarks.md`). Outside
XLA (PyTorch; TensorFlow without `jit_compile`) the sums are `keras.ops.sum` each.
"""

import keras
import numpy as np
from keras import ops

# Most sums one pass accumulates: XLA's CPU backend keeps them in scalar registers, which
# spill beyond about that many (xUnit's 81 kernel-gradient sums in one pass were 10% to 20%
# slower than in three passes at cifar_resnet(20)'s shapes, on TensorFlow and JAX).
SUMS_PER_PASS = 27


def compiled_by_xla():
    """Whether the operations traced now run under XLA: always on JAX, on TensorFlow inside
    `tf.function(jit_compile=True)` (Keras's `jit_compile=True`), never on PyTorch."""
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend == "tensorflow":
        from keras_atac import _tensorflow_internals

        return _tensorflow_internals.in_xla_context()
    return False


def sums(operands, axis):
    """`[ops.sum(operand, axis) for operand in operands]`, under XLA in passes of at most
    `SUMS_PER_PASS` sums.

    Args:
        operands: tensors of one shape and dtype.
        axis: a tuple of the axes to sum over.
    """
    if not compiled_by_xla():
        return [ops.sum(operand, axis=axis) for operand in operands]
    return [
        total
        for start in range(0, len(operands), SUMS_PER_PASS)
        for total in _variadic_sum(operands[start : start + SUMS_PER_PASS], axis)
    ]


def totals(operands):
    """`[ops.sum(operand) for operand in operands]`: the sum of every element of each.

    Under XLA, the operands are first summed over their axes between the first and the last
    in passes of `sums`, then each over what is left: a single float32 sum over every element
    of a large map would add its terms one after another, and lose digits as its total grows.
    Outside XLA each operand is summed as it comes, so `operands` may be a generator that
    makes them one at a time.
    """
    if not compiled_by_xla():
        return [ops.sum(operand) for operand in operands]
    operands = list(operands)
    inner_axes = tuple(range(1, len(operands[0].shape) - 1))
    if inner_axes:
        operands = sums(operands, inner_axes)
    return [ops.sum(operand) for operand in operands]


def _variadic_sum(operands, axis):
    """`[ops.sum(operand, axis) for operand in operands]` as one variadic XLA reduce."""
    if keras.backend.backend() == "tensorflow":
        from keras_atac import _tensorflow_internals

        return _tensorflow_internals.variadic_sum(operands, axis)
    from jax import lax

    zeros = tuple(np.zeros((), operand.dtype) for operand in operands)
    return lax.reduce(
        tuple(operands),
        zeros,
        lambda left, right: tuple(a + b for a, b in zip(left, right)),
        tuple(axis),
    )
