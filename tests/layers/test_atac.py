import keras
import numpy as np
import pytest

from keras_atac.layers import ATAC
from tests.backend_utils import XLA_MODES, gradients
from tests.layer_test_case import LayerTestCase, parameter_count, to_numpy
from tests.layers.reference_ops import (
    batch_norm_reference,
    finite_difference_gradients,
    random_weights,
)

MOMENTUM = 0.9


def atac_reference(x, weights, *, training, context="local", use_inner_relu=True, axis=-1):
    """ATAC(X) = X * sigmoid(BN2(PW2(ReLU(BN1(PW1(X)))))), written directly from the paper.

    Returns the output and the BatchNorms' updated moving statistics.
    """
    (w1, w2, g1, b1, mean1, var1, g2, b2, mean2, var2) = weights
    x_last = np.moveaxis(x, axis, -1).astype("float64")
    context_map = x_last
    if context == "global":
        context_map = x_last.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=True)
    h, batch_mean1, batch_var1 = batch_norm_reference(
        context_map @ w1, g1, b1, mean1, var1, training, -1
    )
    if use_inner_relu:
        h = np.maximum(h, 0.0)
    h, batch_mean2, batch_var2 = batch_norm_reference(h @ w2, g2, b2, mean2, var2, training, -1)
    output = np.moveaxis(x_last / (1.0 + np.exp(-h)), -1, axis)
    moving = [
        MOMENTUM * old + (1 - MOMENTUM) * new
        for old, new in zip(
            (mean1, var1, mean2, var2), (batch_mean1, batch_var1, batch_mean2, batch_var2)
        )
    ]
    return output, moving


def reference_order(layer, values):
    """Weights as (w1, w2, g1, b1, mean1, var1, g2, b2, mean2, var2), looked up by path."""
    by_name = {w.path.split("/", 1)[1]: v for w, v in zip(layer.weights, values)}
    names = ["reduce_kernel", "expand_kernel"] + [
        f"{norm}/{part}"
        for norm in ("reduce_norm", "expand_norm")
        for part in ("gamma", "beta", "moving_mean", "moving_variance")
    ]
    return [by_name[n].astype("float64") for n in names]


class TestATAC(LayerTestCase):
    layer_cls = ATAC
    input_shape = (3, 5, 6, 8)
    expected_trainable_params = 2 * 8 * 4 + 2 * 4 + 2 * 8
    expected_non_trainable_params = 2 * 4 + 2 * 8


class TestATACGlobalContext(TestATAC):
    init_kwargs = {"context": "global"}


class TestATACWithoutInnerReLU(TestATAC):
    init_kwargs = {"inner_activation": None, "reduction": 4}
    # Without the ReLU, PW2 is linear in the first BatchNorm's output: its offset is removed by
    # the second BatchNorm's batch mean (zero gradient), and the second BatchNorm's input has a
    # zero batch mean (the moving mean stays 0).
    unchanged_by_training = ("reduce_norm/beta", "expand_norm/moving_mean")
    expected_trainable_params = 2 * 8 * 2 + 2 * 2 + 2 * 8
    expected_non_trainable_params = 2 * 2 + 2 * 8


class TestATACSynchronized(TestATAC):
    init_kwargs = {"synchronized": True}


class TestATACRemat(TestATAC):
    """The layer contract (serialization, mixed precision, layouts, training updates) with the
    gate recomputed in the backward pass."""

    init_kwargs = {"remat": True}


class TestATACAfterDense(TestATAC):
    input_shape = (6, 8)


class TestATACAfterConv3D(TestATAC):
    input_shape = (2, 3, 4, 5, 8)


@pytest.mark.parametrize("context", ["local", "global"])
@pytest.mark.parametrize("use_inner_relu", [True, False])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "shape, data_format",
    [
        ((4, 6), "channels_last"),
        ((3, 7, 6), "channels_last"),
        ((2, 4, 5, 6), "channels_last"),
        ((2, 6, 4, 5), "channels_first"),
        ((2, 6, 3, 2, 4), "channels_first"),
    ],
)
def test_matches_numpy_reference(shape, data_format, training, use_inner_relu, context):
    inner_activation = "relu" if use_inner_relu else None
    layer = ATAC(context=context, inner_activation=inner_activation, data_format=data_format)
    layer.build(shape)
    values = reference_order(layer, random_weights(layer))
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    expected, expected_moving = atac_reference(
        x, values, training=training, context=context, use_inner_relu=use_inner_relu, axis=axis
    )
    np.testing.assert_allclose(
        to_numpy(layer(x, training=training)), expected, rtol=1e-4, atol=1e-5
    )

    moving = [
        to_numpy(getattr(norm, stat))
        for norm in (layer.reduce_norm, layer.expand_norm)
        for stat in ("moving_mean", "moving_variance")
    ]
    if training:
        for actual, wanted in zip(moving, expected_moving):
            np.testing.assert_allclose(actual, wanted, rtol=1e-4, atol=1e-5)
    else:
        for actual, original in zip(moving, (values[4], values[5], values[8], values[9])):
            np.testing.assert_allclose(actual, original, rtol=1e-6)


