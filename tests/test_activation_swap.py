"""keras_atac.clone_model: swapping the activations of Functional and Sequential models."""

import keras
import numpy as np
import pytest

import keras_atac
from keras_atac.activation_swap import (
    CLASSIFIER_OUTPUT,
    EXCLUDED,
    GATE,
    IDENTITY,
    NOT_MATCHED,
    NOT_RECURSIVE,
)
from keras_atac.layers import ATAC, AReLU
from tests.layer_test_case import to_numpy

RNG = np.random.default_rng(0)


def outputs_of(model, x):
    return to_numpy(model(x, training=False))


def weights_by_layer(model):
    """`{layer name: [arrays]}` for every layer with weights, nested models flattened."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(weights_by_layer(layer))
        elif layer.weights:
            found[layer.name] = [to_numpy(w) for w in layer.weights]
    return found


def layers_of_type(model, cls):
    """The layers of type `cls` in `model` and its nested models."""
    found = []
    for layer in model.layers:
        found += layers_of_type(layer, cls) if isinstance(layer, keras.Model) else []
        found += [layer] if isinstance(layer, cls) else []
    return found


def assert_same_weights(expected, actual):
    for name, arrays in expected.items():
        assert name in actual, name
        for want, got in zip(arrays, actual[name]):
            np.testing.assert_array_equal(got, want, err_msg=name)


def fit_one_step(model, x, classes):
    # Eagerly on TensorFlow and PyTorch: a compiled train step costs more to build than the
    # step itself. Not on JAX, whose eager gradient compiles every op on its own: one step of
    # the swapped MobileNetV3Small takes about 140 s eagerly and 30 s jitted on two CPU cores.
    eager = keras.backend.backend() != "jax"
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=eager)
    y = np.arange(len(x)) % classes
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def assert_save_load_round_trip(model, x, path):
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert_same_weights(weights_by_layer(model), weights_by_layer(loaded))
    np.testing.assert_allclose(outputs_of(loaded, x), outputs_of(model, x), rtol=1e-5, atol=1e-6)


# Small models covering every kind of site.


def sequential_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(6, activation="relu", name="dense"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ],
        name="sequential_net",
    )


def nested_model():
    """A Functional model with a nested Sequential model, shared layers and a raw tensor op."""
    inner = keras.Sequential(
        [
            keras.Input((8, 8, 8)),
            keras.layers.Conv2D(8, 1, activation="relu", name="inner_conv"),
            keras.layers.BatchNormalization(name="inner_bn"),
            keras.layers.ReLU(name="inner_relu"),
        ],
        name="inner",
    )
    shared_conv = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="shared_conv")
    shared_relu = keras.layers.ReLU(name="shared_relu")
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    a = shared_conv(x)
    b = shared_conv(a)
    x = inner(b) + a * 0.5
    x = keras.layers.Conv2D(4, 1, name="narrow")(x)
    x = shared_relu(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = shared_relu(keras.layers.Dense(5, name="dense")(x))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="nested_net")


# Sites: stem_relu, shared_conv (two calls), inner_conv, inner_relu, shared_relu (two calls).
NESTED_NEW_LAYERS = 7
SMALL_MODELS = {"sequential": (sequential_model, 3), "nested": (nested_model, NESTED_NEW_LAYERS)}


@pytest.fixture(params=sorted(SMALL_MODELS))
def small_model(request):
    build, new_layers = SMALL_MODELS[request.param]
    return build(), new_layers


def test_canonical_name_resolves_the_factory_aliases():
    assert keras_atac.layers.canonical_name("Swish") == "silu"
    assert keras_atac.layers.canonical_name("LeakyReLU") == "leaky_relu"
    assert keras_atac.layers.canonical_name("ReLU6") == "relu6"


@pytest.mark.parametrize("name", keras_atac.layers.names())
def test_every_factory_name_takes_the_keywords_of_a_site(name):
    layer = keras_atac.layers.get(name, name="site", dtype="mixed_bfloat16")
    assert layer.name == "site" and layer.dtype_policy.name == "mixed_bfloat16"


def test_equivalent_layer_reproduces_the_outputs_exactly(small_model):
    model, _ = small_model
    x = RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    new = keras_atac.clone_model(model, "relu")
    assert layers_of_type(new, keras.layers.ReLU)
    np.testing.assert_array_equal(outputs_of(new, x), outputs_of(model, x))


def test_atac_swap_keeps_every_other_weight_and_trains(small_model, tmp_path):
    model, new_layers = small_model
    x = RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    before, weights = outputs_of(model, x), weights_by_layer(model)
    new, report = keras_atac.clone_model(model, "atac", return_report=True)

    atac_layers = layers_of_type(new, ATAC)
    assert len(atac_layers) == new_layers == sum(len(s.replaced_by) for s in report.replaced)
    assert len({id(layer) for layer in atac_layers}) == new_layers
    assert new.count_params() == model.count_params() + sum(a.count_params() for a in atac_layers)
    assert_same_weights(weights, weights_by_layer(new))
    assert [s.layer for s in report.skipped] == ["head"]
    assert report.skipped[0].reason == NOT_MATCHED

    fit_one_step(new, x, classes=3)
    np.testing.assert_array_equal(outputs_of(model, x), before)
    assert_same_weights(weights, weights_by_layer(model))
    assert_save_load_round_trip(new, x, tmp_path / "swapped.keras")


def test_shared_layers_stay_shared_and_shared_activations_are_split():
    model = nested_model()
    new, report = keras_atac.clone_model(model, "arelu", return_report=True)
    convs = [layer for layer in new.layers if layer.name == "shared_conv"]
    assert len(convs) == 1 and convs[0].get_config()["activation"] == "linear"
    sites = {site.layer: site for site in report.sites}
    assert sites["shared_conv"].replaced_by == [
        "shared_conv_activation",
        "shared_conv_activation_1",
    ]
    # The shared ReLU runs on 4 channels, then on 5 units: each call needs a layer of its own.
    assert sites["shared_relu"].replaced_by == ["shared_relu", "shared_relu_1"]
    assert sites["inner_relu"].model == "inner"
    new_names = [layer.name for layer in layers_of_type(new, AReLU)]
    assert len(new_names) == len(set(new_names)) == NESTED_NEW_LAYERS
    assert isinstance(new.get_layer("inner"), keras.Sequential)


def test_original_model_is_not_modified():
    model = nested_model()
    layers, config = list(model.layers), model.get_config()
    keras_atac.clone_model(model, "atac")
    assert model.layers == layers and model.get_config() == config
    assert model.get_layer("shared_conv").get_config()["activation"] == "relu"


def test_report_lists_every_site_and_verbose_prints_it(capsys):
    new, report = keras_atac.clone_model(nested_model(), "atac", verbose=True, return_report=True)
    printed = capsys.readouterr().out
    assert f"{len(report.replaced)} of {len(report.sites)} activation sites replaced" in printed
    assert "shared_conv (embedded)" in printed and "kept: not matched" in printed
    assert len(printed.splitlines()) == len(report.sites) + 1


@pytest.mark.parametrize("widths", [(4, 8), (8, 8)])
def test_sequential_shared_activation_is_split(widths):
    """A Sequential model that uses one activation layer twice: each place gets its own new
    layer, as in a Functional model (the clone failed when called for different widths and
    tied the two sites' weights for equal widths)."""
    shared = keras.layers.ReLU(name="act")
    model = keras.Sequential(
        [
            keras.Input((5, 5, 3)),
            keras.layers.Conv2D(widths[0], 1),
            shared,
            keras.layers.Conv2D(widths[1], 1),
            shared,
        ]
    )
    new, report = keras_atac.clone_model(model, "atac", return_report=True)
    gates = [layer for layer in new.layers if isinstance(layer, ATAC)]
    assert len(gates) == 2 and gates[0] is not gates[1]
    assert [gate.name for gate in gates] == report.sites[0].replaced_by == ["act", "act_1"]
    assert [tuple(gate.reduce_kernel.shape)[0] for gate in gates] == list(widths)
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype("float32")
    assert to_numpy(new(x)).shape == (2, 5, 5, widths[1])


def test_unbuilt_sequential_model():
    model = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    new = keras_atac.clone_model(model, "arelu")
    assert [type(layer) for layer in new.layers] == [
        keras.layers.Dense,
        AReLU,
        keras.layers.Dense,
    ]
    assert new(np.ones((1, 3), "float32")).shape == (1, 2)


def test_recursive_false_copies_nested_models_unchanged():
    model = nested_model()
    x = RNG.normal(size=(2, 8, 8, 3)).astype("float32")
    new, report = keras_atac.clone_model(model, "atac", recursive=False, return_report=True)
    sites = {site.layer: site for site in report.sites}
    assert sites["inner_relu"].reason == sites["inner_conv"].reason == NOT_RECURSIVE
    assert not layers_of_type(new.get_layer("inner"), ATAC)
    assert new.get_layer("inner") is not model.get_layer("inner")
    assert_same_weights(weights_by_layer(model), weights_by_layer(new))
    equivalent = keras_atac.clone_model(model, "relu", recursive=False)
    np.testing.assert_array_equal(outputs_of(equivalent, x), outputs_of(model, x))


def test_names_are_matched_through_keras_serialization():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Activation("swish", name="swish")(inputs)
    x = keras.layers.ReLU(6.0, name="relu6")(x)
    x = keras.layers.LeakyReLU(name="leaky")(x)
    x = keras.layers.Conv2D(3, 1, activation="gelu", name="conv")(x)
    outputs = keras.layers.PReLU(name="prelu")(x)
    model = keras.Model(inputs, outputs)

    def replaced(match):
        return [
            s.layer
            for s in keras_atac.clone_model(model, match=match, return_report=True)[1].replaced
        ]

    assert replaced(None) == ["relu6", "leaky"]
    assert replaced("silu") == replaced("Swish") == ["swish"]
    assert replaced(["gelu", "prelu"]) == ["conv", "prelu"]
    assert replaced(lambda layer: layer.name.startswith("l")) == ["leaky"]


def test_softmax_and_sigmoid_outputs_and_identities_are_kept():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(6, activation="softmax", name="attention")(inputs)
    x = keras.layers.Activation("linear", name="identity")(x)
    first = keras.layers.Dense(3, activation="softmax", name="classes")(x)
    second = keras.layers.Activation("sigmoid", name="tags")(keras.layers.Dense(2)(x))
    model = keras.Model(inputs, [first, second])
    _, report = keras_atac.clone_model(model, match=lambda layer: True, return_report=True)
    reasons = {site.layer: site.reason for site in report.sites}
    assert reasons == {
        "attention": None,
        "identity": IDENTITY,
        "classes": CLASSIFIER_OUTPUT,
        "tags": CLASSIFIER_OUTPUT,
    }


def squeeze_excite_model(multiply_order):
    """A block with an SE gate and a MobileNetV3-style hard-sigmoid gate."""
    inputs = keras.Input((4, 4, 8))
    x = keras.layers.Conv2D(8, 1, activation="relu", name="conv")(inputs)
    se = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = keras.layers.Conv2D(2, 1, activation="relu", name="se_reduce")(se)
    se = keras.layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(se)
    operands = [x, se] if multiply_order == "gated_first" else [se, x]
    x = keras.layers.Multiply()(operands)
    hard = keras.layers.ReLU(6.0, name="hard_sigmoid")(x + 3.0) * (1.0 / 6.0)
    x = x * hard
    outputs = keras.layers.ReLU(name="out_relu")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("multiply_order", ["gated_first", "gate_first"])
def test_attention_gates_are_kept(multiply_order):
    model = squeeze_excite_model(multiply_order)
    x = RNG.normal(size=(2, 4, 4, 8)).astype("float32")
    new, report = keras_atac.clone_model(
        model, "relu", match=lambda layer: True, return_report=True
    )
    reasons = {site.layer: site.reason for site in report.sites}
    assert reasons == {
        "conv": None,
        "se_reduce": None,
        "se_expand": GATE,
        "hard_sigmoid": GATE,
        "out_relu": None,
    }
    np.testing.assert_array_equal(outputs_of(new, x), outputs_of(model, x))


def test_operands_computed_independently_are_both_gates():
    inputs = keras.Input((4,))
    left = keras.layers.ReLU(name="left")(keras.layers.Dense(4)(inputs))
    right = keras.layers.ReLU(name="right")(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, keras.layers.Multiply()([left, right]))
    _, report = keras_atac.clone_model(model, return_report=True)
    assert [site.reason for site in report.sites] == [GATE, GATE]


@pytest.mark.parametrize(
    "exclude, kept",
    [
        ("stem_relu", ["stem_relu"]),
        (["inner_*", "shared_conv"], ["shared_conv", "inner_conv", "inner_relu"]),
        (lambda layer: isinstance(layer, keras.layers.Conv2D), ["shared_conv", "inner_conv"]),
    ],
)
def test_exclude_by_name_pattern_or_predicate(exclude, kept):
    _, report = keras_atac.clone_model(nested_model(), exclude=exclude, return_report=True)
    assert sorted(s.layer for s in report.skipped if s.reason == EXCLUDED) == sorted(kept)


def test_default_match_leaves_other_activations():
    _, report = keras_atac.clone_model(
        squeeze_excite_model("gated_first"), "atac", return_report=True
    )
    assert {s.layer: s.reason for s in report.skipped} == {
        "se_expand": NOT_MATCHED,
        "hard_sigmoid": GATE,
    }


def test_dtype_policies_trainable_flags_and_compile_config_are_kept():
    keras.config.set_dtype_policy("mixed_float16")
    model = sequential_model()
    keras.config.set_dtype_policy("float32")
    model.get_layer("conv").trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    new = keras_atac.clone_model(model, "atac")
    assert all(layer.dtype_policy.name == "mixed_float16" for layer in new.layers)
    assert not new.get_layer("conv").trainable and new.get_layer("relu").trainable
    assert new.get_layer("conv_activation").trainable is False
    assert new.compiled and new.loss == "sparse_categorical_crossentropy"


def test_model_level_trainable_flag_is_kept():
    model = nested_model()
    model.trainable = False
    model.get_layer("head").trainable = True
    new = keras_atac.clone_model(model, "atac")
    assert new.trainable is False and new.get_layer("head").trainable is True
    assert not new.get_layer("stem").trainable and not new.get_layer("inner").trainable
    assert new.trainable_weights == []


def test_copy_weights_false_gives_fresh_weights():
    model = sequential_model()
    new = keras_atac.clone_model(model, "atac", copy_weights=False)
    kernel, fresh = model.get_layer("dense").kernel, new.get_layer("dense").kernel
    assert kernel.shape == fresh.shape
    assert not np.array_equal(to_numpy(kernel), to_numpy(fresh))


def test_clone_function_copies_the_kept_layers():
    seen = []

    def clone_function(layer):
        seen.append(layer.name)
        return layer.__class__.from_config({**layer.get_config(), "name": "my_" + layer.name})

    new = keras_atac.clone_model(sequential_model(), "atac", clone_function=clone_function)
    assert seen == ["bn", "pool", "head"]
    assert [layer.name for layer in new.layers] == [
        "conv", "conv_activation", "my_bn", "relu", "my_pool", "dense", "dense_activation",
        "my_head",
    ]  # fmt: skip


def test_clone_function_that_changes_weights_needs_copy_weights_false():
    def wider(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Dense):
            config["units"] += 1
        return layer.__class__.from_config(config)

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2, name="d"), keras.layers.ReLU()]
    )
    with pytest.raises(ValueError, match="layer 'd'.*copy_weights=False"):
        keras_atac.clone_model(model, clone_function=wider)
    assert keras_atac.clone_model(model, clone_function=wider, copy_weights=False).output_shape == (
        None,
        3,
    )


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2, activation="relu")

    def call(self, inputs):
        return self.dense(inputs)


