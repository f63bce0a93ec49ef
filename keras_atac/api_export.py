"""The decorator that marks a symbol as part of the public API."""

import keras

# Public path -> symbol, for every exported symbol (checked by tests/test_api_export.py).
EXPORTED = {}


def keras_atac_export(path):
    """Marks `symbol` as public under `path` and registers classes for `.keras` saving.

    Classes are registered with `keras.saving.register_keras_serializable(package="keras_atac")`,
    so a saved model refers to them as `"keras_atac>ClassName"` and loads without `custom_objects`.

    Args:
        path: the public dotted path, e.g. `"keras_atac.layers.ATAC"`, or a tuple of paths.
    """
    paths = (path,) if isinstance(path, str) else tuple(path)

    def decorator(symbol):
        if isinstance(symbol, type):
            keras.saving.register_keras_serializable(package="keras_atac")(symbol)
        for public_path in paths:
            EXPORTED[public_path] = symbol
        return symbol

    return decorator
