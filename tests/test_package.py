import importlib
import os
import subprocess
import sys

import keras
import pytest

import keras_atac
from keras_atac.api_export import EXPORTED


def test_version():
    assert keras_atac.__version__.count(".") == 2


@pytest.mark.parametrize("path", sorted(EXPORTED))
def test_every_export_is_reachable_at_its_public_path(path):
    module_path, _, name = path.rpartition(".")
    assert getattr(importlib.import_module(module_path), name) is EXPORTED[path]


@pytest.mark.parametrize("path", sorted(p for p, s in EXPORTED.items() if isinstance(s, type)))
def test_exported_classes_are_registered_for_saving(path):
    symbol = EXPORTED[path]
    name = keras.saving.get_registered_name(symbol)
    assert name == f"keras_atac>{symbol.__name__}"
    assert keras.saving.get_registered_object(name) is symbol


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
