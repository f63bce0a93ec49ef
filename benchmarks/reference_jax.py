"""The layers' formulas written in plain JAX: pure functions of (params, state, x).

Each entry of `REFERENCES` maps a factory name to a function that takes a built Keras layer and
returns a `Reference(apply, params, state)`: `apply(params, state, x)` returns the output and
the new state (BatchNorm moving statistics), in the style of Flax/Haiku's functional layers.
Inputs are channels-last; convolutions use `jax.lax.conv_general_dilated` in NHWC.
"""

import typing

import jax
import jax.numpy as jnp

from benchmarks.backend_steps import to_numpy


class Reference(typing.NamedTuple):
    apply: typing.Callable
    params: dict
    state: dict


def _array(variable):
    return jnp.asarray(to_numpy(variable))


def _norm(norm):
    """(params, state, options) of a Keras BatchNormalization."""
    params = {"gamma": _array(norm.gamma), "beta": _array(norm.beta)}
    state = {"mean": _array(norm.moving_mean), "variance": _array(norm.moving_variance)}
    return params, state, {"momentum": norm.momentum, "epsilon": norm.epsilon}


def batch_norm(z, params, state, *, momentum, epsilon):
    """Training-mode BatchNorm over every axis but the last; returns (output, new state)."""
    axes = tuple(range(z.ndim - 1))
    mean = jnp.mean(z, axis=axes)
    variance = jnp.var(z, axis=axes)
    output = (z - mean) * (params["gamma"] * jax.lax.rsqrt(variance + epsilon)) + params["beta"]
    new_state = {
        "mean": momentum * state["mean"] + (1 - momentum) * mean,
        "variance": momentum * state["variance"] + (1 - momentum) * variance,
    }
    return output, new_state


def _dense(layer):
    return {"kernel": _array(layer.kernel), "bias": _array(layer.bias)}


def _apply_dense(params, x):
    return x @ params["kernel"] + params["bias"]


def _conv(x, kernel, groups=1):
    """A "same", stride-1 convolution of an NHWC map with an HWIO kernel."""
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1, 1),
        padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
    )


def _spatial_axes(x):
    return tuple(range(1, x.ndim - 1))


def stateless(function, params):
    """A Reference for an activation without state: `function(params, x)`."""
    return Reference(lambda params, state, x: (function(params, x), state), params, {})


def relu(layer):
    return stateless(lambda params, x: jax.nn.relu(x), {})


def atac(layer):
    reduce_params, reduce_state, reduce_options = _norm(layer.reduce_norm)
    expand_params, expand_state, expand_options = _norm(layer.expand_norm)
    params = {
        "reduce_kernel": _array(layer.reduce_kernel),
        "expand_kernel": _array(layer.expand_kernel),
        "reduce_norm": reduce_params,
        "expand_norm": expand_params,
    }
    state = {"reduce_norm": reduce_state, "expand_norm": expand_state}
    global_context = layer.context == "global"
    use_inner_relu = layer.inner_activation == "relu"

    def apply(params, state, x):
        context = x
        if global_context and x.ndim > 2:
            context = jnp.mean(x, axis=_spatial_axes(x), keepdims=True)
        hidden, reduce_state = batch_norm(
            context @ params["reduce_kernel"],
            params["reduce_norm"],
            state["reduce_norm"],
            **reduce_options,
        )
        if use_inner_relu:
            hidden = jax.nn.relu(hidden)
        logits, expand_state = batch_norm(
            hidden @ params["expand_kernel"],
            params["expand_norm"],
            state["expand_norm"],
            **expand_options,
        )
        return x * jax.nn.sigmoid(logits), {
            "reduce_norm": reduce_state,
            "expand_norm": expand_state,
        }

    return Reference(apply, params, state)


def arelu(layer):
    def function(params, x):
        alpha = jnp.clip(params["alpha"], 0.01, 0.99)
        return jax.nn.relu(x) * (1.0 + jax.nn.sigmoid(params["beta"])) - jax.nn.relu(-x) * alpha

    return stateless(function, {"alpha": _array(layer.alpha), "beta": _array(layer.beta)})


def apl(layer):
    def function(params, x):
        output = jax.nn.relu(x)
        for slope, hinge in zip(params["slopes"], params["hinges"]):
            output = output + slope * jax.nn.relu(hinge - x)
        return output

    return stateless(function, {"slopes": _array(layer.slopes), "hinges": _array(layer.hinges)})


def mixture(layer):
    return stateless(
        lambda params, x: params["p"] * x + (1.0 - params["p"]) * jax.nn.relu(x),
        {"p": _array(layer.p)},
    )


def slaf(layer):
    def function(params, x):
        # Horner's scheme, as jnp.polyval (which wants the highest degree first).
        return jnp.polyval(params["coefficients"][::-1], x)

    return stateless(function, {"coefficients": _array(layer.coefficients)})


def pau(layer):
    def function(params, x):
        numerator = jnp.polyval(params["numerator"][::-1], x)
        weights = jnp.concatenate([jnp.abs(params["denominator"][::-1]), jnp.zeros(1)])
        return numerator / (1.0 + jnp.polyval(weights, jnp.abs(x)))

    return stateless(
        function, {"numerator": _array(layer.numerator), "denominator": _array(layer.denominator)}
    )


def maxout(layer):
    pool_size = layer.pool_size

    def function(params, x):
        return jnp.max(x.reshape(*x.shape[:-1], -1, pool_size), axis=-1)

    return stateless(function, {})


