import json

import keras
import numpy as np
import pytest

from keras_atac.models import GAttANet, cifar_resnet, gattanet_toy_cnn
from tests.layer_test_case import parameter_count, to_numpy
from tests.models.model_checks import check_channels_first_matches_channels_last, with_random_biases

TAPS = ("conv1", "conv2", "dense")
CHANNELS = 3 + 4 + 5  # of the tapped layers
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def small_backbone(data_format="channels_last", batch_norm=False):
    """6x6 -> conv1 (6x6x3) -> conv2 (3x3x4) -> dense (5) -> 3 logits.

    With `batch_norm`, a BatchNormalization of the input comes first (`"input_bn"`).
    """
    shape = (6, 6, 2) if data_format == "channels_last" else (2, 6, 6)
    inputs = keras.Input(shape)
    x = inputs
    if batch_norm:
        axis = -1 if data_format == "channels_last" else 1
        x = keras.layers.BatchNormalization(axis=axis, name="input_bn")(x)
    x = keras.layers.Conv2D(
        3, 3, padding="same", activation="relu", data_format=data_format, name="conv1"
    )(x)
    x = keras.layers.Conv2D(
        4,
        3,
        strides=2,
        padding="same",
        activation="relu",
        data_format=data_format,
        name="conv2",
    )(x)
    x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
    x = keras.layers.Dense(5, activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(3, name="predictions")(x)
    return keras.Model(inputs, outputs, name="small")


def images(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def randomize_attention(model, seed=0):
    """Non-zero alphas and random projections, as arrays by weight path."""
    rng = np.random.default_rng(seed)
    for weight in attention_weights(model):
        if weight.path.endswith("alpha"):
            weight.assign(rng.uniform(-0.5, 0.5))
        else:
            weight.assign(rng.normal(0.0, 0.4, weight.shape).astype("float32"))
    return {w.path: to_numpy(w).astype("float64") for w in attention_weights(model)}


def attention_weights(model):
    backbone = {id(w) for w in model.backbone.weights}
    return [w for w in model.weights if id(w) not in backbone]


# -- NumPy reference -----------------------------------------------------------------------


def query_reference(activation, kernel):
    """Mean over positions of the per-position queries W_q x (per-unit for dense layers)."""
    if activation.ndim == 2:
        return np.mean(activation[:, :, None] * kernel[None], axis=1)
    queries = activation @ kernel
    return queries.reshape(len(activation), -1, kernel.shape[1]).mean(axis=1)


def agreement_reference(activation, keys_activation, kernel, query, alpha, cosine):
    """x * (1 + alpha * g), g = k . q (or cos(k, q)) with k the key of every position (unit)."""
    if activation.ndim == 2:
        keys = keys_activation[:, :, None] * kernel[None]
        agreement = np.einsum("ncd,nd->nc", keys, query)
    else:
        keys = keys_activation @ kernel
        agreement = np.einsum("nhwd,nd->nhw", keys, query)
    if cosine:
        norms = np.linalg.norm(keys, axis=-1) * np.linalg.norm(query, axis=-1).reshape(
            (-1,) + (1,) * (agreement.ndim - 1)
        )
        # Positions without activity (zero keys) have no agreement: the layer's 1e-6 floor.
        agreement = agreement / np.maximum(norms, 1e-6)
    if activation.ndim > 2:
        agreement = agreement[..., None]
    return activation * (1.0 + alpha * agreement)


def gattanet_reference(backbone, weights, x, iterations, keys_from, agreement, data_format):
    """The passes of GAttANet, running the backbone's layers one by one on NumPy arrays."""

    def channels_last(a):
        return a if a.ndim == 2 or data_format == "channels_last" else np.moveaxis(a, 1, -1)

    def channels_back(a):
        return a if a.ndim == 2 or data_format == "channels_last" else np.moveaxis(a, -1, 1)

    def run(modulate):
        h, activations = x, {}
        for name in ("conv1", "conv2", "flatten", "dense", "predictions"):
            h = to_numpy(backbone.get_layer(name)(h.astype("float32"))).astype("float64")
            if name in TAPS:
                activations[name] = channels_last(h)
                if modulate is not None:
                    h = channels_back(modulate(name, activations[name]))
        return h, activations

    output, activations = run(None)
    for _ in range(iterations - 1):
        query = np.mean(
            [query_reference(activations[n], weights[f"{n}_query/query_kernel"]) for n in TAPS],
            axis=0,
        )
        previous = activations

        def modulate(name, activation, query=query, previous=previous):
            keys = activation if keys_from == "current" else previous[name]
            return agreement_reference(
                activation,
                keys,
                weights[f"{name}_agreement/key_kernel"],
                query,
                weights[f"{name}_agreement/alpha"],
                agreement == "cosine",
            )

        output, activations = run(modulate)
    return output


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys_from, iterations, agreement, data_format",
    [
        ("current", 2, "dot", "channels_last"),
        ("previous", 2, "cosine", "channels_last"),
        ("current", 3, "cosine", "channels_first"),
        ("previous", 3, "dot", "channels_last"),
    ],
)
def test_matches_numpy_reference(keys_from, iterations, agreement, data_format):
    backbone = small_backbone(data_format)
    model = GAttANet(
        backbone,
        TAPS,
        key_dim=4,
        iterations=iterations,
        keys_from=keys_from,
        agreement=agreement,
        data_format=data_format,
    )
    weights = randomize_attention(model)
    shape = (4, 6, 6, 2) if data_format == "channels_last" else (4, 2, 6, 6)
    x = images(shape)
    expected = gattanet_reference(
        backbone, weights, x, iterations, keys_from, agreement, data_format
    )
    assert not np.allclose(expected, to_numpy(backbone(x)), atol=1e-3)  # attention acts
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("iterations, keys_from", [(2, "current"), (3, "previous")])
def test_zero_alphas_reproduce_the_backbone(iterations, keys_from):
    backbone = small_backbone(batch_norm=True)
    model = GAttANet(backbone, TAPS, iterations=iterations, keys_from=keys_from)
    x = images((3, 6, 6, 2))
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(backbone(x)))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), backbone.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("key_dim", [16, 4])
def test_parameter_count(key_dim):
    backbone = small_backbone()
    model = GAttANet(backbone, TAPS, key_dim=key_dim)
    attention = attention_weights(model)
    assert parameter_count(attention) == 2 * key_dim * CHANNELS + len(TAPS)
    assert sum(w.path.endswith("alpha") for w in attention) == len(TAPS)
    assert model.count_params() == backbone.count_params() + 2 * key_dim * CHANNELS + len(TAPS)
    for weight in attention:
        assert weight.trainable and len(weight.shape) <= 2


