"""Backend-specific helpers for tests: gradients through each framework's own autodiff."""

import keras
import numpy as np

#: The `xla` values of `gradients` worth testing: on TensorFlow eagerly and inside
#: `tf.function(jit_compile=True)`, as `model.fit` runs it; JAX compiles every gradient.
XLA_MODES = [False, True] if keras.backend.backend() == "tensorflow" else [False]


def gradients(fn, *arrays, xla=False):
    """Gradients of the scalar `fn(*tensors)` with respect to every argument, as NumPy arrays.

    On JAX the gradient function is compiled with `jax.jit`, so layers are also exercised under
    tracing, where Keras variables must not reach `keras.ops` unconverted. On TensorFlow the
    gradients are taken eagerly, or with `xla=True` inside `tf.function(jit_compile=True)`:
    XLA's path, which some layers compute differently (`keras_atac.layers.depthwise`).
    """
    arrays = [np.asarray(a, dtype="float32") for a in arrays]
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad_fn = jax.jit(jax.grad(fn, argnums=tuple(range(len(arrays)))))
        return [np.asarray(g) for g in grad_fn(*arrays)]
    if backend == "tensorflow":
        import tensorflow as tf

        def tape_gradients(*tensors):
            with tf.GradientTape() as tape:
                tape.watch(tensors)
                value = fn(*tensors)
            return tape.gradient(value, tensors)

        if xla:
            tape_gradients = tf.function(tape_gradients, jit_compile=True)
        return [np.asarray(g) for g in tape_gradients(*[tf.constant(a) for a in arrays])]
    if backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        return [g.detach().cpu().numpy() for g in torch.autograd.grad(fn(*tensors), tensors)]
    raise ValueError(f"Unsupported backend: {backend}")
