import importlib
import os
import subprocess
import sys

import keras
import pytest

import keras_atac
from keras_atac.api_export import EXPORTED, is_serializable_class


def test_version():
    assert keras_atac.__version__.count(".") == 2


@pytest.mark.parametrize("path", sorted(EXPORTED))
def test_every_export_is_reachable_at_its_public_path(path):
    module_path, _, name = path.rpartition(".")
    assert getattr(importlib.import_module(module_path), name) is EXPORTED[path]


@pytest.mark.parametrize("path", sorted(p for p, s in EXPORTED.items() if is_serializable_class(s)))
def test_exported_serializable_classes_are_registered_for_saving(path):
    symbol = EXPORTED[path]
    name = keras.saving.get_registered_name(symbol)
    assert name == f"keras_atac>{symbol.__name__}"
    assert keras.saving.get_registered_object(name) is symbol


def test_other_exported_classes_are_public_but_not_registered_for_saving():
    """Recipes, datasets, swap reports and callbacks are in the API reference, but a `.keras`
    file never holds them: registering them for saving would claim they can be saved."""
    plain = {
        path
        for path, symbol in EXPORTED.items()
        if isinstance(symbol, type) and not is_serializable_class(symbol)
    }
    assert plain == {
        "keras_atac.SwapReport",
        "keras_atac.SwapSite",
        "keras_atac.datasets.ImageClassificationData",
        "keras_atac.training.EpochTimer",
        "keras_atac.training.Recipe",
    }
    for path in plain:
        symbol = EXPORTED[path]
        assert keras.saving.get_registered_name(symbol) == symbol.__name__, path
        assert keras.saving.get_registered_object(f"keras_atac>{symbol.__name__}") is None
    # The serializable ones are every layer and model of the package, and nothing else.
    assert all(
        issubclass(symbol, keras.layers.Layer)
        for symbol in EXPORTED.values()
        if is_serializable_class(symbol)
    )


def test_import_adds_no_backend_framework():
    """Importing keras_atac loads no framework beyond what Keras itself loaded for the backend."""
    code = (
        "import sys, keras; before = set(sys.modules); import keras_atac; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new & {'tensorflow', 'jax', 'torch', 'tensorflow_datasets'}))"
    )
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
