"""Trains the shared ResNet-8 with ATAC under tf.distribute.MirroredStrategy on 2 CPU replicas.

Run with KERAS_BACKEND=tensorflow and the repository root on PYTHONPATH. Prints, as JSON, the
step losses on one device and under the strategy with every BatchNorm synchronized (the host
network's and the two inside each ATAC unit), and the largest difference between the
training-mode outputs of a lone ATAC layer under the strategy and on one device, with and
without `synchronized`.
"""

import json

import tensorflow as tf

# Logical devices must be configured before TensorFlow initialises its runtime.
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_atac.layers import ATAC  # noqa: E402
from tests.robustness import training  # noqa: E402


def synchronize_batch_norms(model):
    """A copy of `model` whose layers with a `synchronized` argument (BatchNormalization, ATAC)
    all have it set, with the same weights."""

    def clone(layer):
        config = layer.get_config()
        if "synchronized" in config:
            config["synchronized"] = True
        return type(layer).from_config(config)

    synchronized = keras.models.clone_model(model, clone_function=clone)
    synchronized.set_weights(model.get_weights())
    return synchronized


def lone_atac_difference(strategy, synchronized):
    """Max |ATAC(x) under the strategy - ATAC(x) on one device| in training mode."""
    x = np.random.default_rng(0).normal(size=(8, 4, 4, 6)).astype("float32")
    with strategy.scope():
        layer = ATAC(synchronized=synchronized)
        layer.build(x.shape)
    expected = keras.ops.convert_to_numpy(layer(x, training=True))
    replicas = strategy.num_replicas_in_sync
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(np.split(x, replicas)[context.replica_id_in_sync_group])
    )
    outputs = strategy.run(tf.function(lambda xs: layer(xs, training=True)), (per_replica,))
    actual = np.concatenate([o.numpy() for o in strategy.experimental_local_results(outputs)])
    return float(np.max(np.abs(actual - expected)))


def main():
    images, labels = training.make_data()
    weights = training.make_model().get_weights()
    single_model = training.make_model()
    single_model.set_weights(weights)
    single = training.fit_losses(training.compile_model(single_model), images, labels)

    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        model = training.make_model()
        model.set_weights(weights)
        model = training.compile_model(synchronize_batch_norms(model))
    mirrored = training.fit_losses(model, images, labels)
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "single": single,
                "mirrored_synchronized": mirrored,
                "lone_atac_difference": {
                    "synchronized": lone_atac_difference(strategy, True),
                    "per_replica": lone_atac_difference(strategy, False),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
