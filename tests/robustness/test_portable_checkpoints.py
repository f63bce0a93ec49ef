"""A checkpoint saved under this run's backend loads under all three (docs/distributed.md).

In each backend's test run a model with every package layer is trained for a step (so that
every weight and BatchNorm statistic has left its initial value) and saved as `.keras` and with
`save_weights`; a worker process per backend loads both and predicts. Over the three test runs
this checks all 3x3 (saving, loading) pairs of backends.
"""

import keras
import numpy as np
import pytest

from tests.robustness import catalog
from tests.robustness.subprocesses import run_worker

pytestmark = pytest.mark.slow

BACKENDS = ("tensorflow", "jax", "torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("checkpoint")
    keras.utils.set_random_seed(0)
    model = catalog.every_layer_model()
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(4, *catalog.EVERY_LAYER_INPUT_SHAPE)).astype("float32")
    targets = {
        name: rng.normal(size=output.shape).astype("float32")
        for name, output in model.predict(inputs, verbose=0).items()
    }
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(inputs, targets, batch_size=len(inputs), epochs=1, verbose=0)
    model.save(directory / "model.keras")
    model.save_weights(directory / "model.weights.h5")
    np.save(directory / "inputs.npy", inputs)
    return directory, model.predict(inputs, verbose=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_file_and_weights_load_under_every_backend(checkpoint, backend):
    directory, expected = checkpoint
    result = run_worker("load_checkpoint.py", directory, backend=backend)
    assert result["backend"] == backend
    for name, make in catalog.package_layers().items():
        assert result["classes"][name] == type(make()).__name__
    for kind in ("keras", "weights"):
        with np.load(directory / f"{backend}_{kind}.npz") as loaded:
            assert sorted(loaded) == sorted(expected)
            for name, values in expected.items():
                np.testing.assert_allclose(
                    loaded[name],
                    values,
                    rtol=1e-5,
                    atol=1e-6,
                    err_msg=f"{name}, saved under {keras.backend.backend()}, "
                    f"loaded under {backend} ({kind})",
                )
