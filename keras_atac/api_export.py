"""The decorator that marks a symbol as part of the public API."""

import keras

# Public path -> symbol, for every exported symbol (checked by tests/test_package.py). The API
# reference of the docs is generated from the same decorators (docs/scripts/gen_pages.py).
EXPORTED = {}


def is_serializable_class(symbol):
    """Whether `symbol` is a class that Keras saves by its config: it has both `get_config`
    and `from_config` (layers, models, losses, initializers, ...), unlike plain classes such
    as dataclasses or callbacks, which a `.keras` file never holds."""
    return (
        isinstance(symbol, type)
        and callable(getattr(symbol, "get_config", None))
        and callable(getattr(symbol, "from_config", None))
    )


def keras_atac_export(path):
    """Marks `symbol` as public under `path`; registers serializable classes for `.keras` saving.

    A class Keras serializes (`is_serializable_class`) is registered with
    `keras.saving.register_keras_serializable(package="keras_atac")`, so a saved model refers
    to it as `"keras_atac>ClassName"` and loads without `custom_objects`. Functions and other
    classes (recipes, datasets, reports) are only recorded, for the API reference.

    Args:
        path: the public dotted path, e.g. `"keras_atac.layers.ATAC"`, or a tuple of paths.
    """
    paths = (path,) if isinstance(path, str) else tuple(path)

    def decorator(symbol):
        if is_serializable_class(symbol):
            keras.saving.register_keras_serializable(package="keras_atac")(symbol)
        for public_path in paths:
            EXPORTED[public_path] = symbol
        return symbol

    return decorator