def test_subclassed_model_is_rejected_with_what_is_supported():
    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(TypeError, match="Functional .* and Sequential .*Subclassed"):
        keras_atac.clone_model(model)
    with pytest.raises(TypeError, match="model of type Dense"):
        keras_atac.clone_model(keras.layers.Dense(2))


def test_nested_subclassed_model_is_copied_with_a_warning():
    inner = Subclassed()
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.ReLU(name="relu")(inner(inputs)))
    with pytest.warns(UserWarning, match="subclassed model: its activations cannot be seen"):
        equivalent, report = keras_atac.clone_model(model, "relu", return_report=True)
    assert [s.layer for s in report.replaced] == ["relu"]
    x = RNG.normal(size=(2, 3)).astype("float32")
    np.testing.assert_array_equal(outputs_of(equivalent, x), outputs_of(model, x))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"activation": "atacc"}, ValueError, "activation='atacc'"),
        ({"activation": 3}, TypeError, "activation=3"),
        ({"match": "rleu"}, ValueError, "unknown activation: 'rleu'"),
        ({"match": 3}, TypeError, "match=3"),
        ({"exclude": [1]}, TypeError, r"exclude=\[1\]"),
        ({"clone_function": "copy"}, TypeError, "clone_function='copy'"),
        ({"recursive": 1}, TypeError, "recursive=1"),
        ({"copy_weights": None}, TypeError, "copy_weights=None"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        keras_atac.clone_model(sequential_model(), **kwargs)


# keras.applications, built with weights=None at their smallest input size. One module-scoped
# build per application is shared by its tests: these models take seconds to build and clone.

# name: (match, equivalent activation, replaced sites, kept sites by reason)
APPLICATIONS = {
    # 1 stem + 16 bottlenecks x 3.
    "ResNet50": (("relu", "softmax"), "relu", 49, {CLASSIFIER_OUTPUT: 1}),
    # 1 stem + 1 depthwise in the first block + 16 blocks x 2 + 1 top; all are ReLU(6.0).
    "MobileNetV2": (("relu6", "softmax"), "relu6", 35, {CLASSIFIER_OUTPUT: 1}),
    # ReLU: 1 depthwise + 2 blocks x 2 + 9 squeeze-excite inner ReLUs; each of the 9 SE blocks
    # gates with ReLU(6.0)(x + 3) / 6; 19 hard-swish activations.
    "MobileNetV3Small": (
        ("relu", "relu6", "softmax"),
        "relu",
        14,
        {GATE: 9, CLASSIFIER_OUTPUT: 1, NOT_MATCHED: 19},
    ),
    # swish: stem + top + 15 expansions + 16 depthwise + 16 SE reductions; 16 sigmoid SE gates.
    "EfficientNetB0": (
        ("swish", "sigmoid", "softmax"),
        "silu",
        49,
        {GATE: 16, CLASSIFIER_OUTPUT: 1},
    ),
    # 13 convolutions and 2 dense layers with an embedded ReLU.
    "VGG16": (("relu", "softmax"), "relu", 15, {CLASSIFIER_OUTPUT: 1}),
    # 1 stem + 58 dense-block layers x 2 + 3 transitions + 1 final.
    "DenseNet121": (("relu", "softmax"), "relu", 121, {CLASSIFIER_OUTPUT: 1}),
    # 3 + 3 + 9 + 3 blocks, each with a GELU and an identity in place of stochastic depth.
    "ConvNeXtTiny": (
        ("gelu", "linear", "softmax"),
        "gelu",
        18,
        {IDENTITY: 18, CLASSIFIER_OUTPUT: 1},
    ),
}
CLASSES = 10


class Application:
    def __init__(self, name):
        self.match, equivalent, self.replaced, self.kept = APPLICATIONS[name]
        keras.utils.set_random_seed(0)
        self.model = getattr(keras.applications, name)(
            weights=None, input_shape=(32, 32, 3), classes=CLASSES
        )
        self.x = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
        self.outputs = outputs_of(self.model, self.x)
        self.weights = weights_by_layer(self.model)
        self.equivalent = keras_atac.clone_model(self.model, equivalent, match=self.match)
        # reduction=4 keeps the clones small; EfficientNet's narrowest SE bottleneck has 4 units.
        self.swapped, self.report = keras_atac.clone_model(
            self.model, ATAC(reduction=4), match=self.match, return_report=True
        )


def application_names():
    """Every application on TensorFlow; MobileNetV3Small on JAX and PyTorch.

    The swap is a graph rewrite that no backend takes part in; what the backend adds is
    building, running and training the copy. TensorFlow does that for these models in seconds,
    JAX and PyTorch take minutes per model on a small CPU (JAX traces and compiles each op of
    a few hundred layers), so they check one application, the one with every kind of site
    (replaced ReLUs, kept gates, activations not matched, the classifier's softmax).
    """
    if keras.backend.backend() == "tensorflow":
        return sorted(APPLICATIONS)
    return ["MobileNetV3Small"]


@pytest.fixture(scope="module", params=application_names())
def application(request):
    return Application(request.param)


@pytest.mark.slow
def test_application_equivalent_swap_reproduces_the_outputs(application):
    np.testing.assert_array_equal(
        outputs_of(application.equivalent, application.x), application.outputs
    )


@pytest.mark.slow
def test_application_atac_swap(application):
    report, swapped = application.report, application.swapped
    atac_layers = layers_of_type(swapped, ATAC)
    assert len(report.replaced) == len(atac_layers) == application.replaced
    kept = {}
    for site in report.skipped:
        kept[site.reason] = kept.get(site.reason, 0) + 1
    assert kept == application.kept
    assert swapped.count_params() == application.model.count_params() + sum(
        layer.count_params() for layer in atac_layers
    )
    assert_same_weights(application.weights, weights_by_layer(swapped))
    fit_one_step(swapped, application.x, CLASSES)


@pytest.mark.slow
def test_application_original_is_unchanged(application):
    np.testing.assert_array_equal(outputs_of(application.model, application.x), application.outputs)
    assert_same_weights(application.weights, weights_by_layer(application.model))


@pytest.mark.slow
def test_application_save_and_load(application, tmp_path):
    assert_save_load_round_trip(application.swapped, application.x, tmp_path / "swapped.keras")


def test_application_tests_run_on_one_worker(application, request):
    """Under `scripts/test.sh` (xdist, --dist loadgroup), one worker builds each application.

    The group is the suffix xdist adds to the test's id; a pytest that xdist's grouping does
    not work with (pytest 9.2 with xdist 3.8) would leave it out, and every worker would build
    and clone the application again.
    """
    # xdist's workers run with dist "no" and keep the choice as the `loadgroup` option.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs under pytest-xdist with --dist loadgroup")
    name = request.node.callspec.params["application"]
    assert request.node.nodeid.endswith(f"@application-{name}")