def kernels_by_tap(model):
    return {
        weight.path: to_numpy(weight)
        for weight in attention_weights(model)
        if weight.path.endswith("kernel")
    }


@pytest.mark.parametrize("kernel_initializer", ["glorot_uniform", "he_normal"])
def test_unseeded_initializers_draw_each_kernel_on_its_own(kernel_initializer):
    """An unseeded initializer (a name, as by default) gives every query and key kernel its own
    values, as Keras's layers do; before, one shared initializer object gave W_q and W_k of
    each tapped layer equal values, and equal-shaped taps equal kernels."""
    # Two taps of equal shape, so that equal kernels across taps would show too.
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="first")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="second")(x)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    backbone = keras.Model(inputs, outputs)
    model = GAttANet(backbone, ("first", "second"), kernel_initializer=kernel_initializer)
    kernels = kernels_by_tap(model)
    assert len(kernels) == 4
    values = list(kernels.values())
    for first in range(len(values)):
        for second in range(first + 1, len(values)):
            assert not np.allclose(values[first], values[second]), list(kernels)


def test_a_seeded_initializer_keeps_its_seed():
    """A seeded initializer keeps its values in every kernel, as it does in Keras's layers,
    and the same seed builds the same model again."""
    initializer = keras.initializers.GlorotUniform(seed=7)
    kernels = [
        list(
            kernels_by_tap(
                GAttANet(small_backbone(), ("conv1",), kernel_initializer=initializer)
            ).values()
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(kernels[0][0], kernels[0][1])
    for first, second in zip(*kernels):
        np.testing.assert_array_equal(first, second)
    # The object passed in is not changed.
    assert initializer.get_config()["seed"] == 7


def test_one_iteration_is_the_backbone():
    backbone = small_backbone()
    model = GAttANet(backbone, TAPS, iterations=1)
    assert model.count_params() == backbone.count_params()
    assert not attention_weights(model)
    x = images((2, 6, 6, 2))
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(backbone(x)))


def fit_step(model, x, learning_rate=0.1):
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=LOSS)
    return model.fit(x, np.arange(len(x)) % 3, batch_size=len(x), epochs=1, verbose=0)


