"""Attention modules on the residual branch of every block of the host networks (`attention=`).

Parameter counts are closed forms of the modules' papers, written here:

- SE and CBAM's channel gate on C channels (r = 16, Ci = floor(C / 16)): 2*C*Ci + Ci + C;
- CBAM adds the spatial gate: a 7x7 convolution from 2 maps to 1 and a BatchNorm (2*49 + 2
  trainable, 2 statistics);
- ECA: k weights, k the odd integer nearest (log2(C) + 1) / 2 (ties upwards);
- GE-θ⁺ with global extent on an H x W x C map: a depthwise H x W kernel (H*W*C), its
  BatchNorm (2C trainable, 2C statistics) and the SE-like MLP (as SE).
"""

import re

import keras
import numpy as np
import pytest

from keras_atac import layers
from keras_atac.layers import ATAC, CBAM, ECA, GatherExcite, SqueezeExcite
from keras_atac.models import cifar_resnet, count_macs, macs, resnet50_v1b
from tests.layer_test_case import to_numpy
from tests.models.model_checks import (
    check_channels_first_matches_channels_last,
    check_fit_step,
    check_save_and_load,
    counts,
    random_images,
    reference_counts,
)

# ECA's kernel size for the widths of the host networks: (log2(C) + 1) / 2 = 2.5, 3, 3.5 for
# C = 16, 32, 64 -> 3; 4.5, 5, 5.5 for 256, 512, 1024 -> 5; 6 for 2048 -> 7.
ECA_KERNEL = {16: 3, 32: 3, 64: 3, 256: 5, 512: 5, 1024: 5, 2048: 7}
CIFAR_WIDTHS = (16, 32, 64)
# ResNet-50: (output channels, blocks, map size at 224 / 32 of the input) per stage.
RESNET50_STAGES = ((256, 3, 4), (512, 4, 8), (1024, 6, 16), (2048, 3, 32))
RESNET50_TRAINABLE = 25_557_032
RESNET20_TRAINABLE = 272_282  # 10 classes, ReLU


def se_params(channels):
    inner = channels // 16
    return 2 * channels * inner + inner + channels


def module_counts(attention, channels, size):
    """(trainable, non-trainable) parameters of one module on a size x size x channels map."""
    if attention == "se":
        return se_params(channels), 0
    if attention == "cbam":
        return se_params(channels) + 2 * 7 * 7 + 2, 2
    if attention == "eca":
        return ECA_KERNEL[channels], 0
    if attention == "ge_theta_plus":
        return size * size * channels + 2 * channels + se_params(channels), 2 * channels
    raise AssertionError(attention)