@pytest.mark.parametrize("xla", XLA_MODES)
@pytest.mark.parametrize(
    "context, inner_activation, data_format, shape",
    [
        ("local", "relu", "channels_last", (3, 2, 3, 4)),
        ("local", None, "channels_first", (3, 4, 2, 3)),
        ("global", "relu", "channels_last", (3, 2, 3, 4)),
        # A sequence: the gate is computed on the (positions, channels) flattening of any rank.
        ("local", "relu", "channels_last", (3, 5, 4)),
    ],
)
def test_training_gradients_match_finite_differences(
    context, inner_activation, data_format, shape, xla
):
    """The input and weight gradients in training (batch statistics, whose gradient flows
    through the mean and variance) against central differences of the NumPy reference."""
    axis = -1 if data_format == "channels_last" else 1
    layer = ATAC(context=context, inner_activation=inner_activation, data_format=data_format)
    layer.build(shape)
    values = random_weights(layer)
    rng = np.random.default_rng(6)
    x = rng.normal(size=shape).astype("float32")
    cotangent = rng.normal(size=shape)
    positions = {id(weight): index for index, weight in enumerate(layer.weights)}
    trainable_indices = [positions[id(v)] for v in layer.trainable_variables]
    non_trainable = [keras.ops.convert_to_tensor(v) for v in layer.non_trainable_variables]

    def loss(x, *trainable_values):
        weights = list(values)
        for index, value in zip(trainable_indices, trainable_values):
            weights[index] = value
        output, _ = atac_reference(
            x,
            reference_order(layer, weights),
            training=True,
            context=context,
            use_inner_relu=inner_activation == "relu",
            axis=axis,
        )
        return float(np.sum(output * cotangent))

    def backend_loss(x, *trainable_values):
        outputs, _ = layer.stateless_call(list(trainable_values), non_trainable, x, training=True)
        return keras.ops.sum(outputs * keras.ops.convert_to_tensor(cotangent.astype("float32")))

    trainable_values = [values[index] for index in trainable_indices]
    actual = gradients(backend_loss, x, *trainable_values, xla=xla)
    expected = finite_difference_gradients(loss, [x, *trainable_values])
    names = ["inputs", *(v.path for v in layer.trainable_variables)]
    for name, got, wanted in zip(names, actual, expected):
        # A floor on the scale: an exactly zero gradient (the first BatchNorm's beta without
        # the inner ReLU, removed by the second BatchNorm's mean) leaves float32 rounding.
        scale = max(np.abs(wanted).max(), 1e-2)
        np.testing.assert_allclose(got, wanted, rtol=2e-3, atol=2e-4 * scale, err_msg=name)