def test_gradients_reach_alphas_and_projections():
    x = images((4, 6, 6, 2))
    # At initialisation (alpha = 0) only the alphas have a gradient: the projections act
    # through alpha * g.
    model = GAttANet(small_backbone(), TAPS, key_dim=4)
    before = {w.path: to_numpy(w).copy() for w in attention_weights(model)}
    fit_step(model, x)
    for weight in attention_weights(model):
        changed = not np.array_equal(to_numpy(weight), before[weight.path])
        assert changed == weight.path.endswith("alpha"), weight.path

    # Random biases keep the backbone's ReLUs alive whatever its random kernels: with some
    # draws the dense tap was silent for these four images and its key kernel barely moved.
    model = GAttANet(with_random_biases(small_backbone()), TAPS, key_dim=4)
    before = randomize_attention(model)
    fit_step(model, x)
    for weight in model.trainable_weights:
        old = before.get(weight.path)
        if old is not None:
            assert not np.allclose(to_numpy(weight), old), weight.path


def test_only_the_last_pass_trains_batch_norm():
    """The documented choice: earlier passes run in inference mode and update nothing."""
    backbone = small_backbone(batch_norm=True)
    model = GAttANet(backbone, TAPS, key_dim=4, iterations=3)
    x = images((4, 6, 6, 2), seed=1) + 3.0
    # With alpha = 0 the last pass is the backbone in training mode (batch statistics).
    np.testing.assert_allclose(
        to_numpy(model(x, training=True)), to_numpy(backbone(x, training=True)), rtol=1e-6
    )
    backbone.get_layer("input_bn").moving_mean.assign(np.zeros(2, "float32"))
    fit_step(model, x, learning_rate=0.0)
    # One update with momentum 0.99, from the last pass only: 0.99 * 0 + 0.01 * batch mean.
    np.testing.assert_allclose(
        to_numpy(backbone.get_layer("input_bn").moving_mean),
        0.01 * x.mean(axis=(0, 1, 2)),
        rtol=1e-4,
    )


def test_toy_cnn_is_five_weight_layers_tapped_at_every_hidden_layer():
    backbone = gattanet_toy_cnn(input_shape=(8, 8, 3))
    weight_layers = [
        layer.name
        for layer in backbone.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    ]
    assert weight_layers == ["block1_conv", "block2_conv", "block3_conv", "dense", "predictions"]
    assert GAttANet.default_layers(backbone) == (
        "block1_act",
        "block2_act",
        "block3_act",
        "dense_act",
    )
    model = GAttANet(backbone)
    assert model.count_params() - backbone.count_params() == 2 * 16 * (32 + 64 + 128 + 256) + 4
    assert model.predict(images((2, 8, 8, 3)), verbose=0).shape == (2, 10)


def test_toy_cnn_channels_first():
    backbone = gattanet_toy_cnn(data_format="channels_first", input_shape=(3, 8, 8))
    model = GAttANet(backbone, key_dim=4, data_format="channels_first")
    assert model.predict(images((2, 3, 8, 8)), verbose=0).shape == (2, 10)


def test_toy_cnn_channels_first_matches_channels_last_when_width_equals_filters():
    """32 columns into the first block's 32 filters (W == C, as on CIFAR-10 images), where
    Keras's TensorFlow backend adds a channels-first bias along the width (only TensorFlow
    had the defect; the check holds on every backend)."""

    def build(data_format):
        shape = (8, 32, 3) if data_format == "channels_last" else (3, 8, 32)
        return with_random_biases(gattanet_toy_cnn(data_format=data_format, input_shape=shape))

    check_channels_first_matches_channels_last(build, images((2, 8, 32, 3)))


def test_default_layers_are_the_resnet_block_outputs():
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for name in ("stage1_block1_out", "stage1_block2_out", "stage2_block1_out", "block1_act"):
        x = keras.layers.Conv2D(2, 3, padding="same", name=name)(x)
    backbone = keras.Model(inputs, x)
    assert GAttANet.default_layers(backbone) == (
        "stage1_block1_out",
        "stage1_block2_out",
        "stage2_block1_out",
    )
    with pytest.raises(ValueError, match="tapped_layers"):
        GAttANet(small_backbone())


