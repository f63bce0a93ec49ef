"""The pre-activation CIFAR ResNet of depth 6b+2 that hosts ATAC in the paper's CIFAR runs."""

import keras

from keras_atac.api_export import keras_atac_export
from keras_atac.models import model_utils
from keras_atac.utils import checks

WIDTHS = (16, 32, 64)
STRIDES = (1, 2, 2)


@keras_atac_export("keras_atac.models.cifar_resnet")
def cifar_resnet(
    depth,
    num_classes=10,
    activation="relu",
    act_layers=4,
    input_shape=None,
    data_format=None,
    classifier_activation=None,
    attention=None,
    name=None,
):
    """The pre-activation ResNet of depth `6b + 2` for CIFAR, as the official ATAC code builds it.

    Three stages of `b = (depth - 2) / 6` basic blocks with widths 16, 32, 64 and strides 1, 2, 2:

        stem:   x = BN(x, no scale, no center); x = Conv3x3(16)(x)        (no bias, no ACT)
        block:  r = x
                x = Conv3x3(stride s)(ACT(BN(x))); x = Conv3x3(ACT(BN(x)))
                r = Conv1x1(stride s)(r) if the width changes (on the raw block input, no BN)
                out = ATT(x) + r                      (ATT: the `attention` module, or none)
        head:   Dense(num_classes)(GlobalAveragePooling(ACT(BN(x))))

    ACT is the activation under study at every site of the enabled stages and in the head.
    `act_layers = k` enables it only in the last `k` of the four groups (stages 1, 2, 3, head):
    1 for the head only, 2 for stage 3 and the head, 3 for stages 2-3 and the head, 4 for all;
    the other sites are ReLU. Convolutions have no bias and use padding 1 (explicit zero padding
    for the strided ones, to sample the grid of the 1x1 shortcut); kernels use MXNet's MSRAPrelu
    initializer and BatchNorms momentum 0.9 and epsilon 1e-5, as in the official code.

    `attention` puts an attention module (SE, CBAM, ECA, Gather-Excite, ...) on the residual
    branch of every block, after the second convolution and right before the addition, where
    the attention papers put it (e.g. the SE ResNet-20 of 10 classes: 272,282 trainable
    parameters plus 49, 162 and 580 for the SE modules of each block of stages 1, 2 and 3). It
    composes with `activation`: `activation="atac", attention="se"` has both.

    ResNet-20 with a 100-way head has 278,132 trainable parameters with ReLU and 312,708 with
    ATAC (r = 2). The paper uses depths 8, 14, 20, 26 and 32.

    Layer names, for tapping features (`model.get_layer(name).output`), with stage
    `s` in 1..3 and block `i` in 1..b:

    - `"input_bn"`, `"stem_conv"`;
    - `f"stage{s}_block{i}_bn1"`, `_act1`, `_conv1` (and `_conv1_pad` where it is strided),
      `_bn2`, `_act2`, `_conv2`, `_attention` (with `attention`), `_shortcut` (where the
      width changes) and `_out`, the block output (the addition). The output of stage `s` is
      `f"stage{s}_block{b}_out"`;
    - `"final_bn"`, `"final_act"`, `"avg_pool"`, `"predictions"`.

    Args:
        depth: the depth `6b + 2` (`b >= 1` blocks per stage), e.g. 20 for ResNet-20.
        num_classes: the number of classes of the head.
        activation: the activation under study: anything `keras_atac.layers.get` accepts
            (`"relu"`, `"atac"`, `"arelu"`, `"swish"`, a layer instance such as
            `ATAC(reduction=4)`, ...). Every site gets a fresh layer; layers with a
            `data_format` get the model's.
        act_layers: in how many of the last groups (stages 1, 2, 3, head) the activation is
            used, 1 to 4 (see above).
        input_shape: the image shape without batch axis; defaults to `(32, 32, 3)`, or
            `(3, 32, 32)` for channels-first. The spatial sizes may be `None`.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        classifier_activation: activation of the head; `None` (default) outputs logits, as the
            official code (compile with `from_logits=True`); `"softmax"` outputs probabilities.
        attention: `None` (default), or the attention module of every block's residual
            branch: a name from `keras_atac.layers.attention_names()` (`"se"`, `"cbam"`,
            `"channel_attention"`, `"spatial_attention"`, `"eca"`, `"ge"`, `"ge_theta"`,
            `"ge_theta_plus"`), a layer such as `SqueezeExcite(reduction=8)` (copied to every
            block, with the model's `data_format`), or a layer class registered with
            `keras_atac.layers.register_attention`. GE-θ with global extent needs a defined
            spatial input size (its gather kernel is as large as the map).
        name: the model's name; defaults to `f"cifar_resnet{depth}"`.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = keras_atac.models.cifar_resnet(20, num_classes=100, activation="atac")
    >>> model.count_params()  # trainable 312,708 plus BatchNorm statistics
    316154

    Reference:
        Yimian Dai, Stefan Oehmcke, Fabian Gieseke, Yiquan Wu, Kobus Barnard.
        "Attention as Activation". ICPR 2020. https://arxiv.org/abs/2007.07729
        Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun. "Identity Mappings in Deep Residual
        Networks". ECCV 2016. https://arxiv.org/abs/1603.05027
    """
    checks.check_positive_number("depth", depth, integer=True)
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(
            "`depth` must be 6 * b + 2 for b >= 1 blocks per stage (8, 14, 20, 26, 32, ...). "
            f"Received: depth={depth!r}"
        )
    checks.check_positive_number("act_layers", act_layers, integer=True)
    checks.check_number_in_range("act_layers", act_layers, 1, 4)
    model_utils.check_activation(activation)
    model_utils.check_attention(attention)
    model_utils.check_head(num_classes, classifier_activation)
    data_format = checks.standardize_data_format(data_format)
    shape = model_utils.image_input_shape(input_shape, data_format, (32, 32, 3))
    blocks = (depth - 2) // 6

    inputs = keras.Input(shape)
    x = model_utils.batch_norm(data_format, "input_bn", scale=False, center=False)(inputs)
    x = model_utils.conv2d(x, WIDTHS[0], 3, data_format, "stem_conv")
    for stage, (width, stride) in enumerate(zip(WIDTHS, STRIDES), start=1):
        # Stage s is among the last `act_layers` of the four groups (stage 1, 2, 3, head).
        stage_activation = activation if stage > 4 - act_layers else "relu"
        for block in range(1, blocks + 1):
            x = _basic_block(
                x,
                width,
                stride if block == 1 else 1,
                stage_activation,
                attention,
                data_format,
                f"stage{stage}_block{block}",
            )
    x = model_utils.batch_norm(data_format, "final_bn")(x)
    x = model_utils.activation_layer(activation, data_format, "final_act")(x)
    outputs = model_utils.classification_head(x, num_classes, classifier_activation, data_format)
    return keras.Model(inputs, outputs, name=name or f"cifar_resnet{depth}")


def _basic_block(inputs, width, stride, activation, attention, data_format, prefix):
    """BN -> ACT -> Conv3x3(stride) -> BN -> ACT -> Conv3x3 (-> ATT), plus the (projected) raw
    input."""
    x = inputs
    for index, conv_stride in ((1, stride), (2, 1)):
        x = model_utils.batch_norm(data_format, f"{prefix}_bn{index}")(x)
        x = model_utils.activation_layer(activation, data_format, f"{prefix}_act{index}")(x)
        x = model_utils.conv2d(
            x, width, 3, data_format, f"{prefix}_conv{index}", strides=conv_stride
        )
    x = model_utils.attention_layer(attention, x, data_format, f"{prefix}_attention")
    shortcut = inputs
    if inputs.shape[checks.channel_axis(data_format)] != width:
        shortcut = model_utils.conv2d(
            inputs, width, 1, data_format, f"{prefix}_shortcut", strides=stride
        )
    return keras.layers.Add(name=f"{prefix}_out")([x, shortcut])
