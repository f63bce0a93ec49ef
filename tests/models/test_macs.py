import keras
import pytest

from keras_atac import layers
from keras_atac.layers import ATAC, AReLU
from keras_atac.models import count_macs, register_mac_counter


def functional(input_shape, *layers):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(
    "layer, input_shape, expected",
    [
        # Every output position multiplies the whole kernel (kh * kw * cin/groups * cout).
        (keras.layers.Conv2D(8, 3), (10, 12, 4), 8 * 10 * 3 * 3 * 4 * 8),
        (keras.layers.Conv2D(8, 3, padding="same", strides=2), (10, 12, 4), 5 * 6 * 36 * 8),
        (keras.layers.Conv2D(8, 3, groups=2), (10, 12, 4), 8 * 10 * 3 * 3 * 2 * 8),
        (keras.layers.Conv2D(8, 3, data_format="channels_first"), (4, 10, 12), 8 * 10 * 288),
        (keras.layers.Conv1D(5, 2), (9, 3), 8 * 2 * 3 * 5),
        (keras.layers.Conv3D(2, 1), (3, 4, 5, 6), 60 * 6 * 2),
        (keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (7, 7, 4), 25 * 9 * 4 * 2),
        (keras.layers.Dense(6), (5,), 5 * 6),
        (keras.layers.Dense(6), (3, 4, 5), 12 * 5 * 6),
        # ATAC(C = 8, r = 2): 2 * C * floor(C / r) per position; once for the global gate.
        (ATAC(), (10, 12, 8), 120 * 2 * 8 * 4),
        (ATAC(reduction=3, data_format="channels_first"), (8, 10, 12), 120 * 2 * 8 * 2),
        (ATAC(context="global"), (10, 12, 8), 2 * 8 * 4),
        (ATAC(), (8,), 2 * 8 * 4),
        (AReLU(), (10, 12, 8), 0),
        (keras.layers.BatchNormalization(), (10, 12, 8), 0),
        (keras.layers.MaxPooling2D(), (10, 12, 8), 0),
        # Element-wise learnable activations count zero, as ReLU and AReLU.
        (layers.APL(), (10, 12, 8), 0),
        (layers.Mixture(), (10, 12, 8), 0),
        (layers.SLAF(), (10, 12, 8), 0),
        (layers.PAU(), (10, 12, 8), 0),
        (layers.PReLU(), (10, 12, 8), 0),
        (layers.Maxout(), (10, 12, 8), 0),
        # xUnit: the depthwise k x k convolution at every position, folded or not.
        (layers.XUnit(kernel_size=3), (10, 12, 8), 120 * 9 * 8),
        (layers.FoldedXUnit(kernel_size=5), (9, 8), 9 * 5 * 8),
        (layers.FoldedATAC(), (10, 12, 8), 120 * 2 * 8 * 4),
        # SE: C -> C / r -> C once on the pooled vector; CBAM's channel attention twice (average
        # and max), its spatial attention a k x k convolution from 2 maps to 1 per position.
        (layers.SqueezeExcite(reduction=4), (10, 12, 16), 2 * 16 * 4),
        (layers.ChannelAttention(reduction=4), (10, 12, 16), 2 * 2 * 16 * 4),
        (layers.SpatialAttention(kernel_size=7), (10, 12, 16), 120 * 7 * 7 * 2),
        (layers.CBAM(reduction=4, kernel_size=3), (10, 12, 16), 4 * 16 * 4 + 120 * 9 * 2),
        # ECA: a k-tap convolution over the C pooled channels.
        (layers.ECA(kernel_size=3), (10, 12, 16), 16 * 3),
        # Gather-Excite: GE-θ⁻ is free; GE-θ's global gather one weight per element; extent 4
        # two depthwise 3x3 stride-2 convolutions (10x12 -> 5x6 -> 3x3); GE-θ⁺ adds the MLP per
        # gathered position.
        (layers.GatherExcite(), (10, 12, 8), 0),
        (layers.GatherExcite(extent=4), (10, 12, 8), 0),
        (layers.GatherExcite(extra_params=True), (10, 12, 8), 120 * 8),
        (layers.GatherExcite(extent=4, extra_params=True), (10, 12, 8), (30 + 9) * 9 * 8),
        (
            layers.GatherExcite(extent=4, extra_params=True, use_mlp=True, reduction=4),
            (10, 12, 8),
            (30 + 9) * 9 * 8 + 9 * 2 * 8 * 2,
        ),
        (
            layers.GatherExcite(use_mlp=True, reduction=4, data_format="channels_first"),
            (8, 10, 12),
            2 * 8 * 2,
        ),
    ],
)
def test_layer_macs(layer, input_shape, expected):
    assert count_macs(functional(input_shape, layer)) == expected


def test_sums_over_layers_and_nested_models():
    inner = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3), keras.layers.ReLU()]
    )
    model = functional((6, 6, 3), inner, keras.layers.Flatten(), keras.layers.Dense(2))
    assert count_macs(model) == 16 * 27 * 4 + 64 * 2
    assert count_macs(inner) == 16 * 27 * 4


def test_unknown_layer_type_is_named_in_the_error():
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    model = functional((4,), Doubler(name="doubler"))
    with pytest.raises(ValueError, match="'doubler' of type Doubler.*register_mac_counter"):
        count_macs(model)


def test_register_mac_counter_counts_a_new_layer_type():
    class Scaler(keras.layers.Layer):
        def call(self, x):
            return 3 * x

    register_mac_counter(Scaler)(lambda layer: 7)
    model = functional((4,), Scaler(), keras.layers.Dense(2))
    assert count_macs(model) == 7 + 8


def test_undefined_spatial_size_is_an_error():
    model = functional((None, None, 3), keras.layers.Conv2D(4, 3, name="conv"))
    with pytest.raises(ValueError, match="'conv' sees shape=\\(None, None, None, 4\\)"):
        count_macs(model)


def test_a_shared_layer_is_counted_once_per_call_at_its_shapes():
    """A Dense layer called on a 4-vector and on a (3, 4) batch of vectors, and an SE block
    called twice: every call counts, at the shapes of that call."""
    vector, vectors = keras.Input((4,)), keras.Input((3, 4))
    dense = keras.layers.Dense(4)
    se = layers.SqueezeExcite(reduction=2)
    x = dense(vector)
    y = se(se(keras.layers.Reshape((1, 3, 4))(dense(vectors))))
    model = keras.Model([vector, vectors], [x, y])
    assert count_macs(model) == 4 * 4 + 3 * 4 * 4 + 2 * (2 * 4 * 2)


def test_a_sequential_model_with_a_layer_used_twice():
    gate = layers.XUnit(kernel_size=3)
    model = keras.Sequential([keras.Input((6, 6, 4)), gate, keras.layers.Conv2D(4, 1), gate])
    assert count_macs(model) == 2 * 36 * 9 * 4 + 36 * 4 * 4