def cifar_module_counts(attention, depth=20, input_size=32):
    blocks = (depth - 2) // 6
    trainable = non_trainable = 0
    for stage, width in enumerate(CIFAR_WIDTHS):
        module = module_counts(attention, width, input_size // 2**stage)
        trainable += blocks * module[0]
        non_trainable += blocks * module[1]
    return trainable, non_trainable


def resnet50_module_counts(attention, input_size):
    trainable = non_trainable = 0
    for channels, blocks, divisor in RESNET50_STAGES:
        module = module_counts(attention, channels, input_size // divisor)
        trainable += blocks * module[0]
        non_trainable += blocks * module[1]
    return trainable, non_trainable


def attention_sites(model):
    return [layer for layer in model.layers if layers.is_attention(layer)]


@pytest.fixture(scope="module")
def resnet20s():
    """ResNet-20 (10 classes) with ReLU and each module, built once for the count tests."""
    return {
        attention: cifar_resnet(20, attention=attention)
        for attention in (None, "se", "cbam", "eca", "ge_theta_plus")
    }


def test_se_resnet20_counts():
    # The closed form: 272,282 plus the SE modules of the 9 blocks (3 per stage).
    model = cifar_resnet(20, attention="se")
    assert counts(model)[0] == RESNET20_TRAINABLE + 3 * (49 + 162 + 580) == 274_655


@pytest.mark.parametrize("attention", ["se", "cbam", "eca", "ge_theta_plus"])
def test_cifar_resnet20_counts(resnet20s, attention):
    host_trainable, host_statistics = reference_counts(20, 10, (), False)
    assert host_trainable == RESNET20_TRAINABLE
    module_trainable, module_statistics = cifar_module_counts(attention)
    assert counts(resnet20s[attention]) == (
        host_trainable + module_trainable,
        host_statistics + module_statistics,
    )
    assert counts(resnet20s[None]) == (host_trainable, host_statistics)


def test_attention_composes_with_atac_activations():
    model = cifar_resnet(8, num_classes=100, activation="atac", attention="se")
    trainable, statistics = reference_counts(8, 100, (1, 2, 3), True)
    assert counts(model) == (trainable + se_params(16) + se_params(32) + se_params(64), statistics)
    assert sum(isinstance(layer, ATAC) for layer in model.layers) == 7
    assert [type(layer) for layer in attention_sites(model)] == [SqueezeExcite] * 3


def test_se_resnet50_has_28_088_024_trainable_parameters():
    # Parameter counts of SE do not depend on the input size: build at 64 x 64 to keep it cheap.
    model = resnet50_v1b(attention="se", input_shape=(64, 64, 3))
    assert resnet50_module_counts("se", 64) == (2_530_992, 0)
    assert counts(model)[0] == RESNET50_TRAINABLE + 2_530_992 == 28_088_024
    assert len(attention_sites(model)) == 16


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "atac"])
def test_resnet50_cbam_eca_and_ge_theta_plus_counts(activation):
    """Small input: GE-θ⁺'s global gather kernel is as large as each stage's map (16, 8, 4, 2)."""
    atac = 27_934_760 - RESNET50_TRAINABLE if activation == "atac" else 0
    for attention in ("cbam", "eca", "ge_theta_plus"):
        model = resnet50_v1b(activation=activation, attention=attention, input_shape=(64, 64, 3))
        module_trainable, _ = resnet50_module_counts(attention, 64)
        assert counts(model)[0] == RESNET50_TRAINABLE + atac + module_trainable, attention
        keras.backend.clear_session()


@pytest.mark.slow
def test_ge_theta_plus_resnet50_at_224_against_the_papers_33_7m():
    """GE-θ⁺ (global extent) at 224 x 224: 33,637,592 trainable, 33,720,920 with BatchNorm
    statistics. The paper's 33.7M is the latter rounded (the trainable count rounds to 33.6M).
    """
    model = resnet50_v1b(attention="ge_theta_plus")
    kernels = 3 * 56 * 56 * 256 + 4 * 28 * 28 * 512 + 6 * 14 * 14 * 1024 + 3 * 7 * 7 * 2048
    norms = 2 * (3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048)
    assert resnet50_module_counts("ge_theta_plus", 224) == (kernels + norms + 2_530_992, norms)
    assert counts(model)[0] == RESNET50_TRAINABLE + kernels + norms + 2_530_992 == 33_637_592
    assert model.count_params() == 25_610_152 + kernels + 2 * norms + 2_530_992 == 33_720_920
    assert round(model.count_params() / 1e6, 1) == 33.7


def test_cifar_placement_every_addition_takes_the_modules_output(resnet20s):
    model = resnet20s["cbam"]
    sites = attention_sites(model)
    assert [layer.name for layer in sites] == [
        f"stage{s}_block{i}_attention" for s in (1, 2, 3) for i in (1, 2, 3)
    ]
    additions = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(additions) == len(sites) == 9
    for addition in additions:
        prefix = addition.name.removesuffix("_out")
        module = model.get_layer(f"{prefix}_attention")
        # The branch's last convolution feeds the module, the module feeds the addition.
        assert module.input is model.get_layer(f"{prefix}_conv2").output
        assert addition.input[0] is module.output
        assert addition.input[1] is not module.output


