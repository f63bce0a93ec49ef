import keras
import numpy as np
import pytest

from keras_atac.layers import ATAC
from keras_atac.models import cifar_resnet
from tests.layer_test_case import to_numpy
from tests.models.model_checks import (
    atac_sites,
    check_channels_first_matches_channels_last,
    check_fit_step,
    check_save_and_load,
    counts,
    random_images,
    reference_counts,
)


@pytest.mark.parametrize(
    "activation, expected", [("relu", 278_132), ("atac", 312_708)], ids=["relu", "atac"]
)
def test_resnet20_with_100_classes_has_the_papers_parameter_count(activation, expected):
    model = cifar_resnet(20, num_classes=100, activation=activation)
    trainable, non_trainable = counts(model)
    assert trainable == expected
    assert (trainable, non_trainable) == reference_counts(
        20, 100, (1, 2, 3) if activation == "atac" else (), activation == "atac"
    )


@pytest.mark.parametrize(
    "depth, activation, trainable",
    [(8, "relu", 77_850), (8, "atac", 89_578), (32, "relu", 466_714), (32, "atac", 524_138)],
)
def test_parameter_counts_at_other_depths(depth, activation, trainable):
    model = cifar_resnet(depth, activation=activation)
    atac = activation == "atac"
    assert counts(model)[0] == trainable
    assert counts(model) == reference_counts(depth, 10, (1, 2, 3) if atac else (), atac)
    blocks = (depth - 2) // 6
    assert len(atac_sites(model)) == (6 * blocks + 1 if atac else 0)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == (
        1 + 6 * blocks + 2
    )


@pytest.mark.parametrize("act_layers", [1, 2, 3, 4])
def test_act_layers_enables_the_activation_in_the_last_stages(act_layers):
    model = cifar_resnet(8, num_classes=100, activation="atac", act_layers=act_layers)
    first_stage = 5 - act_layers
    expected = {"final_act"} | {
        f"stage{stage}_block1_act{index}" for stage in range(first_stage, 4) for index in (1, 2)
    }
    assert atac_sites(model) == expected
    for layer in model.layers:
        if layer.name.endswith(("_act1", "_act2")) and layer.name not in expected:
            assert type(layer) is keras.layers.ReLU, layer.name
    atac_stages = tuple(range(first_stage, 4))
    assert counts(model) == reference_counts(8, 100, atac_stages, True)


def test_block_outputs_names_and_strided_sampling():
    model = cifar_resnet(14)
    expected_shapes = {1: (32, 32, 16), 2: (16, 16, 32), 3: (8, 8, 64)}
    for stage, shape in expected_shapes.items():
        for block in (1, 2):
            output = model.get_layer(f"stage{stage}_block{block}_out").output
            assert tuple(output.shape[1:]) == shape
    # The projection acts on the raw block input, not on the normalised one.
    shortcut = model.get_layer("stage2_block1_shortcut")
    assert shortcut.input is model.get_layer("stage1_block2_out").output
    assert [layer.name for layer in model.layers[-4:]] == [
        "final_bn",
        "final_act",
        "avg_pool",
        "predictions",
    ]
    # A centre-tap kernel shows the stride-2 3x3 conv is centred on the pixels the 1x1
    # shortcut keeps (0, 2, 4, ...), not shifted by Keras's asymmetric "same" padding.
    pad = model.get_layer("stage2_block1_conv1_pad")
    conv = model.get_layer("stage2_block1_conv1")
    kernel = np.zeros(conv.kernel.shape, "float32")
    kernel[1, 1] = np.eye(16, 32)  # channel c -> channel c
    conv.set_weights([kernel])
    x = random_images((2, 8, 8, 16))
    y = keras.ops.convert_to_numpy(conv(pad(x)))
    np.testing.assert_allclose(y[..., :16], x[:, ::2, ::2, :], rtol=1e-6)


def test_forward_pass_fit_step_and_keras_save_and_load(tmp_path):
    model = cifar_resnet(8, num_classes=5, activation="atac", input_shape=(8, 8, 3))
    x = random_images((4, 8, 8, 3))
    assert tuple(model(x).shape) == (4, 5)
    check_fit_step(model, x, 5)  # also gives non-initial weights and BatchNorm statistics
    check_save_and_load(model, x, tmp_path / "cifar_resnet.keras")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)  # the conftest fixture restores float32
    model = cifar_resnet(8, activation="atac", input_shape=(8, 8, 3))
    outputs = model(random_images((2, 8, 8, 3)) * 100, training=True)
    assert keras.backend.standardize_dtype(outputs.dtype) == policy.split("_")[1]
    assert np.all(np.isfinite(to_numpy(keras.ops.cast(outputs, "float32"))))
    assert {keras.backend.standardize_dtype(w.dtype) for w in model.weights} == {"float32"}


def test_unknown_spatial_size_and_softmax_head():
    model = cifar_resnet(8, input_shape=(None, None, 3), classifier_activation="softmax")
    for size in (8, 12):
        probabilities = keras.ops.convert_to_numpy(model(random_images((2, size, size, 3))))
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_channels_first_matches_channels_last():
    def build(data_format):
        shape = (8, 8, 3) if data_format == "channels_last" else (3, 8, 8)
        return cifar_resnet(8, activation="atac", input_shape=shape, data_format=data_format)

    check_channels_first_matches_channels_last(build, random_images((2, 8, 8, 3)))
    model = cifar_resnet(
        8, activation=ATAC(data_format="channels_last"), data_format="channels_first"
    )
    assert model.input.shape == (None, 3, 32, 32)
    assert {model.get_layer(name).data_format for name in atac_sites(model)} == {"channels_first"}


def test_activation_instance_is_copied_to_every_site():
    unit = ATAC(reduction=4)
    model = cifar_resnet(8, activation=unit)
    sites = [model.get_layer(name) for name in atac_sites(model)]
    assert len(sites) == 7 and unit not in sites and not unit.built
    assert {layer.reduction for layer in sites} == {4}


@pytest.mark.parametrize("depth", [7, 9, 2, 0, -4, 20.0, "20", True])
def test_rejects_depths_that_are_not_6b_plus_2(depth):
    with pytest.raises(ValueError, match=f"depth={depth!r}"):
        cifar_resnet(depth)


@pytest.mark.parametrize("act_layers", [0, 5, 2.0, True, None])
def test_rejects_bad_act_layers(act_layers):
    with pytest.raises(ValueError, match=f"act_layers={act_layers!r}"):
        cifar_resnet(20, activation="atac", act_layers=act_layers)


def test_rejects_unknown_activation():
    with pytest.raises(ValueError, match="identifier='no_such_act'"):
        cifar_resnet(8, activation="no_such_act")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_classes": 0}, "num_classes=0"),
        ({"classifier_activation": "no_such_fn"}, "classifier_activation='no_such_fn'"),
        ({"input_shape": (32, 32)}, r"input_shape=\(32, 32\)"),
        ({"input_shape": (32, 32, None)}, r"input_shape=\(32, 32, None\)"),
        ({"data_format": "NCHW"}, "data_format='NCHW'"),
    ],
)
def test_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        cifar_resnet(8, **kwargs)