def test_config_and_keras_file_round_trip(tmp_path):
    model = GAttANet(
        small_backbone(),
        TAPS,
        key_dim=4,
        iterations=3,
        keys_from="previous",
        agreement="cosine",
        kernel_regularizer=keras.regularizers.L2(1e-3),
        alpha_constraint=keras.constraints.NonNeg(),
    )
    config = model.get_config()
    revived = GAttANet.from_config(json.loads(json.dumps(config)))
    assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)

    randomize_attention(model)
    x = images((4, 6, 6, 2))
    fit_step(model, x)
    model.save(tmp_path / "gattanet.keras")
    loaded = keras.saving.load_model(tmp_path / "gattanet.keras")
    assert type(loaded) is GAttANet
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_trains_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    backbone = small_backbone(batch_norm=True)
    keras.config.set_dtype_policy("float32")
    model = GAttANet(backbone, TAPS, key_dim=4)
    assert model.get_layer("conv1_agreement").compute_dtype == "float16"
    randomize_attention(model)
    history = fit_step(model, images((4, 6, 6, 2)), learning_rate=0.01)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("agreement", ["dot", "cosine"])
def test_mixed_float16_with_large_inputs_is_finite(agreement):
    """Inputs up to 1e4 under mixed_float16: the keys, the agreement k . q and the cosine's
    norms overflowed float16, so even the initial alpha = 0 gave NaN (0 * inf). Computed in
    float32, alpha = 0 reproduces the backbone exactly."""
    keras.config.set_dtype_policy("mixed_float16")
    backbone = gattanet_toy_cnn(input_shape=(8, 8, 3))
    keras.config.set_dtype_policy("float32")
    model = GAttANet(backbone, agreement=agreement)
    x = np.random.default_rng(5).uniform(0.0, 1e4, (2, 8, 8, 3)).astype("float32")
    outputs = to_numpy(keras.ops.cast(model(x), "float32"))
    assert np.all(np.isfinite(outputs))
    np.testing.assert_array_equal(outputs, to_numpy(keras.ops.cast(backbone(x), "float32")))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"key_dim": 0}, "key_dim=0"),
        ({"key_dim": 2.5}, "key_dim=2.5"),
        ({"iterations": 0}, "iterations=0"),
        ({"keys_from": "next"}, "keys_from='next'"),
        ({"agreement": "softmax"}, "agreement='softmax'"),
        ({"data_format": "NCHW"}, "data_format='NCHW'"),
        ({"tapped_layers": []}, r"tapped_layers=\[\]"),
        ({"tapped_layers": "conv1"}, "tapped_layers='conv1'"),
        ({"tapped_layers": ["conv1", "conv1"]}, "distinct"),
        ({"tapped_layers": ["conv1", "missing"]}, "'missing'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GAttANet(small_backbone(), **{"tapped_layers": TAPS, **kwargs})


def test_rejects_a_shared_tapped_layer_and_a_backbone_without_inputs():
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    backbone = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match="shared"):
        GAttANet(backbone, ["shared"])
    with pytest.raises(ValueError, match="backbone"):
        GAttANet(keras.layers.Dense(3), ["dense"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "num_classes=0"),
        ({"input_shape": (32, 32)}, r"input_shape=\(32, 32\)"),
        ({"activation": "nope"}, "nope"),
    ],
)
def test_toy_cnn_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gattanet_toy_cnn(**kwargs)


def test_trains_a_cifar_resnet_tapped_at_every_block_output():
    backbone = cifar_resnet(8, input_shape=(8, 8, 3))
    model = GAttANet(backbone)
    assert model.tapped_layers == ("stage1_block1_out", "stage2_block1_out", "stage3_block1_out")
    assert model.count_params() == backbone.count_params() + 2 * 16 * (16 + 32 + 64) + 3
    history = fit_step(model, images((4, 8, 8, 3)))
    assert np.isfinite(history.history["loss"][0])
    alphas = [w for w in model.trainable_weights if w.path.endswith("alpha")]
    assert len(alphas) == 3 and all(float(to_numpy(a)) != 0.0 for a in alphas)