@pytest.mark.parametrize("context", ["local", "global"])
def test_gate_is_the_output_divided_by_the_input(context):
    layer = ATAC(context=context)
    shape = (2, 3, 4, 6)
    layer.build(shape)
    values = reference_order(layer, random_weights(layer))
    x = np.random.default_rng(2).uniform(0.5, 2.0, shape).astype("float32")
    expected, _ = atac_reference(x, values, training=False, context=context)
    gate = to_numpy(layer.gate_map(x, training=False))
    assert gate.shape == ((2, 3, 4, 6) if context == "local" else (2, 1, 1, 6))
    np.testing.assert_allclose(x * gate, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels", [2, 3, 16, 64])
def test_parameter_formula_for_reduction_two(channels):
    layer = ATAC()
    layer.build((None, 4, 4, channels))
    inner = channels // 2
    assert (
        parameter_count(layer.trainable_weights) == 2 * channels * inner + 2 * inner + 2 * channels
    )
    assert parameter_count(layer.non_trainable_weights) == 2 * inner + 2 * channels
    if channels % 2 == 0:
        assert parameter_count(layer.trainable_weights) == channels**2 + 3 * channels


@pytest.mark.parametrize("reduction, inner", [(3, 5), (2.5, 6), (16, 1)])
def test_reduction_floors_the_bottleneck(reduction, inner):
    layer = ATAC(reduction=reduction)
    layer.build((None, 16))
    assert tuple(layer.reduce_kernel.shape) == (16, inner)
    assert tuple(layer.expand_kernel.shape) == (inner, 16)


def test_default_initializer_is_msra_prelu():
    initializer = ATAC().kernel_initializer
    assert isinstance(initializer, keras.initializers.VarianceScaling)
    assert initializer.mode == "fan_avg"
    assert initializer.distribution == "untruncated_normal"
    np.testing.assert_allclose(initializer.scale, 2.0 / 1.0625)


def test_batch_norm_follows_training_in_fit_and_predict():
    """fit updates the moving statistics; predict and evaluate use them and leave them alone."""
    model = keras.Sequential([keras.Input((4, 4, 6)), ATAC()])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    x = np.random.default_rng(0).normal(3.0, 2.0, (8, 4, 4, 6)).astype("float32")
    layer = model.layers[-1]
    model.fit(x, x, batch_size=8, epochs=1, verbose=0, shuffle=False)
    mean = to_numpy(layer.reduce_norm.moving_mean)
    assert not np.allclose(mean, 0.0)
    model.predict(x, verbose=0)
    model.evaluate(x, x, verbose=0)
    np.testing.assert_array_equal(to_numpy(layer.reduce_norm.moving_mean), mean)


def test_kernel_regularizer_and_constraint_apply_to_both_kernels():
    layer = ATAC(kernel_regularizer=keras.regularizers.L2(0.5), kernel_constraint="non_neg")
    layer.build((None, 4))
    assert len(layer.losses) == 2
    assert layer.reduce_kernel.constraint is layer.kernel_constraint
    assert layer.expand_kernel.constraint is layer.kernel_constraint


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reduction": 0}, "reduction=0"),
        ({"reduction": -2}, "reduction=-2"),
        ({"reduction": "2"}, "reduction='2'"),
        ({"reduction": None}, "reduction=None"),
        ({"reduction": True}, "reduction=True"),
        ({"context": "spatial"}, "context='spatial'"),
        ({"data_format": "channels_middle"}, "data_format='channels_middle'"),
        ({"use_inner_relu": "yes"}, "use_inner_relu='yes'"),
        ({"inner_activation": "gelu"}, "inner_activation='gelu'"),
        ({"inner_activation": None, "use_inner_relu": True}, "contradicts"),
        ({"synchronized": 1}, "synchronized=1"),
        ({"remat": "full"}, "remat='full'"),
        ({"momentum": 1.5}, "momentum=1.5"),
        ({"epsilon": 0}, "epsilon=0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ATAC(**kwargs)


def test_rejects_reduction_that_leaves_no_channel():
    layer = ATAC(reduction=9)
    with pytest.raises(ValueError, match="reduction=9"):
        layer.build((None, 4, 4, 8))
    assert not layer.built and not layer.weights


def test_rejects_undefined_channels_in_a_functional_model():
    with pytest.raises(ValueError, match="channel"):
        ATAC(data_format="channels_first")(keras.Input((None, 8, 8)))


@pytest.mark.parametrize("synchronized", [False, True])
def test_synchronized_reaches_both_batch_norms_where_the_backend_has_replicas(synchronized):
    layer = ATAC(synchronized=synchronized)
    layer.build((None, 4, 4, 6))
    on_tensorflow = keras.backend.backend() == "tensorflow"
    for norm in (layer.reduce_norm, layer.expand_norm):
        assert norm.synchronized == (synchronized and on_tensorflow)
    assert layer.get_config()["synchronized"] == synchronized


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool"])
def test_integer_and_boolean_inputs_are_cast_to_the_compute_dtype(dtype):
    layer = ATAC()
    x = np.random.default_rng(0).integers(0, 2, size=(3, 4, 6))
    outputs = layer(x.astype(dtype))
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(outputs), to_numpy(layer(x.astype("float32"))), rtol=1e-6)


def test_rejects_complex_inputs():
    with pytest.raises(TypeError, match="inputs.dtype=complex64"):
        ATAC()(np.ones((2, 4), "complex64"))


@pytest.mark.parametrize("trainable", [True, False])
@pytest.mark.parametrize(
    "context,data_format", [("local", "channels_last"), ("global", "channels_first")]
)
def test_remat_computes_the_same_outputs_gradients_and_moving_statistics(
    context, data_format, trainable
):
    """`remat=True` only changes what the backward pass stores: the same outputs, input and
    weight gradients (checked through an SGD step of a model) and moving statistics, also with
    frozen BatchNorms (which then normalize with their moving statistics)."""
    shape = (4, 5, 6, 8) if data_format == "channels_last" else (4, 8, 5, 6)
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    cotangent = rng.normal(size=shape).astype("float32")
    layers = [
        ATAC(context=context, data_format=data_format, remat=remat) for remat in (False, True)
    ]
    layers[0].build(shape)
    values = random_weights(layers[0])
    layers[1].build(shape)
    layers[1].set_weights(values)
    for layer in layers:
        layer.reduce_norm.trainable = layer.expand_norm.trainable = trainable
    outputs = [to_numpy(layer(x, training=True)) for layer in layers]
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)
    for plain, remat in zip(layers[0].weights, layers[1].weights):
        np.testing.assert_allclose(to_numpy(remat), to_numpy(plain), rtol=1e-6, atol=1e-7)

    def input_gradient(layer):
        # stateless: JAX's grad must not see the moving statistics assigned inside its trace.
        trainable = [keras.ops.convert_to_tensor(v) for v in layer.trainable_variables]
        non_trainable = [keras.ops.convert_to_tensor(v) for v in layer.non_trainable_variables]

        def loss(inputs):
            y, _ = layer.stateless_call(trainable, non_trainable, inputs, training=True)
            return keras.ops.sum(y * keras.ops.convert_to_tensor(cotangent))

        return gradients(loss, x)[0]

    np.testing.assert_allclose(
        input_gradient(layers[1]), input_gradient(layers[0]), rtol=1e-5, atol=1e-6
    )

    kernel_before = to_numpy(layers[1].reduce_kernel)
    models = []
    for layer in layers:
        model = keras.Sequential([keras.Input(shape[1:]), layer])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        model.train_on_batch(x, cotangent)
        models.append(model)
    for plain, remat in zip(models[0].weights, models[1].weights):
        np.testing.assert_allclose(to_numpy(remat), to_numpy(plain), rtol=1e-5, atol=1e-6)
    # The step moved the kernels: the comparison above saw weight gradients.
    assert not np.allclose(to_numpy(layers[1].reduce_kernel), kernel_before)


