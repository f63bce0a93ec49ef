"""`.keras` files saved before the registry redesign (issue 13) load with identical outputs.

The files were written with the TensorFlow backend by `tests/fixtures/make_legacy_models.py`
from the package as it was then; `atac_sequential.keras` also has ATAC configs without the
later `synchronized` argument. `cbam_functional.keras` was saved the same way (with
`KERAS_BACKEND=tensorflow`, a few steps of `fit`) by the package before CBAM's spatial gate took
its single-filter convolution (issue 14), whose weights it keeps.
"""

import pathlib

import keras
import numpy as np
import pytest

from tests.layer_test_case import to_numpy

FOLDER = pathlib.Path(__file__).parent / "fixtures" / "legacy_models"
NAMES = ["atac_sequential", "gates_functional", "learnable_functional", "cbam_functional"]
LAYERS = {
    "atac_sequential": {"atac": "ATAC", "arelu": "AReLU"},
    "gates_functional": {
        "atac_global": "ATAC",
        "se": "SqueezeExcite",
        "xunit": "XUnit",
        "ge_theta": "GatherExcite",
    },
    "learnable_functional": {"pau": "PAU", "apl": "APL"},
    "cbam_functional": {"cbam": "CBAM", "spatial_attention": "SpatialAttention"},
}


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_loads_with_identical_outputs(name):
    model = keras.saving.load_model(FOLDER / f"{name}.keras")
    for layer_name, class_name in LAYERS[name].items():
        layer = model.get_layer(layer_name)
        assert type(layer).__name__ == class_name
        assert type(layer).__module__.startswith("keras_atac.")
    stored = np.load(FOLDER / f"{name}.npz")
    outputs = to_numpy(model(stored["inputs"], training=False))
    np.testing.assert_allclose(outputs, stored["outputs"], rtol=1e-5, atol=1e-6)


def test_old_atac_configs_keep_their_variant():
    model = keras.saving.load_model(FOLDER / "atac_sequential.keras")
    atac = model.get_layer("atac")
    # Saved with the older `use_inner_relu=False`.
    assert atac.inner_activation is None and not atac.synchronized
    assert (
        keras.saving.load_model(FOLDER / "gates_functional.keras").get_layer("atac_global").context
        == "global"
    )
