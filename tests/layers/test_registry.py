"""The registry behind `keras_atac.layers.get`: layers register themselves, users' layers too."""

import ast
import pathlib

import keras
import numpy as np
import pytest

import keras_atac
from keras_atac import cli, layers
from keras_atac.layers import registry
from keras_atac.models import model_utils
from tests.layer_test_case import to_numpy


@keras.saving.register_keras_serializable(package="test_registry")
class SquareGate(keras.layers.Layer):
    """A user's activation: x * sigmoid(scale * x**2), with a count of its instances."""

    instances = 0

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        SquareGate.instances += 1
        self.scale = scale

    def call(self, x):
        return x * keras.ops.sigmoid(self.scale * keras.ops.square(x))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="test_registry")
class HalfGate(keras.layers.Layer):
    """A user's attention module: x * 0.5, whatever x."""

    def call(self, x):
        return x * 0.5


def square_gate(x, scale=1.0):
    return x / (1.0 + np.exp(-scale * x**2))


@pytest.fixture
def user_layers():
    """Registers the user's layers for one test and removes them afterwards."""
    layers.register("square_gate", aliases=("sq-gate",))(SquareGate)
    layers.register("square_gate_x3", scale=3.0)(SquareGate)
    layers.register("half_gate", kind="attention")(HalfGate)
    yield
    for name in ("square_gate", "square_gate_x3", "half_gate"):
        layers.unregister(name)
    registry.unregister_attention(HalfGate)


def test_a_registered_layer_comes_from_get_by_name_alias_and_preset(user_layers):
    assert {"square_gate", "square_gate_x3", "half_gate"} <= set(layers.names())
    assert "sq_gate" in layers.names(include_aliases=True)
    assert layers.canonical_name("SQ-Gate") == "square_gate"
    for name in ("square_gate", "Square-Gate", "sq-gate", "SQ_GATE"):
        layer = layers.get(name, name="site")
        assert type(layer) is SquareGate and layer.scale == 1.0 and layer.name == "site"
    assert layers.get("square_gate_x3").scale == 3.0
    assert layers.get("square_gate_x3", scale=2.0).scale == 2.0  # arguments override presets
    x = np.linspace(-3, 3, 7, dtype="float32")
    np.testing.assert_allclose(to_numpy(layers.get("sq-gate")(x)), square_gate(x), 1e-6)
    assert layers.attention_names().count("half_gate") == 1
    assert layers.is_attention(layers.get("half_gate"))
    assert not layers.is_attention(layers.get("square_gate"))
    assert SquareGate in layers.layer_classes() and HalfGate in layers.layer_classes()


def test_unregister_removes_the_name_and_its_aliases():
    layers.register("square_gate", aliases=("sq-gate",))(SquareGate)
    layers.unregister("square_gate")
    for name in ("square_gate", "sq_gate"):
        with pytest.raises(ValueError, match=f"identifier='{name}'"):
            layers.get(name)
    with pytest.raises(ValueError, match="name='square_gate'"):
        layers.unregister("square_gate")


def test_a_host_network_takes_the_registered_names(user_layers):
    model = keras_atac.models.cifar_resnet(8, activation="square_gate", attention="half_gate")
    kinds = [type(layer) for layer in model.layers]
    # Four activation sites per block (2 x 3 blocks) and the head; one module per block.
    assert kinds.count(SquareGate) == 7 and kinds.count(HalfGate) == 3
    assert keras.layers.ReLU not in kinds


def test_clone_model_swaps_in_the_registered_name(user_layers):
    inputs = keras.Input((5, 5, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.ReLU()(keras.layers.Conv2D(4, 3)(x))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    swapped, report = keras_atac.clone_model(model, "sq-gate", return_report=True)
    assert len(report.replaced) == 2
    assert sum(isinstance(layer, SquareGate) for layer in swapped.layers) == 2
    assert not any(isinstance(layer, keras.layers.ReLU) for layer in swapped.layers)
    # A model built with the user's layer is itself a source of activation sites.
    again = keras_atac.clone_model(swapped, "relu", match="square_gate")
    assert not any(isinstance(layer, SquareGate) for layer in again.layers)


def test_the_command_line_accepts_the_registered_name(user_layers, capsys):
    common = ["train", "--model", "conv_mnist", "--dataset", "mnist", "--data-dir", "/no/dir"]
    with pytest.raises(SystemExit):
        cli.main([*common, "--activation", "square_gate"])
    # The name passed the check: the error is the data folder's, read after the checks.
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*common, "--activation", "square_gatex"])
    assert "'square_gatex'" in capsys.readouterr().err
    assert "square_gate" in cli.make_parser().format_help()