@pytest.mark.slow
def test_resnet50_placement_after_bn3_with_zero_init_last():
    model = resnet50_v1b(attention="eca", input_shape=(32, 32, 3), zero_init_last=True)
    additions = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(additions) == 16
    for addition in additions:
        prefix = addition.name.removesuffix("_add")
        module = model.get_layer(f"{prefix}_attention")
        assert isinstance(module, ECA)
        assert module.input is model.get_layer(f"{prefix}_bn3").output
        assert addition.input[0] is module.output
    # Zero-initialised BN3 gammas: every residual branch, module included, starts at zero.
    x = random_images((1, 32, 32, 3))
    block_input = keras.Model(model.input, model.get_layer("stage2_block2_add").input[1])
    block_output = keras.Model(model.input, model.get_layer("stage2_block2_add").output)
    np.testing.assert_allclose(to_numpy(block_output(x)), to_numpy(block_input(x)), atol=1e-6)


@pytest.mark.parametrize("attention", ["se", "cbam", "eca", "ge_theta_plus"])
def test_fit_step(attention):
    # Reduction 4: with r = 16, stage 1's MLP has a single inner unit, which a random
    # initialisation can leave dead for a whole batch (its kernel would then not move).
    kwargs = {} if attention == "eca" else {"reduction": 4}
    model = cifar_resnet(
        8,
        num_classes=5,
        activation="atac",
        attention=layers.get(attention, **kwargs),
        input_shape=(8, 8, 3),
    )
    check_fit_step(model, random_images((4, 8, 8, 3)), 5)


def test_keras_save_and_load(tmp_path):
    model = cifar_resnet(
        8, num_classes=5, activation="atac", attention="cbam", input_shape=(8, 8, 3)
    )
    x = random_images((4, 8, 8, 3))
    check_fit_step(model, x, 5)  # non-initial weights and BatchNorm statistics
    check_save_and_load(model, x, tmp_path / "cbam_resnet.keras")


@keras.saving.register_keras_serializable("tests_attention_networks")
class SigmoidGate(keras.layers.Layer):
    """A user's attention module: x * sigmoid(x), registered below."""

    def call(self, x):
        return x * keras.ops.sigmoid(x)


def test_a_registered_user_module_is_accepted_and_saved(tmp_path):
    class Unregistered(keras.layers.Layer):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="attention="):
        cifar_resnet(8, attention=Unregistered)
    assert layers.register_attention(SigmoidGate) is SigmoidGate
    model = cifar_resnet(8, num_classes=3, attention=SigmoidGate, input_shape=(8, 8, 3))
    assert [type(layer) for layer in attention_sites(model)] == [SigmoidGate] * 3
    assert counts(model) == reference_counts(8, 3, (), False)
    check_save_and_load(model, random_images((2, 8, 8, 3)), tmp_path / "user_module.keras")


def test_a_module_instance_is_copied_with_the_models_data_format():
    unit = SqueezeExcite(reduction=4, data_format="channels_last")
    model = cifar_resnet(8, attention=unit, data_format="channels_first")
    sites = attention_sites(model)
    assert len(sites) == 3 and unit not in sites and not unit.built
    assert {(site.reduction, site.data_format) for site in sites} == {(4, "channels_first")}
    assert unit.data_format == "channels_last"


@pytest.mark.parametrize("attention", ["se", "cbam", "eca", "ge_theta_plus"])
def test_channels_first_matches_channels_last(attention):
    # 16 x 16 inputs: stage 1 has H == W == C == 16 (a broadcast along the wrong axis shows).
    def build(data_format):
        shape = (16, 16, 3) if data_format == "channels_last" else (3, 16, 16)
        return cifar_resnet(
            8, activation="atac", attention=attention, input_shape=shape, data_format=data_format
        )

    check_channels_first_matches_channels_last(build, random_images((2, 16, 16, 3)))


