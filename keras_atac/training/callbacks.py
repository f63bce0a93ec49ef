"""A callback that adds each epoch's duration and learning rate to the logs."""

import time

import keras

from keras_atac.api_export import keras_atac_export


@keras_atac_export("keras_atac.training.EpochTimer")
class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` and `learning_rate` to each epoch's logs.

    `epoch_seconds` is the wall time from the start of the epoch to its end, validation
    included; `learning_rate` is the optimizer's rate at the epoch's first step (the recipes
    change it only between epochs). Put this callback before `keras.callbacks.CSVLogger` so the
    CSV file and the `History` get both columns.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start
            logs["learning_rate"] = self._learning_rate
