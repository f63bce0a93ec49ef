"""Trains the shared ResNet-8 with ATAC twice from the same seed and reports both results.

The model adds random augmentation and noise, and fit shuffles, so the seed reaches every
random stream. Run with KERAS_BACKEND set and the repository root on PYTHONPATH; prints, as
JSON, a SHA-256 digest of the final weights of each run.
"""

import hashlib
import json

import keras
import numpy as np

from tests.robustness import training

SEED = 7


def enable_deterministic_ops():
    """Each backend's switch for deterministic kernels (it matters on GPUs; CPUs are so)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
    # JAX: XLA on CPU is deterministic; on GPU set XLA_FLAGS=--xla_gpu_deterministic_ops=true
    # before JAX starts.


def train_once():
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(training.IMAGE_SHAPE),
            keras.layers.RandomFlip("horizontal"),
            keras.layers.GaussianNoise(0.1),
            training.make_model("atac", seed=SEED),
        ]
    )
    training.compile_model(model)
    images, labels = training.make_data(batch=2 * training.GLOBAL_BATCH)
    model.fit(images, labels, batch_size=training.GLOBAL_BATCH, epochs=2, verbose=0)
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


if __name__ == "__main__":
    enable_deterministic_ops()
    print(json.dumps({"digests": [train_once(), train_once()]}))
