import keras
import numpy as np
import pytest

from keras_atac.layers import ATAC, AReLU
from keras_atac.models import conv_mnist
from tests.layer_test_case import to_numpy
from tests.models.model_checks import (
    check_channels_first_matches_channels_last,
    check_fit_step,
    check_save_and_load,
    counts,
    random_images,
    with_random_biases,
)

# Conv(1->10, 5x5), Conv(10->20, 5x5), Conv(20->40, 3x3) and Dense(40->10), all with biases.
WEIGHTS = (25 * 10 + 10) + (25 * 10 * 20 + 20) + (9 * 20 * 40 + 40) + (40 * 10 + 10)


def test_has_12930_weights_with_relu():
    assert WEIGHTS == 12_930
    model = conv_mnist("relu")
    assert counts(model) == (12_930, 0)
    assert model.output.shape == (None, 10)


@pytest.mark.parametrize(
    "activation, extra_trainable, extra_statistics",
    [
        ("arelu", 3 * 2, 0),
        # ATAC(C), r = 2: C^2 + 3C trainable and 3C statistics, at 10, 20 and 40 channels.
        ("atac", sum(c * c + 3 * c for c in (10, 20, 40)), sum(3 * c for c in (10, 20, 40))),
        ("swish", 0, 0),
    ],
)
def test_activation_weights_come_on_top(activation, extra_trainable, extra_statistics):
    model = conv_mnist(activation)
    assert counts(model) == (12_930 + extra_trainable, extra_statistics)


def test_blocks_shrink_28_to_1_with_the_activation_after_the_pooling():
    model = conv_mnist("arelu")
    shapes = {
        "block1_pool": (12, 12, 10),
        "block2_pool": (4, 4, 20),
        "block3_pool": (1, 1, 40),
    }
    for name, shape in shapes.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape
    names = [layer.name for layer in model.layers]
    for index in (1, 2, 3):
        act = model.get_layer(f"block{index}_act")
        assert isinstance(act, AReLU)
        assert names.index(f"block{index}_act") == names.index(f"block{index}_pool") + 1


def test_framework_default_initialisation():
    model = conv_mnist()
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            config = layer.get_config()
            assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
            assert config["bias_initializer"]["class_name"] == "Zeros"


def test_forward_pass_and_fit_step_with_arelu():
    model = conv_mnist("arelu")
    x = random_images((8, 28, 28, 1))
    logits = to_numpy(model(x))
    assert logits.shape == (8, 10) and np.all(np.isfinite(logits))
    check_fit_step(model, x, 10)


def test_softmax_head_outputs_probabilities():
    model = conv_mnist(classifier_activation="softmax")
    probabilities = to_numpy(model(random_images((3, 28, 28, 1))))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_channels_first_matches_channels_last():
    check_channels_first_matches_channels_last(
        lambda data_format: conv_mnist("atac", data_format=data_format),
        random_images((2, 28, 28, 1)),
    )
    assert conv_mnist(data_format="channels_first").input.shape == (None, 1, 28, 28)


def test_channels_first_matches_channels_last_when_width_equals_filters():
    """52 columns give the second convolution 20 columns for its 20 filters (W == C), where
    Keras's TensorFlow backend adds a channels-first bias along the width (only TensorFlow
    had the defect; the check holds on every backend)."""

    def build(data_format):
        shape = (28, 52, 1) if data_format == "channels_last" else (1, 28, 52)
        return with_random_biases(conv_mnist(data_format=data_format, input_shape=shape))

    check_channels_first_matches_channels_last(build, random_images((2, 28, 52, 1)))


def test_other_input_sizes_and_classes():
    model = conv_mnist(num_classes=3, input_shape=(32, 32, 3))
    # 32 -> 14 -> 5 -> 1 spatially; the first conv sees 3 input channels.
    assert counts(model)[0] == WEIGHTS - 25 * 10 + 25 * 3 * 10 - 7 * 41
    assert model.output.shape == (None, 3)


def test_keras_save_and_load(tmp_path):
    model = conv_mnist(ATAC(reduction=4))
    x = random_images((4, 28, 28, 1))
    check_fit_step(model, x, 10)  # also gives non-initial weights and BatchNorm statistics
    check_save_and_load(model, x, tmp_path / "conv_mnist.keras")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "no_such_act"}, "identifier='no_such_act'"),
        ({"num_classes": 2.5}, "num_classes=2.5"),
        ({"input_shape": (None, None, 1)}, "defined spatial sizes"),
        ({"input_shape": (28, 28, 0)}, "input_shape="),
        ({"input_shape": "28x28"}, "input_shape='28x28'"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_mnist(**kwargs)
