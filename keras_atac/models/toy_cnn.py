"""The toy CNN of the GAttANet paper (VanRullen and Alamia, 2021), a backbone for `GAttANet`."""

import keras

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import layer_utils
from keras_atac.models import model_utils
from keras_atac.utils import checks

# The widths: filters of the three 3x3 convolutions, units of the hidden dense layer.
TOY_FILTERS = (32, 64, 128)
TOY_UNITS = 256


@keras_atac_export("keras_atac.models.gattanet_toy_cnn")
def gattanet_toy_cnn(
    num_classes=10,
    activation="relu",
    input_shape=None,
    data_format=None,
    classifier_activation=None,
    name="gattanet_toy_cnn",
):
    """A 5-layer CNN like the toy model of the GAttANet paper (CIFAR-10, about 0.83 -> 0.85).

    REFERENCE describes the paper's toy model only as a 5-layer CNN with `d = 16` on CIFAR-10;
    the widths and the block structure here are ours. Five weight layers:

        block k (k = 1, 2, 3):  x = MaxPool2x2(ACT(BN(Conv3x3(filters_k, "same")(x))))
        head:                   x = ACT(Dense(256)(Flatten(x))); logits = Dense(classes)(x)

    with 32, 64 and 128 filters. `GAttANet.default_layers` taps the four activations (three
    convolutional, one dense), i.e. every hidden layer.

    Layer names: `f"block{k}_conv"`, `_bn`, `_act`, `_pool` for k = 1, 2, 3, then `"flatten"`,
    `"dense"`, `"dense_act"` and `"predictions"`.

    Args:
        num_classes: the number of classes of the head.
        activation: the hidden activation, anything `keras_atac.layers.get` accepts.
        input_shape: the image shape without batch axis; defaults to `(32, 32, 3)`, or
            `(3, 32, 32)` for channels-first. The spatial sizes must be defined (the head is
            dense over the flattened features).
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        classifier_activation: activation of the head; `None` (default) outputs logits.
        name: the model's name.

    Returns:
        A functional `keras.Model`.

    Reference:
        Rufin VanRullen, Andrea Alamia. "GAttANet: Global attention agreement for
        convolutional neural networks". ICANN 2021, arXiv:2104.05575.
    """
    model_utils.check_activation(activation)
    model_utils.check_head(num_classes, classifier_activation)
    data_format = checks.standardize_data_format(data_format)
    shape = model_utils.image_input_shape(input_shape, data_format, (32, 32, 3))
    if None in [shape[axis - 1] for axis in checks.spatial_axes(4, data_format)]:
        raise ValueError(
            "gattanet_toy_cnn needs defined spatial sizes: its head is dense over the flattened "
            f"features. Received: input_shape={input_shape!r}"
        )
    axis = checks.channel_axis(data_format)

    inputs = keras.Input(shape)
    x = inputs
    for index, filters in enumerate(TOY_FILTERS, start=1):
        x = layer_utils.BiasSafeConv2D(
            filters, 3, padding="same", data_format=data_format, name=f"block{index}_conv"
        )(x)
        x = keras.layers.BatchNormalization(axis=axis, name=f"block{index}_bn")(x)
        x = model_utils.activation_layer(activation, data_format, f"block{index}_act")(x)
        x = keras.layers.MaxPooling2D(data_format=data_format, name=f"block{index}_pool")(x)
    x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
    x = keras.layers.Dense(TOY_UNITS, name="dense")(x)
    x = model_utils.activation_layer(activation, data_format, "dense_act")(x)
    outputs = keras.layers.Dense(num_classes, activation=classifier_activation, name="predictions")(
        x
    )
    return keras.Model(inputs, outputs, name=name)
