import keras
import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import ATAC, AReLU
from tests.layer_test_case import to_numpy


def test_names_are_sorted_and_include_the_papers_units():
    known = layers.names()
    assert known == sorted(known)
    assert {"atac", "atac_global", "arelu", "relu", "silu", "gelu"} <= set(known)
    assert "swish" not in known and "swish" in layers.names(include_aliases=True)


@pytest.mark.parametrize("name", layers.names(include_aliases=True))
def test_every_name_builds_a_fresh_layer(name):
    first, second = layers.get(name), layers.get(name)
    assert isinstance(first, keras.layers.Layer)
    assert first is not second


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("swish", "silu"),
        ("SWISH", "silu"),
        ("Leaky-ReLU", "leaky_relu"),
        ("hard_swish", "hard_silu"),
    ],
)
def test_aliases_resolve_to_the_same_layer(alias, canonical):
    assert layers.get(alias).get_config() | {"name": None} == layers.get(canonical).get_config() | {
        "name": None
    }


def test_names_pass_keyword_arguments():
    layer = layers.get("atac", reduction=4, name="act1")
    assert isinstance(layer, ATAC) and layer.reduction == 4 and layer.name == "act1"
    assert layers.get("atac_global").context == "global"
    assert layers.get("relu6").max_value == 6.0


def test_layer_instance_gives_an_independent_copy_with_a_new_name():
    original = ATAC(reduction=4, name="site")
    copy = layers.get(original)
    assert copy is not original and isinstance(copy, ATAC)
    assert copy.reduction == 4 and copy.name != "site"
    assert layers.get(original, name="other").name == "other"


def test_layer_class_config_dict_and_callable():
    assert isinstance(layers.get(AReLU), AReLU)
    config = keras.saving.serialize_keras_object(ATAC(reduction=4))
    revived = layers.get(config, context="global")
    assert isinstance(revived, ATAC) and revived.reduction == 4 and revived.context == "global"
    wrapped = layers.get(keras.activations.tanh)
    np.testing.assert_allclose(to_numpy(wrapped(np.array([0.5], "float32"))), np.tanh([0.5]), 1e-6)


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match=r"identifier='atacc'.*Known names: .*arelu, atac"):
        layers.get("atacc")


@pytest.mark.parametrize("identifier", [3, None, ["relu"]])
def test_rejects_other_types(identifier):
    with pytest.raises(TypeError, match="identifier"):
        layers.get(identifier)


@pytest.mark.parametrize("name", layers.names())
def test_every_name_trains_and_saves_in_a_small_cnn(name, tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            # 16 channels: enough for the default reduction of SE, CBAM and GE-theta-plus (16).
            keras.layers.Conv2D(16, 3, padding="same"),
            layers.get(name),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 6, 3)).astype("float32")
    y = rng.normal(size=(4, 2)).astype("float32")
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), 1e-6)


@pytest.mark.parametrize("name", layers.names())
def test_every_name_takes_a_layer_name(name):
    assert layers.get(name, name="site").name == "site"


def test_attention_names_are_the_attention_modules():
    assert layers.attention_names() == [
        "cbam",
        "channel_attention",
        "eca",
        "ge",
        "ge_theta",
        "ge_theta_plus",
        "se",
        "spatial_attention",
    ]
    for name in layers.names():
        assert layers.is_attention(layers.get(name)) == (name in layers.attention_names()), name


def test_register_attention_marks_a_class_and_its_subclasses():
    class Gate(keras.layers.Layer):
        def call(self, x):
            return x * keras.ops.sigmoid(x)

    class SubGate(Gate):
        pass

    assert not layers.is_attention(Gate())
    assert layers.register_attention(Gate) is Gate
    assert layers.is_attention(Gate()) and layers.is_attention(SubGate())
    assert "gate" not in layers.attention_names()  # registering adds no factory name


@pytest.mark.parametrize("layer_class", [ATAC(), "se", keras.activations.relu, int])
def test_register_attention_rejects_what_is_not_a_layer_class(layer_class):
    with pytest.raises(ValueError, match="layer_class="):
        layers.register_attention(layer_class)
