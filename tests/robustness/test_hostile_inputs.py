"""Hostile inputs for every package layer: odd ranks, shapes, channel counts, dtypes, data
formats, NaN and Inf, integers.

The property: a layer either returns an output of the shape `compute_output_shape` promises,
in its compute dtype and finite for finite input, or raises a ValueError/TypeError from its own
checks, whose message says what it received, before any weight exists. Never a traceback from
deep inside a backend. Run with `--hypothesis-show-statistics` to see how many examples each
layer was given and which were rejected, and why.
"""

import re
import traceback
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import keras_atac
from tests.layer_test_case import to_numpy
from tests.robustness import catalog

pytestmark = pytest.mark.slow

LAYERS = catalog.package_layers()
# Made here, not in the strategy: building a layer touches Python's `random` module (on every
# backend; Hypothesis warned for each layer), which a strategy must leave alone.
TAKES_DATA_FORMAT = {name: catalog.takes_data_format(make) for name, make in LAYERS.items()}
PACKAGE_DIR = str(Path(keras_atac.__file__).parent)

INPUT_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int32", "uint8", "bool")
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# Finite inputs up to the magnitude of real activations (the layer contract's mixed-precision
# test uses the same 1e4); 0 gives constant inputs, whose batch variance is 0.
SCALES = (0.0, 1e-3, 1.0, 1e4)

# Each example builds a layer and runs it eagerly: a few per layer keep this within budget.
EXAMPLES_PER_LAYER = 8


def raised_in_package(error):
    """Whether `error` was raised by code of keras_atac (its own checks)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(PACKAGE_DIR)


def reason(error):
    """The message of `error` up to "Received", without layer names and numbers."""
    message = str(error).split("Received")[0]
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "", message)).strip()


@st.composite
def hostile_calls(draw, name):
    """A layer configuration and an input for it: (kwargs, input array, training)."""
    kwargs = {"dtype": draw(st.sampled_from(POLICIES))}
    if TAKES_DATA_FORMAT[name]:
        kwargs["data_format"] = draw(st.sampled_from(("channels_last", "channels_first")))
    rank = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    if rank >= 2:
        channel_axis = 1 if kwargs.get("data_format") == "channels_first" else -1
        shape = list(shape)
        # Few channels, and enough for the default reductions (16 in SE and CBAM).
        shape[channel_axis] = draw(st.integers(1, 9) | st.integers(16, 20))
        shape = tuple(shape)
    dtype = draw(st.sampled_from(INPUT_DTYPES))
    scale = draw(st.sampled_from(SCALES))
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).normal(size=shape) * scale
    if dtype == "bool":
        x = values > 0
    elif keras.backend.is_int_dtype(dtype):
        info = np.iinfo(dtype)
        x = np.clip(np.round(values), info.min, info.max).astype(dtype)
    elif dtype == "bfloat16":
        # Through the backend, which has bfloat16 (NumPy has not).
        x = keras.ops.convert_to_numpy(keras.ops.cast(values, dtype))
    else:
        x = values.astype(dtype)
    return kwargs, x, draw(st.booleans())


@pytest.mark.parametrize("name", sorted(LAYERS))
# JAX without x64 runs float64 inputs in float32, and says so.
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")
@settings(
    max_examples=EXAMPLES_PER_LAYER,
    deadline=None,
    derandomize=True,
    # The autouse fixture resets global Keras state; each example sets everything it uses.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_input_gives_a_correct_output_or_a_clear_error(name, data):
    kwargs, x, training = data.draw(hostile_calls(name))
    layer = LAYERS[name](**kwargs)
    try:
        outputs = layer(x, training=training)
    except (ValueError, TypeError) as error:
        assert raised_in_package(error), f"not raised by the layer's own checks:\n{error}"
        assert "Received" in str(error), f"the message does not say what it received: {error}"
        assert not layer.weights, "the rejected call left weights behind"
        event(f"rejected, {type(error).__name__}: {reason(error)}")
        return
    event("accepted")
    assert tuple(outputs.shape) == tuple(layer.compute_output_shape(x.shape))
    assert keras.backend.standardize_dtype(outputs.dtype) == layer.compute_dtype
    values = to_numpy(keras.ops.cast(outputs, "float32"))
    assert np.all(np.isfinite(values)), f"non-finite output for finite input of {x.dtype}"


def layer_for(name, input_shape):
    make = LAYERS[name]
    layer = make()
    layer.build(input_shape)
    return layer


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate_without_crashing(name, poison):
    shape = (2, *catalog.EVERY_LAYER_INPUT_SHAPE)
    layer = layer_for(name, shape)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    x[0, 1, 2, 3] = poison
    for training in (False, True):
        outputs = to_numpy(layer(x, training=training))
        assert outputs.shape == tuple(layer.compute_output_shape(shape))
        if outputs.shape == shape:
            assert not np.isfinite(outputs[0, 1, 2, 3]), "the poisoned element came out finite"
        elif np.isnan(poison):
            # A layer that changes the shape (Maxout) may rightly drop -inf (in a max), never NaN.
            assert np.isnan(outputs[0]).any(), "the NaN of the sample was dropped"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_integer_inputs_are_cast_to_the_compute_dtype(name):
    shape = (2, *catalog.EVERY_LAYER_INPUT_SHAPE)
    x = np.random.default_rng(0).integers(-3, 4, size=shape)
    for policy in ("float32", "mixed_float16"):
        layer = LAYERS[name](dtype=policy)
        layer.build(shape)
        outputs = layer(x.astype("int32"))
        assert keras.backend.standardize_dtype(outputs.dtype) == layer.compute_dtype, policy
        expected = layer(x.astype("float32"))
        np.testing.assert_array_equal(to_numpy(outputs), to_numpy(expected), err_msg=policy)
