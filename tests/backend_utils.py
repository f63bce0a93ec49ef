"""Backend-specific helpers for tests: gradients through each framework's own autodiff."""

import keras
import numpy as np


def gradients(fn, *arrays):
    """Gradients of the scalar `fn(*tensors)` with respect to every argument, as NumPy arrays.

    On JAX the gradient function is compiled with `jax.jit`, so layers are also exercised under
    tracing, where Keras variables must not reach `keras.ops` unconverted.
    """
    arrays = [np.asarray(a, dtype="float32") for a in arrays]
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad_fn = jax.jit(jax.grad(fn, argnums=tuple(range(len(arrays)))))
        return [np.asarray(g) for g in grad_fn(*arrays)]
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
        return [np.asarray(g) for g in tape.gradient(value, tensors)]
    if backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        return [g.detach().cpu().numpy() for g in torch.autograd.grad(fn(*tensors), tensors)]
    raise ValueError(f"Unsupported backend: {backend}")
