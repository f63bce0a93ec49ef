import json

import keras
import numpy as np
import pytest

from keras_atac.models import SSIA, cifar_resnet
from tests.backend_utils import gradients
from tests.layer_test_case import to_numpy

PAIRS = (("act1", "act2"), ("act1", "act3"))
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def small_backbone(data_format="channels_last", batch_norm=False):
    """8x8 -> 8x8 (act1) -> 4x4 (act2) -> 2x2 (act3) -> 3 logits."""
    shape = (8, 8, 3) if data_format == "channels_last" else (3, 8, 8)
    inputs = keras.Input(shape)
    x = inputs
    for index, (filters, strides) in enumerate(((4, 1), (6, 2), (8, 2)), start=1):
        x = keras.layers.Conv2D(
            filters,
            3,
            strides=strides,
            padding="same",
            data_format=data_format,
            name=f"conv{index}",
        )(x)
        if batch_norm:
            axis = -1 if data_format == "channels_last" else 1
            x = keras.layers.BatchNormalization(axis=axis, name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"act{index}")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="pool")(x)
    outputs = keras.layers.Dense(3, name="predictions")(x)
    return keras.Model(inputs, outputs, name="small")


def batch(data_format="channels_last", size=6):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(size, 8, 8, 3)).astype("float32")
    if data_format == "channels_first":
        x = np.moveaxis(x, -1, 1)
    return x, np.arange(size) % 3


# -- NumPy reference -----------------------------------------------------------------------


