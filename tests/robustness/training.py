"""The small training problem shared by the distributed, precision and determinism checks.

A CIFAR ResNet-8 on 8x8 images, so that a few compiled steps fit in the test budget on CPU.
"""

import keras
import numpy as np

from keras_atac.models import cifar_resnet

IMAGE_SHAPE = (8, 8, 3)
NUM_CLASSES = 10
GLOBAL_BATCH = 8
STEPS = 3
LEARNING_RATE = 0.1


def make_data(seed=0, batch=GLOBAL_BATCH):
    """One batch of images and integer labels (every step trains on the same batch)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch, *IMAGE_SHAPE)).astype("float32")
    labels = rng.integers(0, NUM_CLASSES, size=(batch,))
    return images, labels


def make_model(activation="atac", seed=0):
    """ResNet-8 with `activation` at every site; the same weights for the same seed."""
    keras.utils.set_random_seed(seed)
    return cifar_resnet(8, num_classes=NUM_CLASSES, activation=activation, input_shape=IMAGE_SHAPE)


def compile_model(model, **kwargs):
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **kwargs,
    )
    return model


def fit_losses(model, images, labels, steps=STEPS):
    """The training loss of each of `steps` steps on the batch (one step per epoch)."""
    history = model.fit(
        images, labels, batch_size=len(images), epochs=steps, shuffle=False, verbose=0
    )
    return [float(loss) for loss in history.history["loss"]]