def prelu(layer):
    return stateless(
        lambda params, x: jnp.where(x > 0, x, params["alpha"] * x), {"alpha": _array(layer.alpha)}
    )


def _channel_gate(x, logits):
    """`x * sigmoid(logits)` for (N, C) logits broadcast over the spatial axes."""
    return x * jax.nn.sigmoid(jnp.expand_dims(logits, _spatial_axes(x)))


def _mlp(params, pooled):
    return _apply_dense(params["expand"], jax.nn.relu(_apply_dense(params["reduce"], pooled)))


def se(layer):
    def function(params, x):
        return _channel_gate(x, _mlp(params, jnp.mean(x, axis=_spatial_axes(x))))

    return stateless(function, {"reduce": _dense(layer.reduce), "expand": _dense(layer.expand)})


def _channel_attention(params, x):
    axes = _spatial_axes(x)
    logits = _mlp(params, jnp.mean(x, axis=axes)) + _mlp(params, jnp.max(x, axis=axes))
    return _channel_gate(x, logits)


def channel_attention(layer):
    params = {"reduce": _dense(layer.reduce), "expand": _dense(layer.expand)}
    return stateless(_channel_attention, params)


def _spatial_parts(layer):
    norm_params, norm_state, options = _norm(layer.norm)
    return {"kernel": _array(layer.conv.kernel), "norm": norm_params}, {"norm": norm_state}, options


def _spatial_attention(params, state, x, options):
    pooled = jnp.stack([jnp.max(x, axis=-1), jnp.mean(x, axis=-1)], axis=-1)
    logits, norm_state = batch_norm(
        _conv(pooled, params["kernel"]), params["norm"], state["norm"], **options
    )
    return x * jax.nn.sigmoid(logits), {"norm": norm_state}


def spatial_attention(layer):
    params, state, options = _spatial_parts(layer)
    return Reference(
        lambda params, state, x: _spatial_attention(params, state, x, options), params, state
    )


def cbam(layer):
    spatial_params, spatial_state, options = _spatial_parts(layer.spatial_attention)
    channel = layer.channel_attention
    params = {
        "channel": {"reduce": _dense(channel.reduce), "expand": _dense(channel.expand)},
        "spatial": spatial_params,
    }

    def apply(params, state, x):
        x = _channel_attention(params["channel"], x)
        return _spatial_attention(params["spatial"], state, x, options)

    return Reference(apply, params, spatial_state)


def eca(layer):
    def function(params, x):
        pooled = jnp.mean(x, axis=_spatial_axes(x))[..., None]  # (N, C, 1): C steps
        logits = jax.lax.conv_general_dilated(
            pooled, params["kernel"], (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")
        )
        return _channel_gate(x, logits[..., 0])

    return stateless(function, {"kernel": _array(layer.conv.kernel)})


def gather_excite(layer):
    if layer.extent != "global":
        raise NotImplementedError("the reference covers the global extent (the factory's)")
    params, state, options = {}, {}, {}
    if layer.extra_params:
        norm_params, state, options = _norm(layer.gather_norms[0])
        params["gather"] = {
            "kernel": _array(layer.gather_convs[0].kernel)[..., 0],
            "norm": norm_params,
        }
    if layer.use_mlp:
        params["reduce"], params["expand"] = _dense(layer.reduce), _dense(layer.expand)

    def apply(params, state, x):
        if "gather" in params:
            # A depthwise kernel as large as the map: a weighted sum over the positions.
            context = jnp.einsum("nhwc,hwc->nc", x, params["gather"]["kernel"])
            context, state = batch_norm(context, params["gather"]["norm"], state, **options)
        else:
            context = jnp.mean(x, axis=_spatial_axes(x))
        if "reduce" in params:
            context = _mlp(params, context)
        return _channel_gate(x, context), state

    return Reference(apply, params, state)


def xunit(layer):
    input_params, input_state, input_options = _norm(layer.input_norm)
    gate_params, gate_state, gate_options = _norm(layer.gate_norm)
    kernel = _array(layer.depthwise.kernel)  # (k, k, C, 1) -> HWIO (k, k, 1, C)
    params = {
        "input_norm": input_params,
        "kernel": kernel.reshape(*kernel.shape[:2], 1, -1),
        "gate_norm": gate_params,
    }
    state = {"input_norm": input_state, "gate_norm": gate_state}

    def apply(params, state, x):
        z, input_state = batch_norm(x, params["input_norm"], state["input_norm"], **input_options)
        z = _conv(jax.nn.relu(z), params["kernel"], groups=x.shape[-1])
        z, gate_state = batch_norm(z, params["gate_norm"], state["gate_norm"], **gate_options)
        return x * jnp.exp(-jnp.square(z)), {"input_norm": input_state, "gate_norm": gate_state}

    return Reference(apply, params, state)


REFERENCES = {
    "relu": relu,
    "atac": atac,
    "atac_global": atac,
    "arelu": arelu,
    "apl": apl,
    "mixture": mixture,
    "slaf": slaf,
    "pau": pau,
    "maxout": maxout,
    "prelu": prelu,
    "se": se,
    "channel_attention": channel_attention,
    "spatial_attention": spatial_attention,
    "cbam": cbam,
    "eca": eca,
    "ge": gather_excite,
    "ge_theta": gather_excite,
    "ge_theta_plus": gather_excite,
    "xunit": xunit,
}
