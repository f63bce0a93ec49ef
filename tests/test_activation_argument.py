"""The supported way to use a keras_atac layer as a Dense/Conv activation (README).

Keras's `activation=` takes only Keras's own names, and a layer instance passed there is not
built with its host layer, so the README documents the layer after a linear layer. These
tests pin both halves of that statement.
"""

import keras
import pytest

import keras_atac


def test_atac_after_a_linear_dense_has_every_weight_before_the_first_call():
    # Dense(8) on 16 features, then ATAC on C = 8 channels, r = 2 (REFERENCE: 2·C·⌊C/r⌋ +
    # 2·⌊C/r⌋ + 2·C trainable = C² + 3C, and 2·⌊C/r⌋ + 2·C BatchNorm statistics).
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8), keras_atac.layers.ATAC()])
    channels, hidden = 8, 4
    dense = 16 * 8 + 8
    atac_trainable = 2 * channels * hidden + 2 * hidden + 2 * channels
    atac_statistics = 2 * hidden + 2 * channels
    assert model.count_params() == dense + atac_trainable + atac_statistics
    model(keras.ops.ones((2, 16)))
    assert model.count_params() == dense + atac_trainable + atac_statistics


def test_a_package_name_is_not_a_keras_activation_identifier():
    # If Keras ever accepts it, the README's advice must change.
    with pytest.raises(ValueError, match="atac"):
        keras.layers.Dense(8, activation="atac")
