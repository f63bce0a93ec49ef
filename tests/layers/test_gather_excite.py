import keras
import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import GatherExcite
from tests.backend_utils import XLA_MODES, gradients
from tests.layer_test_case import LayerTestCase, parameter_count, to_numpy
from tests.layers.reference_ops import (
    RESNET50_PARAMETERS,
    conv_reference,
    norm_reference,
    relu,
    resnet50_added_parameters,
    sigmoid,
    weights_by_path,
)


def average_gather_reference(x, extent):
    """Means over windows [i*e - (e-1), i*e + (e-1)] of every axis, cut to the map."""
    spatial = x.shape[1:-1]
    grid = [-(-n // extent) for n in spatial]
    outputs = np.zeros((x.shape[0], *grid, x.shape[-1]))
    for cell in np.ndindex(*grid):
        window = tuple(
            slice(max(0, i * extent - extent + 1), min(n, i * extent + extent))
            for i, n in zip(cell, spatial)
        )
        patch = x[(slice(None), *window, slice(None))]
        outputs[(slice(None), *cell, slice(None))] = patch.mean(axis=tuple(range(1, x.ndim - 1)))
    return outputs


def gather_excite_reference(x, weights, *, extent, extra_params, use_mlp, training, axis):
    x = np.moveaxis(x, axis, -1).astype("float64")
    spatial = tuple(range(1, x.ndim - 1))
    if extra_params and extent == "global":
        gathered = conv_reference(x, weights["gather_conv1/kernel"], depthwise=True)
        gathered = norm_reference(gathered, weights, "gather_norm1", training)
    elif extra_params:
        gathered = x
        num_convs = int(np.log2(extent))
        for i in range(1, num_convs + 1):
            kernel = weights[f"gather_conv{i}/kernel"]
            gathered = conv_reference(gathered, kernel, strides=2, padding=1, depthwise=True)
            gathered = norm_reference(gathered, weights, f"gather_norm{i}", training)
            if i < num_convs:
                gathered = relu(gathered)
    elif extent == "global":
        gathered = x.mean(axis=spatial, keepdims=True)
    else:
        gathered = average_gather_reference(x, extent)
    if use_mlp:
        hidden = relu(gathered @ weights["reduce/kernel"] + weights["reduce/bias"])
        gathered = hidden @ weights["expand/kernel"] + weights["expand/bias"]
    gate = sigmoid(gathered)
    if extent != "global":
        for a in spatial:
            gate = np.take(gate, nearest_cells(gate.shape[a], x.shape[a]), axis=a)
    return np.moveaxis(x * gate, -1, axis)


def nearest_cells(cells, size):
    """The source cell of each output position in PyTorch's `F.interpolate(mode="nearest")`
    (timm's upsampling of the gathered map): floor(i * scale) with the float32 scale
    cells / size, clipped to the last cell."""
    scale = np.float32(cells) / np.float32(size)
    positions = np.floor(np.arange(size, dtype=np.float32) * scale).astype(int)
    return np.minimum(positions, cells - 1)


class TestGatherExciteThetaPlusExtent4(LayerTestCase):
    layer_cls = GatherExcite
    init_kwargs = {"extent": 4, "extra_params": True, "use_mlp": True, "reduction": 4}
    input_shape = (3, 5, 6, 8)
    # Two depthwise 3x3 convolutions with BatchNorms, and the MLP 8 -> 2 -> 8.
    expected_trainable_params = 2 * (9 * 8 + 2 * 8) + (2 * 8 * 2 + 2 + 8)
    expected_non_trainable_params = 2 * 2 * 8
    min_rank = 3
    # With the first BatchNorm's offset at 0, relu(gamma * n) = gamma * relu(n): the second
    # convolution is linear in gamma, whose scale the second BatchNorm's batch statistics remove
    # (up to epsilon), so the first step leaves gamma unchanged.
    unchanged_by_training = ("gather_norm1/gamma",)


class TestGatherExciteThetaGlobal(LayerTestCase):
    layer_cls = GatherExcite
    init_kwargs = {"extra_params": True}
    input_shape = (3, 5, 6, 8)
    # A depthwise kernel as large as the 5x6 map, and a BatchNorm.
    expected_trainable_params = 5 * 6 * 8 + 2 * 8
    expected_non_trainable_params = 2 * 8
    min_rank = 3
    # GE-θ with global extent gathers with one depthwise kernel spanning the whole map (Hu et
    # al., section 3), so that kernel follows the spatial size; the BatchNorm is per-channel.
    map_sized_weights = ("gather_conv1/kernel",)

    def test_symbolic_call_with_unknown_batch_and_spatial_sizes(self):
        """The gather kernel covers the map: unknown spatial sizes are rejected, unknown batch
        sizes are not, and another spatial size is an input error."""
        layer = self.make_layer()
        with pytest.raises(ValueError, match=r"defined spatial dimensions.*\(None, None, 6, 8\)"):
            layer(keras.Input(batch_shape=(None, None, 6, 8)))
        assert not layer.built and not layer.weights
        model = keras.Sequential([keras.Input((5, 6, 8)), self.make_layer()])
        assert model.predict(self.make_input((7, 5, 6, 8)), verbose=0).shape == (7, 5, 6, 8)
        with pytest.raises(ValueError, match="incompatible"):
            model.layers[-1](self.make_input((2, 6, 6, 8)))


@pytest.mark.parametrize(
    "shape, data_format, extent, extra_params, use_mlp",
    [
        ((2, 7, 6, 4), "channels_last", "global", False, False),
        ((2, 9, 4), "channels_last", 2, False, False),
        ((2, 4, 6, 7), "channels_first", 3, False, True),
        ((2, 7, 6, 4), "channels_last", "global", True, False),
        ((2, 4, 6, 7), "channels_first", "global", True, True),
        ((2, 9, 4), "channels_last", 2, True, False),
        ((2, 7, 6, 4), "channels_last", 4, True, True),
        # A 2x2 gathered map with 2 bottleneck channels, where Keras's TensorFlow backend would
        # add a channels-first 1x1 convolution's bias along the width.
        ((2, 4, 6, 7), "channels_first", 4, True, True),
        # Sizes that are not multiples of the extent, and W == C for channels-first.
        ((2, 5, 7, 4), "channels_last", 4, False, False),
        ((2, 4, 5, 4), "channels_first", 4, True, True),
        ((2, 4, 4, 5), "channels_first", 3, False, False),
        # The map-sized gather on one spatial axis, both layouts, W == C for channels-first.
        ((2, 9, 4), "channels_last", "global", True, False),
        ((2, 4, 4), "channels_first", "global", True, True),
    ],
)
def test_matches_numpy_reference(shape, data_format, extent, extra_params, use_mlp):
    layer = GatherExcite(
        extent=extent,
        extra_params=extra_params,
        use_mlp=use_mlp,
        reduction=2,
        data_format=data_format,
    )
    layer.build(shape)
    weights = weights_by_path(layer)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    axis = -1 if data_format == "channels_last" else 1
    for training in (False, True):
        expected = gather_excite_reference(
            x,
            weights,
            extent=extent,
            extra_params=extra_params,
            use_mlp=use_mlp,
            training=training,
            axis=axis,
        )
        np.testing.assert_allclose(
            to_numpy(layer(x, training=training)), expected, rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize(
    "size, extent, cells",
    [
        # Read off torch.nn.functional.interpolate(mode="nearest") from ceil(size / extent)
        # cells; floor(i / extent) would give [0, 0, 0, 0, 1] and 7 + 7 -> 8 + 6 instead.
        (5, 4, [0, 0, 0, 1, 1]),
        (14, 8, [0] * 7 + [1] * 7),  # the 14x14 stage of ResNet-50 at extent 8
        (10, 4, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]),
    ],
)
def test_upsampling_matches_pytorch_nearest_interpolation(size, extent, cells):
    """Each position takes the gate of the cell PyTorch's nearest interpolation picks, also
    when the map size is not a multiple of the extent (the last block is then shorter)."""
    x = np.random.default_rng(2).uniform(1.0, 2.0, size=(2, size, 3, 4)).astype("float32")
    gate = to_numpy(GatherExcite(extent=extent, gate_activation="linear")(x)) / x
    gathered = average_gather_reference(x.astype("float64"), extent)
    expected = np.take(np.take(gathered, cells, axis=1), nearest_cells(gathered.shape[2], 3), 2)
    np.testing.assert_allclose(gate, expected, rtol=1e-5)


def test_global_gather_kernel_is_read_at_full_precision():
    """GE-θ's map-sized gather kernel under mixed_float16: a weighted sum whose terms cancel,
    with weights that float16 rounds, is computed with the float32 weights (the kernel was
    read autocast to float16 inside GatherExcite's call)."""
    layer = GatherExcite(extra_params=True, gate_activation="linear", dtype="mixed_float16")
    layer.build((1, 4, 4, 2))
    # Half the weights 1 + 3 * 2**-12 (not a float16), half -1: the sum is 8 * 3 * 2**-12.
    kernel = np.where(np.arange(16) % 2 == 0, 1.0 + 3 * 2.0**-12, -1.0).reshape(4, 4, 1, 1)
    layer.gather_convs[0].kernel.assign(np.tile(kernel, (1, 1, 2, 1)).astype("float32"))
    x = np.ones((1, 4, 4, 2), "float32")
    gate = to_numpy(keras.ops.cast(layer(x, training=False), "float32"))
    expected = 8 * 3 * 2.0**-12 / np.sqrt(1.0 + 1e-5)  # BatchNorm at its initial statistics
    np.testing.assert_allclose(gate, expected, rtol=2e-3)


@pytest.mark.parametrize("xla", XLA_MODES)
@pytest.mark.parametrize(
    "shape, data_format",
    [
        ((2, 5, 6, 3), "channels_last"),
        ((2, 3, 5, 6), "channels_first"),
        ((2, 7, 3), "channels_last"),
        ((2, 3, 3), "channels_first"),  # W == C
    ],
)
def test_global_gather_value_and_gradients_match_closed_form(shape, data_format, xla):
    """GE-θ's map-sized gather g[n, c] = sum_p x[n, p, c] * k[p, c]: dg/dx[n, p, c] = k[p, c]
    and dg/dk[p, c] = sum_n x[n, p, c], each times the upstream gradient."""
    layer = GatherExcite(extra_params=True, data_format=data_format)
    layer.build(shape)
    gather = layer.gather_convs[0]
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype("float32")
    kernel = rng.normal(size=tuple(gather.kernel.shape)).astype("float32")
    gather.kernel.assign(kernel)
    channels_last = data_format == "channels_last"
    x_last = (x if channels_last else np.moveaxis(x, 1, -1)).astype("float64")  # (N, *P, C)
    k = kernel[..., 0].astype("float64")  # (*P, C)
    spatial = tuple(range(1, x.ndim - 1))
    upstream = rng.normal(size=(shape[0], x_last.shape[-1])).astype("float32")
    upstream_kept = np.expand_dims(upstream, spatial if channels_last else tuple(range(2, x.ndim)))

    value = to_numpy(gather(x))
    expected = np.expand_dims((x_last * k).sum(axis=spatial), spatial)
    if not channels_last:
        expected = np.moveaxis(expected, -1, 1)
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5)

    def loss(inputs, kernel_value):
        outputs, _ = gather.stateless_call([kernel_value], [], inputs)
        return keras.ops.sum(outputs * keras.ops.convert_to_tensor(upstream_kept))

    d_x, d_kernel = gradients(loss, x, kernel, xla=xla)
    upstream_per_position = upstream.reshape(shape[0], *([1] * len(spatial)), -1)
    want_x = upstream_per_position * k  # (N, *P, C)
    if not channels_last:
        want_x = np.moveaxis(want_x, -1, 1)
    want_kernel = (x_last * upstream_per_position).sum(axis=0)[..., None]
    np.testing.assert_allclose(d_x, want_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_kernel, want_kernel, rtol=1e-5, atol=1e-5)


def test_parameter_free_gather_runs_on_unknown_spatial_sizes():
    """GE-theta-minus with an odd extent, windows cut by the map's border, in a compiled model."""
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, GatherExcite(extent=3)(inputs))
    for shape in ((2, 5, 7, 4), (3, 9, 4, 4)):
        x = np.random.default_rng(0).normal(size=shape).astype("float32")
        expected = gather_excite_reference(
            x, {}, extent=3, extra_params=False, use_mlp=False, training=False, axis=-1
        )
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_factory_variants_and_their_parameter_counts():
    for name, trainable, non_trainable in (
        ("ge", 0, 0),
        ("gather_excite", 0, 0),
        ("ge_theta", 8 * 8 * 64 + 2 * 64, 2 * 64),
        ("ge_theta_plus", 8 * 8 * 64 + 2 * 64 + (2 * 64 * 4 + 4 + 64), 2 * 64),
    ):
        layer = layers.get(name)
        layer.build((None, 8, 8, 64))
        assert parameter_count(layer.trainable_weights) == trainable, name
        assert parameter_count(layer.non_trainable_weights) == non_trainable, name


