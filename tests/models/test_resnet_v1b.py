import keras
import numpy as np
import pytest

from keras_atac.layers import AReLU
from keras_atac.models import count_macs, resnet50_v1b
from tests.models.model_checks import (
    atac_sites,
    check_channels_first_matches_channels_last,
    counts,
    random_images,
)

STAGE_BLOCKS = {1: 3, 2: 4, 3: 6, 4: 3}


def inner_sites(stages):
    return {
        f"stage{stage}_block{block}_act{index}"
        for stage in stages
        for block in range(1, STAGE_BLOCKS[stage] + 1)
        for index in (1, 2)
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "activation, trainable, total, gmacs, digits",
    [("relu", 25_557_032, 25_610_152, 4.09, 2), ("atac", 27_934_760, 28_006_312, 4.397, 3)],
    ids=["plain", "atac"],
)
def test_reproduces_table_iv(activation, trainable, total, gmacs, digits):
    """Table IV of the ATAC paper: 25.557M / 4.09 GMACs plain, 27.935M / 28.006M / 4.397."""
    model = resnet50_v1b(activation=activation)
    assert counts(model)[0] == trainable
    assert model.count_params() == total
    assert round(count_macs(model) / 1e9, digits) == gmacs
    # The default act_stages=(3, 4): the 18 inner activations of stages 3 and 4.
    assert atac_sites(model) == (inner_sites((3, 4)) if activation == "atac" else set())
    assert model.output.shape == (None, 1000)


@pytest.mark.slow
def test_structure_act_stages_and_zero_init_last():
    model = resnet50_v1b(
        num_classes=10,
        activation="arelu",
        act_stages=(1, 4),
        zero_init_last=True,
        input_shape=(64, 64, 3),
    )
    # act_stages: only the two inner activations of the listed stages change.
    expected = inner_sites((1, 4))
    assert {layer.name for layer in model.layers if isinstance(layer, AReLU)} == expected
    relus = {layer.name for layer in model.layers if type(layer) is keras.layers.ReLU}
    assert relus == {"conv1_relu"} | {
        f"stage{s}_block{b}_out" for s, n in STAGE_BLOCKS.items() for b in range(1, n + 1)
    } | (inner_sites((1, 2, 3, 4)) - expected)
    # 25,557,032 minus the 1000-way head plus the 10-way one, plus 2 scalars per AReLU.
    assert counts(model)[0] == 25_557_032 - 2048 * 990 - 990 + 2 * len(expected)

    # v1b: the stride is on the 3x3 conv; every stage but the first halves the size.
    def shape(name):
        return tuple(model.get_layer(name).output.shape[1:])

    assert shape("pool1") == (16, 16, 64)
    assert shape("stage2_block1_conv1") == (16, 16, 128)
    assert shape("stage2_block1_conv2") == (8, 8, 128)
    assert shape("stage2_block1_shortcut") == (8, 8, 512)
    assert shape("stage4_block3_out") == (2, 2, 2048)
    # A centre-tap kernel shows the strided 3x3 conv is centred on the pixels the 1x1
    # shortcut keeps (0, 2, 4, ...), not shifted by Keras's asymmetric "same" padding.
    pad = model.get_layer("stage2_block1_conv2_pad")
    conv = model.get_layer("stage2_block1_conv2")
    kernel = np.zeros(conv.kernel.shape, "float32")
    kernel[1, 1] = np.eye(128)
    conv.set_weights([kernel])
    x = random_images((1, 16, 16, 128))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(conv(pad(x))), x[:, ::2, ::2, :], rtol=1e-6
    )

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma = keras.ops.convert_to_numpy(layer.gamma)
            assert np.all(gamma == (0.0 if layer.name.endswith("_bn3") else 1.0)), layer.name


@pytest.mark.slow
def test_forward_pass_channels_first_matches_channels_last():
    def build(data_format):
        shape = (32, 32, 3) if data_format == "channels_last" else (3, 32, 32)
        return resnet50_v1b(
            num_classes=7, activation="atac", input_shape=shape, data_format=data_format
        )

    x = random_images((2, 32, 32, 3))
    first = check_channels_first_matches_channels_last(build, x, modes=(False,))
    assert {first.get_layer(name).data_format for name in atac_sites(first)} == {"channels_first"}
    outputs = keras.ops.convert_to_numpy(first(np.moveaxis(x, -1, 1), training=True))
    assert outputs.shape == (2, 7) and np.all(np.isfinite(outputs))


@pytest.mark.parametrize("act_stages", [(5,), (0, 3), "34", 3, (3.0,), (True,), None])
def test_rejects_bad_act_stages(act_stages):
    with pytest.raises(ValueError, match="act_stages="):
        resnet50_v1b(activation="atac", act_stages=act_stages)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "no_such_act"}, "identifier='no_such_act'"),
        ({"num_classes": -1}, "num_classes=-1"),
        ({"zero_init_last": 1}, "zero_init_last=1"),
        ({"input_shape": (224, 224, 3, 1)}, "input_shape="),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resnet50_v1b(**kwargs)
