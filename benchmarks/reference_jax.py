"""The layers' formulas written in plain JAX: pure functions of (params, state, x).

Each entry of `REFERENCES` maps a factory name to a function that takes a built Keras layer and
returns a `Reference(apply, params, state)`: `apply(params, state, x)` returns the output and
the new state (BatchNorm moving statistics), in the style of Flax/Haiku's functional layers.
"""

import typing

import jax
import jax.numpy as jnp

from benchmarks.backend_steps import layer_weights


class Reference(typing.NamedTuple):
    apply: typing.Callable
    params: dict
    state: dict


def batch_norm(z, gamma, beta, moving_mean, moving_variance, *, momentum, epsilon):
    """Training-mode BatchNorm over every axis but the last; returns (output, new statistics)."""
    axes = tuple(range(z.ndim - 1))
    mean = jnp.mean(z, axis=axes)
    variance = jnp.var(z, axis=axes)
    output = (z - mean) * (gamma * jax.lax.rsqrt(variance + epsilon)) + beta
    moving = (
        momentum * moving_mean + (1 - momentum) * mean,
        momentum * moving_variance + (1 - momentum) * variance,
    )
    return output, moving


def relu(layer):
    return Reference(lambda params, state, x: (jax.nn.relu(x), state), {}, {})


def atac(layer):
    weights = {name: jnp.asarray(value) for name, value in layer_weights(layer).items()}
    params = {
        name: weights[name]
        for name in (
            "reduce_kernel",
            "expand_kernel",
            "reduce_norm/gamma",
            "reduce_norm/beta",
            "expand_norm/gamma",
            "expand_norm/beta",
        )
    }
    state = {
        f"{norm}/{statistic}": weights[f"{norm}/{statistic}"]
        for norm in ("reduce_norm", "expand_norm")
        for statistic in ("moving_mean", "moving_variance")
    }
    global_context = layer.context == "global"
    options = {"momentum": layer.momentum, "epsilon": layer.epsilon}

    def norm(z, params, state, prefix):
        output, (mean, variance) = batch_norm(
            z,
            params[f"{prefix}/gamma"],
            params[f"{prefix}/beta"],
            state[f"{prefix}/moving_mean"],
            state[f"{prefix}/moving_variance"],
            **options,
        )
        return output, {f"{prefix}/moving_mean": mean, f"{prefix}/moving_variance": variance}

    def apply(params, state, x):
        context = x
        if global_context and x.ndim > 2:
            context = jnp.mean(x, axis=tuple(range(1, x.ndim - 1)), keepdims=True)
        hidden, reduce_state = norm(context @ params["reduce_kernel"], params, state, "reduce_norm")
        if layer.use_inner_relu:
            hidden = jax.nn.relu(hidden)
        logits, expand_state = norm(hidden @ params["expand_kernel"], params, state, "expand_norm")
        return x * jax.nn.sigmoid(logits), {**reduce_state, **expand_state}

    return Reference(apply, params, state)


def arelu(layer):
    weights = layer_weights(layer)
    params = {"alpha": jnp.asarray(weights["alpha"]), "beta": jnp.asarray(weights["beta"])}

    def apply(params, state, x):
        alpha = jnp.clip(params["alpha"], 0.01, 0.99)
        beta = 1.0 + jax.nn.sigmoid(params["beta"])
        return jax.nn.relu(x) * beta - jax.nn.relu(-x) * alpha, state

    return Reference(apply, params, {})


REFERENCES = {"relu": relu, "atac": atac, "atac_global": atac, "arelu": arelu}
