import keras
import numpy as np
import pytest

import keras_atac
from keras_atac.layers import ATAC, FoldedATAC, FoldedXUnit, XUnit
from tests.layer_test_case import to_numpy


def randomize(model, seed=0):
    """Non-trivial weights everywhere, BatchNorm moving statistics included."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        else:
            weight.assign(rng.normal(0.0, 0.5, shape).astype("float32"))


def all_layers(model):
    """The layers of `model` and of its nested models."""
    found = []
    for layer in model.layers:
        found += [layer, *(all_layers(layer) if isinstance(layer, keras.Model) else [])]
    return found


def sequential_model():
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(8, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            ATAC(),
            keras.layers.Conv2D(8, 3, padding="same"),
            ATAC(context="global", inner_activation=None, reduction=4),
            XUnit(kernel_size=3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5),
        ],
        name="sequential_atac",
    )


def functional_model():
    """A nested Sequential, a shared layer, a raw tensor op, channels-first units, dense ATAC."""
    inputs = keras.Input((4, 5, 6))
    inner = keras.Sequential(
        [keras.Input((4, 5, 6)), keras.layers.Conv2D(6, 1), ATAC()], name="inner"
    )
    x = inner(inputs)
    x = keras.layers.Permute((3, 1, 2))(x + 1.0)
    x = ATAC(data_format="channels_first", name="first")(x)
    x = XUnit(kernel_size=3, data_format="channels_first")(x)
    x = keras.layers.Flatten()(x)
    shared = keras.layers.Dense(8, name="shared")
    x = shared(ATAC(name="dense_atac")(shared(keras.layers.Dense(8)(x))))
    return keras.Model(inputs, x, name="functional_atac")


@pytest.mark.parametrize("build", [sequential_model, functional_model])
def test_folded_model_equals_the_model_in_inference(build):
    model = build()
    randomize(model)
    x = np.random.default_rng(1).normal(size=(4, *model.input_shape[1:])).astype("float32")
    folded = keras_atac.fold_batchnorm(model)

    expected = to_numpy(model(x, training=False))
    np.testing.assert_allclose(to_numpy(folded(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(folded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert type(folded) is type(model) and folded.name == model.name
    for unit, folded_unit in ((ATAC, FoldedATAC), (XUnit, FoldedXUnit)):
        count = sum(isinstance(layer, unit) for layer in all_layers(model))
        assert sum(isinstance(layer, unit) for layer in all_layers(folded)) == 0
        assert sum(isinstance(layer, folded_unit) for layer in all_layers(folded)) == count


@pytest.mark.parametrize("shape", [(8, 6, 8), (8, 8, 6), (8, 8)])
def test_channels_first_xunit_folds_exactly_when_width_or_height_equals_channels(shape):
    """(C, H, W) maps with W == C (and H == C): Keras's TensorFlow backend adds a
    channels-first depthwise bias along the width when W == C, so the folded xUnit differed
    from the original by up to 3 there (only TensorFlow had the defect)."""
    model = keras.Sequential(
        [keras.Input(shape), XUnit(kernel_size=3, data_format="channels_first")]
    )
    randomize(model)
    x = np.random.default_rng(4).normal(size=(2, *shape)).astype("float32")
    folded = keras_atac.fold_batchnorm(model)
    np.testing.assert_allclose(
        to_numpy(folded(x)), to_numpy(model(x, training=False)), rtol=1e-5, atol=1e-6
    )


def test_folded_model_has_no_batch_norm_statistics_in_its_units():
    model = sequential_model()
    folded = keras_atac.fold_batchnorm(model)
    # The stem BatchNorm stays. An ATAC unit of C channels and Ci = C // r inner channels loses
    # its BatchNorms' 4 * (C + Ci) scales, offsets and statistics and gains C + Ci biases; an
    # xUnit loses 8 * C and gains a scale, an offset and a bias per channel.
    atac_saving = 3 * (8 + 4) + 3 * (8 + 2)
    assert folded.count_params() == model.count_params() - atac_saving - 5 * 8
    assert len(folded.non_trainable_weights) == 2


def test_input_model_is_not_modified():
    model = functional_model()
    randomize(model)
    before = [to_numpy(w).copy() for w in model.weights]
    layers = list(model.layers)
    keras_atac.fold_batchnorm(model)
    assert list(model.layers) == layers
    for weight, value in zip(model.weights, before):
        np.testing.assert_array_equal(to_numpy(weight), value)


def test_folded_model_saves_and_loads(tmp_path):
    model = sequential_model()
    randomize(model)
    folded = keras_atac.fold_batchnorm(model)
    path = tmp_path / "folded.keras"
    folded.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(2).normal(size=(3, 6, 6, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), folded.predict(x, verbose=0))
    assert isinstance(loaded.layers[2], FoldedATAC)


def test_dtype_policy_name_and_trainable_flag_are_kept():
    model = keras.Sequential(
        [
            keras.Input((4, 4, 8)),
            ATAC(dtype="mixed_float16", name="gate", trainable=False),
        ]
    )
    folded = keras_atac.fold_batchnorm(model)
    layer = folded.get_layer("gate")
    assert isinstance(layer, FoldedATAC)
    assert layer.dtype_policy.name == "mixed_float16"
    assert not layer.trainable
    x = np.random.default_rng(3).normal(size=(2, 4, 4, 8)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(folded(x), "float32")),
        to_numpy(keras.ops.cast(model(x, training=False), "float32")),
        rtol=1e-2,
        atol=1e-2,
    )


def test_rejects_a_subclassed_model():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.gate = ATAC()

        def call(self, inputs):
            return self.gate(inputs)

    model = Subclassed()
    model(np.zeros((1, 4, 4, 8), "float32"))
    with pytest.raises(TypeError, match="Subclassed"):
        keras_atac.fold_batchnorm(model)
    with pytest.raises(TypeError, match="ATAC"):
        keras_atac.fold_batchnorm(ATAC())


@keras.saving.register_keras_serializable(package="tests")
class GatedBlock(keras.Model):
    """A subclassed model with an ATAC unit inside, for nesting in a Functional model."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gate = ATAC(name="hidden_gate")

    def call(self, inputs):
        return self.gate(inputs)


def test_warns_about_units_inside_a_nested_subclassed_model():
    """ATAC inside a nested subclassed model cannot be folded: a warning names it (the model
    was returned silently unfolded on TensorFlow), and the copy still computes the model."""
    inputs = keras.Input((4, 4, 8))
    outputs = ATAC(name="outer_gate")(GatedBlock(name="block")(inputs))
    model = keras.Model(inputs, outputs)
    randomize(model)
    with pytest.warns(UserWarning, match="'block' of type GatedBlock.*'hidden_gate'"):
        folded = keras_atac.fold_batchnorm(model)
    assert isinstance(folded.get_layer("outer_gate"), FoldedATAC)
    x = np.random.default_rng(5).normal(size=(2, 4, 4, 8)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(folded(x)), to_numpy(model(x, training=False)), rtol=1e-5, atol=1e-6
    )


def test_rejects_an_unbuilt_model():
    with pytest.raises(ValueError, match="not built"):
        keras_atac.fold_batchnorm(keras.Sequential([ATAC()]))
