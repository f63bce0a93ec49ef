"""Loads a checkpoint of `catalog.every_layer_model()` under this process's backend.

Usage: `load_checkpoint.py DIRECTORY`, where DIRECTORY holds `model.keras`,
`model.weights.h5` and `inputs.npy`. Writes the predictions of the loaded `.keras` model to
`DIRECTORY/<backend>_keras.npz`, and those of a freshly built model after `load_weights` to
`DIRECTORY/<backend>_weights.npz`. Prints, as JSON, the backend and the classes of the loaded
model's layers. No `custom_objects` are passed: the package registers its layers.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np

from tests.robustness import catalog


def main(directory):
    backend = keras.backend.backend()
    inputs = np.load(directory / "inputs.npy")
    model = keras.saving.load_model(directory / "model.keras")
    # The file keeps the saving backend's compile settings: from JAX, jit_compile=True, which
    # PyTorch runs through torch.compile (a minute of tracing for this model on two cores).
    # What is checked here is the loaded values, not the compiler: predict eagerly.
    model.jit_compile = False
    np.savez(directory / f"{backend}_keras.npz", **model.predict(inputs, verbose=0))
    fresh = catalog.every_layer_model()
    fresh.load_weights(directory / "model.weights.h5")
    np.savez(directory / f"{backend}_weights.npz", **fresh.predict(inputs, verbose=0))
    classes = {layer.name: type(layer).__name__ for layer in model.layers}
    print(json.dumps({"backend": backend, "classes": classes}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