def test_older_use_inner_relu_configs_load_as_inner_activation():
    """Configs saved before `inner_activation` replaced `use_inner_relu` still load."""
    old = ATAC(name="old").get_config()
    del old["inner_activation"]
    for flag, inner_activation in ((True, "relu"), (False, None)):
        layer = ATAC.from_config({**old, "use_inner_relu": flag})
        assert layer.inner_activation == inner_activation
        assert "use_inner_relu" not in layer.get_config()
        assert layer.get_config()["inner_activation"] == inner_activation


def test_gate_map_is_not_a_sublayer_name():
    """ATAC's `gate_map()` method; the package's `gate` attributes are sublayers (SE, ECA)."""
    layer = ATAC()
    layer.build((2, 3, 3, 4))
    assert callable(layer.gate_map) and not hasattr(layer, "gate")


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="XLA's buffer assignment of a compiled gradient is reported on JAX only; the memory "
    "on every backend is measured by `benchmarks.train_step --remat`",
)
def test_remat_keeps_less_memory_in_a_compiled_training_step():
    """Under XLA, `remat=True` must keep the gate's intermediates out of memory between the
    forward and the backward pass. With `keras.remat` alone (`jax.checkpoint`), XLA's CPU
    compiler computed the recomputation in the forward pass and kept it: the same memory."""
    import jax

    shape = (16, 16, 16, 16)
    rng = np.random.default_rng(0)
    kernels = [rng.normal(0.0, 0.1, size=(3, 3, 16, 16)).astype("float32") for _ in range(8)]
    x = rng.normal(size=shape).astype("float32")

    def temporary_bytes(remat):
        layer = ATAC(remat=remat)
        layer.build(shape)
        trainable = [keras.ops.convert_to_tensor(v) for v in layer.trainable_variables]
        non_trainable = [keras.ops.convert_to_tensor(v) for v in layer.non_trainable_variables]

        def loss(kernels, x):
            for kernel in kernels:
                x = keras.ops.conv(x, kernel, padding="same")
                x, _ = layer.stateless_call(trainable, non_trainable, x, training=True)
            return keras.ops.sum(x)

        compiled = jax.jit(jax.grad(loss)).lower(kernels, x).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    # 0.72 here; 1.0 with `keras.remat` alone.
    assert temporary_bytes(True) < 0.8 * temporary_bytes(False)