def test_global_channels_first_reaches_the_modules():
    keras.config.set_image_data_format("channels_first")
    try:
        model = cifar_resnet(8, attention="cbam", input_shape=(3, 16, 16))
    finally:
        keras.config.set_image_data_format("channels_last")
    assert {site.get_config()["data_format"] for site in attention_sites(model)} == {
        "channels_first"
    }
    assert model.get_layer("stage1_block1_attention").output.shape == (None, 16, 16, 16)


@pytest.mark.slow
def test_resnet50_channels_first_matches_channels_last():
    # Stage 4 of a 64 x 64 input is 2 x 2: W == H; the CBAM gates broadcast over both layouts.
    def build(data_format):
        shape = (64, 64, 3) if data_format == "channels_last" else (3, 64, 64)
        return resnet50_v1b(
            num_classes=7, attention="cbam", input_shape=shape, data_format=data_format
        )

    check_channels_first_matches_channels_last(build, random_images((2, 64, 64, 3)), (False,))


def test_ge_theta_global_needs_a_defined_spatial_size():
    with pytest.raises(ValueError, match="defined spatial dimensions"):
        cifar_resnet(8, attention="ge_theta_plus", input_shape=(None, None, 3))
    model = cifar_resnet(8, attention="ge", input_shape=(None, None, 3))
    assert tuple(model(random_images((1, 12, 12, 3))).shape) == (1, 10)


BAD_ATTENTIONS = ["relu", "atac", "xunit", "swish", "no_such_module", 3, ATAC(), keras.layers.ReLU]


@pytest.mark.parametrize("builder", [cifar_resnet, resnet50_v1b], ids=["cifar", "resnet50"])
@pytest.mark.parametrize("attention", BAD_ATTENTIONS, ids=repr)
def test_rejects_what_is_not_an_attention_module(builder, attention):
    args = (8,) if builder is cifar_resnet else ()
    accepted = "cbam, channel_attention, eca, ge, ge_theta, ge_theta_plus, se, spatial_attention"
    message = re.escape(f"`attention` must be None or an attention module: one of {accepted}")
    with pytest.raises(ValueError, match=message + ".*" + re.escape(f"attention={attention!r}")):
        builder(*args, attention=attention)


def test_count_macs_traverses_every_module(resnet20s, monkeypatch):
    """Each module is counted by its own rule (issue 11 adds the package's); a stand-in rule
    shows that count_macs reaches all 9 and adds them to the host network's convolutions."""
    plain = count_macs(resnet20s[None])
    # The host network's convolutions and head, per example at 32 x 32.
    stem = 32 * 32 * 27 * 16
    blocks = 0
    for stage, width in enumerate(CIFAR_WIDTHS):
        size = 32 // 2**stage
        in_width = CIFAR_WIDTHS[max(stage - 1, 0)]
        # Block 1: Conv3x3 in -> width, Conv3x3 width -> width; blocks 2 and 3: two of the latter.
        blocks += size * size * 9 * (in_width * width + 5 * width * width)
        blocks += size * size * in_width * width if in_width != width else 0
    assert plain == stem + blocks + 64 * 10
    for cls in (SqueezeExcite, CBAM, ECA, GatherExcite):
        monkeypatch.setitem(macs._COUNTERS, cls, lambda layer: 1000)
    for attention in ("se", "cbam", "eca", "ge_theta_plus"):
        assert count_macs(resnet20s[attention]) == plain + 9 * 1000


def test_count_macs_of_se_networks(resnet20s):
    """SE's MACs are its two dense maps, 2 * C * floor(C / 16) per module (pooling and gating
    count zero, as ATAC's global gate does)."""
    se = sum(3 * 2 * width * (width // 16) for width in CIFAR_WIDTHS)
    assert count_macs(resnet20s["se"]) == count_macs(resnet20s[None]) + se