def test_a_model_with_the_registered_layer_round_trips_through_keras_files(user_layers, tmp_path):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), layers.get("square_gate_x3")]
    )
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.layers[-1], SquareGate) and loaded.layers[-1].scale == 3.0
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), 1e-6)


@pytest.mark.parametrize(
    "name, aliases, taken",
    [
        ("atac", (), "'atac'"),
        ("ATAC", (), "'atac'"),  # names are compared as `get` matches them
        ("swish", (), "'swish'"),  # an alias is taken too
        ("new_name", ("relu",), "'relu'"),
        ("new_name", ("new-name",), "repeat"),
    ],
)
def test_a_taken_name_is_refused_and_registers_nothing(name, aliases, taken):
    before = layers.names(include_aliases=True)
    with pytest.raises(ValueError, match=taken):
        layers.register(name, aliases=aliases)(SquareGate)
    assert layers.names(include_aliases=True) == before
    assert type(layers.get("atac")) is layers.ATAC


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("",), "name=''"),
        ((3,), "name=3"),
        (("new_name", {"kind": "gate"}), "kind='gate'"),
    ],
)
def test_register_rejects_bad_arguments(arguments, message):
    name, *rest = arguments
    kwargs = rest[0] if rest else {}
    with pytest.raises(ValueError, match=message):
        layers.register(name, **kwargs)(SquareGate)


@pytest.mark.parametrize("layer_class", [SquareGate(), "relu", int])
def test_register_rejects_what_is_not_a_layer_class(layer_class):
    with pytest.raises(ValueError, match="layer_class="):
        layers.register("new_name")(layer_class)
    assert "new_name" not in layers.names()


def test_checking_an_identifier_creates_no_layer(user_layers):
    SquareGate.instances = 0
    assert layers.layer_class("sq-gate") is SquareGate
    model_utils.check_activation("square_gate")
    model_utils.check_attention("half_gate")
    layers.SqueezeExcite(inner_activation="square_gate", gate_activation="sq-gate")
    keras_atac.clone_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), "sq-gate")
    assert SquareGate.instances == 0
    layers.get("square_gate")
    assert SquareGate.instances == 1


def test_layer_class_is_the_class_get_builds_for_every_identifier():
    for name in layers.names(include_aliases=True):
        assert layers.layer_class(name) is type(layers.get(name)), name
    se = layers.SqueezeExcite()
    assert layers.layer_class(se) is layers.SqueezeExcite
    assert layers.layer_class(layers.ECA) is layers.ECA
    assert layers.layer_class(keras.saving.serialize_keras_object(se)) is layers.SqueezeExcite
    assert layers.layer_class(keras.activations.tanh) is keras.layers.Activation
    with pytest.raises(ValueError, match="identifier='atacc'"):
        layers.layer_class("atacc")
    with pytest.raises(TypeError, match="identifier=3"):
        layers.layer_class(3)


def test_layer_classes_are_the_classes_behind_the_names():
    classes = layers.layer_classes()
    assert set(classes) == {layers.layer_class(name) for name in layers.names()}
    package = layers.layer_classes(include_keras=False)
    assert layers.ATAC in package and layers.GatherExcite in package
    assert not set(package) & set(registry.KERAS_ACTIVATION_LAYERS)
    assert all(cls.__module__.startswith("keras_atac.layers.") for cls in package)


def test_the_registry_module_imports_no_layer():
    tree = ast.parse(pathlib.Path(registry.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"dataclasses", "keras", "keras_atac.api_export"}