def resize_matrix(size_in, size_out, interpolation):
    """(size_out, size_in) interpolation weights with half-pixel centres, edges clamped."""
    centres = (np.arange(size_out) + 0.5) * size_in / size_out
    matrix = np.zeros((size_out, size_in))
    if interpolation == "nearest":
        matrix[np.arange(size_out), np.floor(centres).astype(int)] = 1.0
        return matrix
    source = np.clip(centres - 0.5, 0, size_in - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    np.add.at(matrix, (np.arange(size_out), low), 1.0 - (source - low))
    np.add.at(matrix, (np.arange(size_out), high), source - low)
    return matrix


def guidance_reference(features, pairs, normalization, distance, interpolation, axis=-1, p=2):
    """G = sum over pairs of D(N(mean_c |F_l|^p), N(resize(mean_c |F_h|^p))), in float64."""

    def attention(name):
        return np.mean(np.abs(features[name].astype("float64")) ** p, axis=axis)

    def normalize(maps):
        if normalization == "softmax":
            e = np.exp(maps - maps.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return maps / np.linalg.norm(maps, axis=1, keepdims=True)

    total = 0.0
    for student, teacher in pairs:
        s, t = attention(student), attention(teacher)
        (_, h, w), (_, th, tw) = s.shape, t.shape
        t = np.einsum(
            "ph,nhw,qw->npq",
            resize_matrix(th, h, interpolation),
            t,
            resize_matrix(tw, w, interpolation),
        )
        s, t = normalize(s.reshape(len(s), -1)), normalize(t.reshape(len(t), -1))
        if distance == "kl":
            total += np.mean(np.sum(t * (np.log(t) - np.log(s)), axis=1))
        else:
            total += np.mean((s - t) ** 2)
    return total


def cross_entropy_reference(logits, labels):
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(log_probabilities[np.arange(len(labels)), labels])


def same_config(a, b):
    """Configs compared as JSON (tuples and lists are the same there)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def features_of(backbone, names, x):
    taps = keras.Model(backbone.input, [backbone.get_layer(name).output for name in names])
    return dict(zip(names, taps.predict(x, verbose=0)))


# -- tests ---------------------------------------------------------------------------------


def test_inference_model_is_the_backbone():
    backbone = small_backbone(batch_norm=True)
    model = SSIA(backbone, PAIRS)
    assert model.backbone is backbone
    assert model.count_params() == backbone.count_params()
    assert {id(w) for w in model.weights} == {id(w) for w in backbone.weights}
    x, _ = batch()
    expected = backbone.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(backbone(x)))


@pytest.mark.parametrize(
    "normalization, distance, interpolation, data_format",
    [
        ("l2", "mse", "bilinear", "channels_last"),
        ("softmax", "mse", "nearest", "channels_last"),
        ("softmax", "kl", "bilinear", "channels_first"),
    ],
)
def test_training_loss_is_task_loss_plus_weighted_guidance(
    normalization, distance, interpolation, data_format
):
    backbone = small_backbone(data_format)
    weight = 7.5
    model = SSIA(
        backbone,
        PAIRS,
        guidance_weight=weight,
        normalization=normalization,
        distance=distance,
        interpolation=interpolation,
        data_format=data_format,
    )
    # A zero learning rate: the logged loss is the loss of exactly these weights.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=LOSS)
    x, y = batch(data_format)
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history

    axis = -1 if data_format == "channels_last" else 1
    guidance = guidance_reference(
        features_of(backbone, ["act1", "act2", "act3"], x),
        PAIRS,
        normalization,
        distance,
        interpolation,
        axis,
    )
    task = cross_entropy_reference(backbone.predict(x, verbose=0), y)
    assert guidance > 1e-6
    np.testing.assert_allclose(history["guidance_loss"][0], guidance, rtol=1e-5)
    np.testing.assert_allclose(history["loss"][0], task + weight * guidance, rtol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("size", [2, 6])
def test_guidance_ignores_the_global_data_format(global_channels_first, data_format, size):
    """Under a global channels-first format, the teacher maps are still resized over their
    own (height, width): `ops.image.resize` read the global format, and G was wrong (batch 2)
    or raised (batch 6)."""
    model = SSIA(small_backbone(data_format), PAIRS, data_format=data_format)
    x, _ = batch(data_format, size)
    features = features_of(model.backbone, ["act1", "act2", "act3"], x)
    axis = -1 if data_format == "channels_last" else 1
    expected = guidance_reference(features, PAIRS, "l2", "mse", "bilinear", axis)
    np.testing.assert_allclose(to_numpy(model.guidance(features)), expected, rtol=1e-5)


def test_p_below_one_has_finite_gradients_at_exact_zeros():
    """|F|^p with p < 1 has an infinite derivative at 0, and post-ReLU taps are mostly exact
    zeros: the gradient there is taken as 0, the value is unchanged."""
    model = SSIA(small_backbone(), [("act1", "act2")], p=0.5)
    rng = np.random.default_rng(3)
    student = np.maximum(rng.normal(size=(2, 8, 8, 4)), 0.0).astype("float32")
    teacher = np.maximum(rng.normal(size=(2, 4, 4, 6)), 0.0).astype("float32")
    assert np.mean(student == 0) > 0.3

    def guidance(student_features):
        return model.guidance({"act1": student_features, "act2": teacher})

    (gradient,) = gradients(guidance, student)
    assert np.all(np.isfinite(gradient))
    assert np.all(gradient[student == 0] == 0) and np.any(gradient != 0)
    expected = guidance_reference(
        {"act1": student, "act2": teacher}, [("act1", "act2")], "l2", "mse", "bilinear", p=0.5
    )
    np.testing.assert_allclose(to_numpy(guidance(student)), expected, rtol=1e-5)


def test_p_below_one_trains_to_finite_weights():
    """One `fit` epoch with p = 0.5 on post-ReLU taps keeps every weight finite (on TensorFlow
    the infinite gradient at zeros made them non-finite)."""
    model = SSIA(small_backbone(), PAIRS, p=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=LOSS)
    x, y = batch()
    history = model.fit(x, y, batch_size=3, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    for weight in model.backbone.weights:
        assert np.all(np.isfinite(to_numpy(weight))), weight.path


def test_teacher_gets_no_gradient_from_the_guidance_term():
    backbone = small_backbone()
    model = SSIA(backbone, [("act1", "act3")])
    model.compile(optimizer=keras.optimizers.SGD(1.0))  # the guidance term is the only loss
    x, _ = batch()
    before = {w.path: to_numpy(w).copy() for w in backbone.trainable_weights}
    model.fit(x, batch_size=len(x), epochs=1, verbose=0)
    for weight in backbone.trainable_weights:
        changed = not np.array_equal(to_numpy(weight), before[weight.path])
        # Only the layers below the student (conv1) learn from the guidance term.
        assert changed == weight.path.startswith("conv1/"), weight.path


def test_guidance_is_logged_in_training_and_nan_in_evaluation():
    model = SSIA(small_backbone(batch_norm=True), PAIRS)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=LOSS)
    x, y = batch()
    history = model.fit(x, y, epochs=2, batch_size=3, verbose=0, validation_data=(x, y))
    assert all(np.isfinite(history.history["guidance_loss"]))
    assert np.isnan(history.history["val_guidance_loss"]).all()
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        logs["loss"], cross_entropy_reference(model.backbone.predict(x, verbose=0), y), rtol=1e-5
    )


def test_warm_up_switches_the_guidance_on_after_its_epochs():
    backbone = small_backbone()
    model = SSIA(backbone, PAIRS, guidance_weight=10.0, warmup_epochs=1)
    assert model.count_params() == backbone.count_params() + 1  # the 0/1 switch
    assert model.backbone.count_params() == backbone.count_params()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=LOSS)
    x, y = batch()
    history = model.fit(x, y, batch_size=len(x), epochs=2, verbose=0).history
    task = cross_entropy_reference(backbone.predict(x, verbose=0), y)
    guidance = history["guidance_loss"][1]
    np.testing.assert_allclose(history["loss"], [task, task + 10.0 * guidance], rtol=1e-5)
    assert float(to_numpy(model.guidance_active)) == 1.0


def test_config_and_keras_file_round_trip(tmp_path):
    model = SSIA(
        small_backbone(batch_norm=True),
        PAIRS,
        guidance_weight=3.0,
        normalization="softmax",
        distance="kl",
        p=1.5,
        interpolation="nearest",
        warmup_epochs=2,
    )
    config = model.get_config()
    revived = SSIA.from_config(json.loads(json.dumps(config)))
    assert same_config(revived.get_config(), config)
    assert revived.pairs == model.pairs

    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    x, y = batch()
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    model.save(tmp_path / "ssia.keras")
    loaded = keras.saving.load_model(tmp_path / "ssia.keras")
    assert type(loaded) is SSIA
    assert same_config(loaded.get_config(), config)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for saved, original in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(to_numpy(saved), to_numpy(original))


def test_default_pairs_are_consecutive_stage_outputs():
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for stage in (1, 2, 3):
        for block in (1, 2):
            x = keras.layers.Conv2D(2, 3, padding="same", name=f"stage{stage}_block{block}_out")(x)
    backbone = keras.Model(inputs, x)
    expected = (
        ("stage1_block2_out", "stage2_block2_out"),
        ("stage2_block2_out", "stage3_block2_out"),
    )
    assert SSIA.default_pairs(backbone) == expected
    assert SSIA(backbone).pairs == expected
    with pytest.raises(ValueError, match="pairs"):
        SSIA.default_pairs(small_backbone())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"guidance_weight": -1.0}, "guidance_weight=-1.0"),
        ({"normalization": "l1"}, "normalization='l1'"),
        ({"distance": "cosine"}, "distance='cosine'"),
        ({"distance": "kl"}, "normalization='l2'"),
        ({"p": 0}, "p=0"),
        ({"interpolation": "bicubic"}, "interpolation='bicubic'"),
        ({"warmup_epochs": -1}, "warmup_epochs=-1"),
        ({"warmup_epochs": 1.5}, "warmup_epochs=1.5"),
        ({"warmup_epochs": True}, "warmup_epochs=True"),
        ({"data_format": "NHWC"}, "data_format='NHWC'"),
        ({"pairs": []}, r"pairs=\[\]"),
        ({"pairs": "act1"}, "pairs='act1'"),
        ({"pairs": [("act1",)]}, "two different layer names"),
        ({"pairs": [("act1", "act1")]}, "two different layer names"),
        ({"pairs": [("act1", "missing")]}, "'missing'"),
        ({"pairs": [("act1", "predictions")]}, "rank-4"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    backbone = small_backbone()
    with pytest.raises(ValueError, match=message):
        SSIA(backbone, **{"pairs": PAIRS, **kwargs})


def test_rejects_a_backbone_without_symbolic_inputs():
    with pytest.raises(ValueError, match="backbone"):
        SSIA(keras.layers.Dense(3), PAIRS)


def test_trains_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    model = SSIA(small_backbone(batch_norm=True), PAIRS)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=LOSS)
    x, y = batch()
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["guidance_loss"][0])


def test_trains_a_cifar_resnet_with_its_default_pairs():
    backbone = cifar_resnet(8, input_shape=(8, 8, 3))
    model = SSIA(backbone)
    assert model.pairs == (
        ("stage1_block1_out", "stage2_block1_out"),
        ("stage2_block1_out", "stage3_block1_out"),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LOSS)
    x, y = batch()
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history
    assert history["guidance_loss"][0] > 0 and np.isfinite(history["loss"][0])
    assert model.count_params() == backbone.count_params()
