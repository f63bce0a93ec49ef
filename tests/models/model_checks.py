"""Checks shared by the host-network tests."""

import json

import keras
import numpy as np

from keras_atac.layers import ATAC
from tests.layer_test_case import parameter_count, to_numpy


def counts(model):
    """(trainable, non-trainable) parameter counts."""
    return parameter_count(model.trainable_weights), parameter_count(model.non_trainable_weights)


def atac_sites(model):
    return {layer.name for layer in model.layers if isinstance(layer, ATAC)}


def random_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype("float32")


def with_random_biases(model, seed=0):
    """`model` with every bias drawn at random (Keras initializes biases at zero, which hides a
    bias added along the wrong axis)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(rng.normal(0.0, 1.0, tuple(weight.shape)).astype("float32"))
    return model


def check_fit_step(model, x, num_classes):
    """One SGD step on a batch: finite loss and every trainable weight moves."""
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    y = np.arange(len(x)) % num_classes
    before = [to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for weight, old in zip(model.trainable_weights, before):
        assert not np.allclose(to_numpy(weight), old), f"{weight.path} did not change"


def check_channels_first_matches_channels_last(build, x_last, modes=(False, True)):
    """`build(data_format)` in both formats, same weights: the same outputs in `modes`.

    `modes` are the values of `training` to compare; BatchNorm on batch statistics of a 1x1
    map amplifies rounding differences, so deep networks on tiny inputs compare inference only.
    """
    last = build("channels_last")
    first = build("channels_first")
    assert [w.shape for w in first.weights] == [w.shape for w in last.weights]
    first.set_weights(last.get_weights())
    x_first = np.moveaxis(x_last, -1, 1)
    for training in modes:
        np.testing.assert_allclose(
            to_numpy(first(x_first, training=training)),
            to_numpy(last(x_last, training=training)),
            rtol=1e-4,
            atol=1e-4,
        )


def check_save_and_load(model, x, path):
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))


def reference_counts(depth, num_classes, atac_stages, atac_head):
    """(trainable, non-trainable) counts of the pre-activation ResNet, from its description.

    BN(C): 2C trainable, 2C statistics; ATAC(C) with r = 2: C^2 + 3C trainable, 3C statistics;
    convolutions without bias; the input BN has no scale/center (3 means, 3 variances).
    """
    trainable, statistics = 3 * 3 * 3 * 16, 2 * 3

    def norm_and_act(channels, atac):
        nonlocal trainable, statistics
        trainable += 2 * channels + (channels**2 + 3 * channels if atac else 0)
        statistics += 2 * channels + (3 * channels if atac else 0)

    channels = 16
    for stage, width in enumerate((16, 32, 64), start=1):
        for _ in range((depth - 2) // 6):
            norm_and_act(channels, stage in atac_stages)
            trainable += 9 * channels * width
            norm_and_act(width, stage in atac_stages)
            trainable += 9 * width * width
            if channels != width:
                trainable += channels * width
            channels = width
    norm_and_act(64, atac_head)
    return trainable + 64 * num_classes + num_classes, statistics
