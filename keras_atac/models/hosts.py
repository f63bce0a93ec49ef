"""The host networks by name: `keras_atac.models.get("cifar_resnet20")`, `names()`.

The one table of the networks the command line (`--model`) and scripts build by name.
"""

import functools
import re

from keras_atac.api_export import keras_atac_export
from keras_atac.models.mnist_convnet import conv_mnist
from keras_atac.models.preact_resnet import cifar_resnet
from keras_atac.models.resnet_v1b import resnet50_v1b

# Name -> builder. `cifar_resnet<depth>` is a family: any depth 6b + 2 (`_CIFAR_RESNET`).
_BUILDERS = {"resnet50_v1b": resnet50_v1b, "conv_mnist": conv_mnist}
_CIFAR_RESNET = re.compile(r"cifar_resnet(\d+)")


@keras_atac_export("keras_atac.models.names")
def names():
    """The names `get` accepts: `"cifar_resnet<depth>"` (e.g. `"cifar_resnet20"`, any depth
    `6b + 2`), `"resnet50_v1b"` and `"conv_mnist"`."""
    return ("cifar_resnet<depth>", *_BUILDERS)


def builder(name):
    """The function that builds the host network `name`, taking that network's arguments.

    Raises:
        ValueError: naming `name` and the value received, for a name not in `names()`.
    """
    match = _CIFAR_RESNET.fullmatch(name) if isinstance(name, str) else None
    if match:
        return functools.partial(cifar_resnet, int(match[1]))
    if isinstance(name, str) and name in _BUILDERS:
        return _BUILDERS[name]
    raise ValueError(
        f"`name` must be a host network of keras_atac.models.names(): "
        f"{', '.join(names())}. Received: name={name!r}"
    )


@keras_atac_export("keras_atac.models.get")
def get(name, **kwargs):
    """Builds the host network `name` with the builder's keyword arguments.

    Args:
        name: one of `names()`; `"cifar_resnet<depth>"` is `cifar_resnet(depth, ...)`.
        **kwargs: the arguments of the builder (`activation`, `num_classes`, `input_shape`,
            `attention` for the residual networks, ...).

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: for an unknown `name` (naming it), or arguments the builder rejects
            (e.g. `depth=9` for `"cifar_resnet9"`).

    Example:

    >>> model = keras_atac.models.get("cifar_resnet20", activation="atac")
    """
    return builder(name)(**kwargs)