def test_resnet50_budget_matches_the_paper():
    """GE-theta-plus (global extent) in every bottleneck of ResNet-50: 33.7M parameters."""
    added = resnet50_added_parameters(lambda: GatherExcite(extra_params=True, use_mlp=True))
    assert round((RESNET50_PARAMETERS + added) / 1e6, 1) == 33.7


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"extent": "local"}, "extent='local'"),
        ({"extent": 1}, "extent=1"),
        ({"extent": 2.0}, "extent=2.0"),
        ({"extent": 6, "extra_params": True}, "power of 2.*extent=6"),
        ({"extra_params": "yes"}, "extra_params='yes'"),
        ({"use_mlp": 1}, "use_mlp=1"),
        ({"reduction": 0}, "reduction=0"),
        ({"inner_activation": "nope"}, "inner_activation='nope'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GatherExcite(**kwargs)


@pytest.mark.parametrize(
    "kwargs, shape, message",
    [
        ({}, (None, 8), r"rank in \[3, 4\]"),
        ({"use_mlp": True}, (None, 4, 4, 8), r"floor\(8 / reduction\).*reduction=16"),
    ],
)
def test_rejects_bad_inputs_before_creating_weights(kwargs, shape, message):
    layer = GatherExcite(**kwargs)
    with pytest.raises(ValueError, match=message):
        layer.build(shape)
    assert not layer.built and not layer.weights
