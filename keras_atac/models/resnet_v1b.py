"""ResNet-50 v1b, the ImageNet host network of ATAC (stride on the 3x3 convolution)."""

import numbers

import keras

from keras_atac.api_export import keras_atac_export
from keras_atac.models import model_utils
from keras_atac.utils import checks

# (bottleneck width, blocks, stride) of stages 1-4; a block outputs 4 * width channels.
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
EXPANSION = 4


@keras_atac_export("keras_atac.models.resnet50_v1b")
def resnet50_v1b(
    num_classes=1000,
    activation="relu",
    act_stages=(3, 4),
    input_shape=None,
    data_format=None,
    zero_init_last=False,
    classifier_activation=None,
    attention=None,
    name="resnet50_v1b",
):
    """ResNet-50 v1b with the activation under study inside the bottlenecks of chosen stages.

    v1b (Gluon-CV's name) strides on the 3x3 convolution of the bottleneck, not on the first
    1x1. A bottleneck of width `w` and stride `s` is

        y   = BN3(Conv1x1(4w)(ACT2(BN2(Conv3x3(w, stride s)(ACT1(BN1(Conv1x1(w)(x))))))))
        out = ReLU(ATT(y) + shortcut),   shortcut = BN(Conv1x1(4w, stride s)(x)) in the first block
                                               of a stage, x otherwise

    ATT is the `attention` module on the residual branch, after BN3 and right before the
    addition (the SE, CBAM, ECA and Gather-Excite papers' placement), or the identity without
    one. ACT1 and ACT2 are the activation under study in the stages listed in `act_stages` and ReLU
    elsewhere; the post-addition ReLU and the stem ReLU always stay ReLU. The stem is
    Conv7x7(64, stride 2) -> BN -> ReLU -> MaxPool3x3(stride 2), and the head global average
    pooling -> Dense(num_classes). Strided convolutions and the max-pool pad explicitly with
    `ZeroPadding2D` and use `padding="valid"` (MXNet's symmetric padding; Keras's `"same"` would
    pad asymmetrically and misalign the 3x3 convolution against the 1x1 shortcut). Convolutions
    have no bias; kernels use MXNet's MSRAPrelu initializer and BatchNorms momentum 0.9 and
    epsilon 1e-5, as the official training script.

    With ATAC (r = 2) in stages 3 and 4 (the paper's setting, 18 units) this is the network of
    the paper's Table IV: 27,934,760 trainable and 28,006,312 total parameters, 4.397 GMACs at
    224x224 (`keras_atac.models.count_macs`); plain ResNet-50 v1b has 25,557,032 trainable
    parameters and 4.089 GMACs. SE-ResNet-50 (`attention="se"`, r = 16) has 28,088,024
    trainable parameters (25,557,032 + 2,530,992).

    Layer names, for tapping features: the stem `"conv1_pad"`, `"conv1"`, `"conv1_bn"`,
    `"conv1_relu"`, `"pool1_pad"`, `"pool1"`; in stage `s` (1..4), block `i`:
    `f"stage{s}_block{i}_conv1"`, `_bn1`, `_act1`, `_conv2` (with `_conv2_pad` where strided),
    `_bn2`, `_act2`, `_conv3`, `_bn3`, `_attention` (with `attention`), `_shortcut` and
    `_shortcut_bn` (first block), `_add`, and `_out`, the block output (after the ReLU); the
    head `"avg_pool"`, `"predictions"`.

    Args:
        num_classes: the number of classes of the head.
        activation: the activation under study: anything `keras_atac.layers.get` accepts
            (`"atac"`, `"relu"`, a layer instance such as `ATAC(reduction=4)`, ...). Every site
            gets a fresh layer; layers with a `data_format` get the model's.
        act_stages: the stages (numbers in 1..4) whose bottlenecks use `activation`; the
            paper's is `(3, 4)`. An empty tuple gives the plain ReLU network.
        input_shape: the image shape without batch axis; defaults to `(224, 224, 3)`, or
            `(3, 224, 224)` for channels-first. The spatial sizes may be `None`.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        zero_init_last: initialise the scale (gamma) of the last BatchNorm of every bottleneck
            to zero, so each block starts as the identity (the ImageNet recipe's
            `--last-gamma`).
        classifier_activation: activation of the head; `None` (default) outputs logits
            (compile with `from_logits=True`); `"softmax"` outputs probabilities.
        attention: `None` (default), or the attention module of every bottleneck's residual
            branch: a name from `keras_atac.layers.attention_names()` (`"se"`, `"cbam"`,
            `"eca"`, `"ge_theta_plus"`, ...), a layer such as `SqueezeExcite(reduction=8)`
            (copied to every block, with the model's `data_format`), or a layer class
            registered with `keras_atac.layers.register_attention`. It composes with
            `activation`. GE-θ with global extent needs a defined spatial input size.
        name: the model's name.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = keras_atac.models.resnet50_v1b(activation="atac")
    >>> round(keras_atac.models.count_macs(model) / 1e9, 3)
    4.397

    Reference:
        Yimian Dai, Stefan Oehmcke, Fabian Gieseke, Yiquan Wu, Kobus Barnard.
        "Attention as Activation". ICPR 2020. https://arxiv.org/abs/2007.07729
        Tong He, Zhi Zhang, Hang Zhang, Zhongyue Zhang, Junyuan Xie, Mu Li. "Bag of Tricks for
        Image Classification with Convolutional Neural Networks". CVPR 2019.
        https://arxiv.org/abs/1812.01187
    """
    act_stages = _check_act_stages(act_stages)
    model_utils.check_activation(activation)
    model_utils.check_attention(attention)
    model_utils.check_head(num_classes, classifier_activation)
    if not isinstance(zero_init_last, bool):
        raise ValueError(
            f"`zero_init_last` must be a bool. Received: zero_init_last={zero_init_last!r}"
        )
    data_format = checks.standardize_data_format(data_format)
    shape = model_utils.image_input_shape(input_shape, data_format, (224, 224, 3))

    inputs = keras.Input(shape)
    x = model_utils.conv2d(inputs, 64, 7, data_format, "conv1", strides=2)
    x = model_utils.batch_norm(data_format, "conv1_bn")(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    # Zeros do not change a max-pool of ReLU outputs, so this matches MXNet's -inf padding.
    x = keras.layers.ZeroPadding2D(1, data_format=data_format, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, data_format=data_format, name="pool1")(x)
    for stage, (width, blocks, stride) in enumerate(STAGES, start=1):
        stage_activation = activation if stage in act_stages else "relu"
        for block in range(1, blocks + 1):
            x = _bottleneck(
                x,
                width,
                stride if block == 1 else 1,
                stage_activation,
                attention,
                data_format,
                zero_init_last,
                f"stage{stage}_block{block}",
            )
    outputs = model_utils.classification_head(x, num_classes, classifier_activation, data_format)
    return keras.Model(inputs, outputs, name=name)


def _check_act_stages(act_stages):
    stages = tuple(act_stages) if isinstance(act_stages, (tuple, list, set, frozenset)) else None
    if stages is None or not all(
        isinstance(stage, numbers.Integral) and not isinstance(stage, bool) and 1 <= stage <= 4
        for stage in stages
    ):
        raise ValueError(
            "`act_stages` must be a tuple of stage numbers in 1..4, e.g. (3, 4), or () for none. "
            f"Received: act_stages={act_stages!r}"
        )
    return frozenset(int(stage) for stage in stages)


def _bottleneck(inputs, width, stride, activation, attention, data_format, zero_init_last, prefix):
    """1x1 -> 3x3 (stride) -> 1x1 (4x width) with BN, ACT inside, ATT on the branch's output
    and ReLU after the addition."""
    norm = model_utils.batch_norm
    x = model_utils.conv2d(inputs, width, 1, data_format, f"{prefix}_conv1")
    x = norm(data_format, f"{prefix}_bn1")(x)
    x = model_utils.activation_layer(activation, data_format, f"{prefix}_act1")(x)
    x = model_utils.conv2d(x, width, 3, data_format, f"{prefix}_conv2", strides=stride)
    x = norm(data_format, f"{prefix}_bn2")(x)
    x = model_utils.activation_layer(activation, data_format, f"{prefix}_act2")(x)
    x = model_utils.conv2d(x, EXPANSION * width, 1, data_format, f"{prefix}_conv3")
    last_gamma = "zeros" if zero_init_last else "ones"
    x = norm(data_format, f"{prefix}_bn3", gamma_initializer=last_gamma)(x)
    x = model_utils.attention_layer(attention, x, data_format, f"{prefix}_attention")
    shortcut = inputs
    if stride != 1 or inputs.shape[checks.channel_axis(data_format)] != EXPANSION * width:
        shortcut = model_utils.conv2d(
            inputs, EXPANSION * width, 1, data_format, f"{prefix}_shortcut", strides=stride
        )
        shortcut = norm(data_format, f"{prefix}_shortcut_bn")(shortcut)
    x = keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
    return keras.layers.ReLU(name=f"{prefix}_out")(x)
