"""The one place where the package relies on TensorFlow's private API.

Two things XLA offers have no public TensorFlow name: whether the graph being traced will be
compiled by XLA (`tf.function(jit_compile=True)`, which Keras uses for `jit_compile=True`), and
XLA's variadic reduce, which computes several sums in one pass over their operands (JAX has it
as `jax.lax.reduce`). `keras_atac.layers.xla_sums` uses both, for xUnit's depthwise kernel
gradient and PAU's coefficient gradients; a TensorFlow release that moves either breaks this
module only. It is imported only on the TensorFlow backend.
"""

import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla
from tensorflow.python.framework import ops as framework_ops
from tensorflow.python.ops import control_flow_util


def in_xla_context():
    """Whether the operations being traced now will be compiled by XLA (inside a
    `tf.function(jit_compile=True)`, directly or through the functions it calls); False in
    eager execution and in graphs TensorFlow runs with its own kernels."""
    if tf.executing_eagerly():
        return False
    return control_flow_util.GraphOrParentsInXlaContext(framework_ops.get_default_graph())


def variadic_sum(operands, axis):
    """`[tf.reduce_sum(operand, axis) for operand in operands]`, as one XLA reduce.

    XLA compiles separate reductions of the same shape to separate passes over their inputs;
    one variadic reduce makes a single pass that accumulates every sum. Only under XLA: the
    operation has no TensorFlow kernel of its own.
    """
    count = len(operands)
    scalar = tf.TensorSpec((), operands[0].dtype)

    @tf.function(input_signature=[scalar] * (2 * count), autograph=False)
    def add(*values):
        return [values[index] + values[count + index] for index in range(count)]

    zeros = [tf.zeros((), operands[0].dtype)] * count
    return xla.variadic_reduce(operands, zeros, list(axis), add.get_concrete_function())
