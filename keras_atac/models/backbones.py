"""What the model-level mechanisms (`SSIA`, `GAttANet`) ask of the backbone they wrap.

Both read the outputs of named layers of a functional backbone, by its symbolic graph, and
both find their default layers among the block outputs of the package's ResNets.
"""

import re

import keras

# The block outputs of the package's ResNets (`cifar_resnet`, `resnet50_v1b`): stage, block.
BLOCK_OUTPUT = re.compile(r"stage(\d+)_block(\d+)_out")


def check_backbone(backbone):
    """Raises unless `backbone` is a built functional or sequential `keras.Model`.

    Raises:
        ValueError: naming `backbone` and the value received, for an object without symbolic
            inputs (a layer, a subclassed model), whose layers' outputs cannot be tapped.
    """
    if not isinstance(backbone, keras.Model) or not getattr(backbone, "inputs", None):
        raise ValueError(
            "`backbone` must be a built functional or sequential keras.Model (with symbolic "
            f"inputs, so that its layers' outputs can be tapped). Received: backbone={backbone!r}"
        )


def tapped_output(backbone, name, argument):
    """The symbolic output of the layer `name` of `backbone`, which the argument `argument`
    names.

    Raises:
        ValueError: naming `argument` and `name`, if `backbone` has no such layer.
    """
    try:
        layer = backbone.get_layer(name)
    except ValueError:
        raise ValueError(
            f"`{argument}` names a layer that backbone '{backbone.name}' does not have. "
            f"Received: {name!r}"
        ) from None
    return layer.output


def revived_config(config):
    """A mechanism's config (from `get_config`) with its serialized backbone revived."""
    return {**config, "backbone": keras.saving.deserialize_keras_object(config["backbone"])}
