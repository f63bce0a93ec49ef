"""ConvMNIST, the small convolutional network of the AReLU paper's MNIST experiments."""

import keras

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import layer_utils
from keras_atac.models import model_utils
from keras_atac.utils import checks

# (filters, kernel size) of the three blocks: 28x28 -> 12x12 -> 4x4 -> 1x1.
BLOCKS = ((10, 5), (20, 5), (40, 3))


@keras_atac_export("keras_atac.models.conv_mnist")
def conv_mnist(
    activation="relu",
    num_classes=10,
    input_shape=None,
    data_format=None,
    classifier_activation=None,
    name="conv_mnist",
):
    """ConvMNIST of the AReLU paper: three Conv -> MaxPool -> ACT blocks and a dense head.

        block k (k = 1, 2, 3):  x = ACT(MaxPool2x2(Conv(filters_k, kernel_k, "valid")(x)))
        head:                   Dense(num_classes)(Flatten(x))

    with 10, 20, 40 filters and kernels 5, 5, 3, so a 28x28 image shrinks to 1x1x40. The
    activation follows the pooling, as in the reference code. Layers use Keras's default
    initialisation (the paper's "framework default"); the convolutions and the head have
    biases: 12,930 weights plus those of the activations (AReLU adds 2 per site).

    The reference ends with a log-softmax and trains with the negative log-likelihood, which
    is cross-entropy on logits: with the default `classifier_activation=None` the model
    outputs logits, and is compiled with `SparseCategoricalCrossentropy(from_logits=True)`.

    Layer names: `f"block{k}_conv"`, `f"block{k}_pool"`, `f"block{k}_act"` for k = 1, 2, 3,
    then `"flatten"` and `"predictions"`.

    Args:
        activation: the activation under study, at all three sites: anything
            `keras_atac.layers.get` accepts (`"relu"`, `"arelu"`, `"atac"`, `"swish"`, a layer
            instance, ...). Every site gets a fresh layer; layers with a `data_format` get the
            model's.
        num_classes: the number of classes of the head.
        input_shape: the image shape without batch axis; defaults to `(28, 28, 1)`, or
            `(1, 28, 28)` for channels-first. The spatial sizes must be defined (the head is
            dense over the flattened features).
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        classifier_activation: activation of the head; `None` (default) outputs logits;
            `"softmax"` outputs probabilities.
        name: the model's name.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = keras_atac.models.conv_mnist("arelu")
    >>> model.count_params()  # 12,930 + 3 AReLU units of 2 scalars
    12936

    Reference:
        Dengsheng Chen, Jun Li, Kai Xu. "AReLU: Attention-based Rectified Linear Unit".
        arXiv:2006.13858, 2020. https://arxiv.org/abs/2006.13858
    """
    model_utils.check_activation(activation)
    model_utils.check_head(num_classes, classifier_activation)
    data_format = checks.standardize_data_format(data_format)
    shape = model_utils.image_input_shape(input_shape, data_format, (28, 28, 1))
    spatial = [shape[axis - 1] for axis in checks.spatial_axes(4, data_format)]
    if None in spatial:
        raise ValueError(
            "conv_mnist needs defined spatial sizes: its head is dense over the flattened "
            f"features. Received: input_shape={input_shape!r}"
        )

    inputs = keras.Input(shape)
    x = inputs
    for index, (filters, kernel_size) in enumerate(BLOCKS, start=1):
        x = layer_utils.BiasSafeConv2D(
            filters, kernel_size, data_format=data_format, name=f"block{index}_conv"
        )(x)
        x = keras.layers.MaxPooling2D(2, data_format=data_format, name=f"block{index}_pool")(x)
        x = model_utils.activation_layer(activation, data_format, f"block{index}_act")(x)
    x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation=classifier_activation, name="predictions")(
        x
    )
    return keras.Model(inputs, outputs, name=name)
