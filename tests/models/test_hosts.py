"""The host networks by name: keras_atac.models.get and names."""

import pytest

from keras_atac import models
from keras_atac.models import hosts


def same_network(a, b):
    """The same network: the same layers, shapes and parameters, and the same model name
    (the layers' names differ where Keras numbers them automatically)."""

    def structure(model):
        layers = [(type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers]
        return model.name, layers, model.count_params()

    return structure(a) == structure(b)


def test_names_lists_every_network_the_command_line_builds():
    assert models.names() == ("cifar_resnet<depth>", "resnet50_v1b", "conv_mnist")


@pytest.mark.parametrize("depth", [8, 14])
def test_cifar_resnet_depth_is_read_from_the_name(depth):
    kwargs = {"activation": "arelu", "input_shape": (8, 8, 3), "num_classes": 3}
    model = models.get(f"cifar_resnet{depth}", **kwargs)
    assert same_network(model, models.cifar_resnet(depth, **kwargs))


def test_conv_mnist_and_resnet50_v1b_by_name():
    assert same_network(
        models.get("conv_mnist", activation="atac", num_classes=4),
        models.conv_mnist("atac", num_classes=4),
    )
    # Not built here (it is large): the builder is the function itself.
    assert hosts.builder("resnet50_v1b") is models.resnet50_v1b


@pytest.mark.parametrize(
    "name, message",
    [
        ("vgg16", "name='vgg16'"),
        ("cifar_resnet", "name='cifar_resnet'"),
        ("cifar_resnet<depth>", r"name='cifar_resnet<depth>'"),
        ("Conv_MNIST", "name='Conv_MNIST'"),
        (3, "name=3"),
        (None, "name=None"),
    ],
)
def test_unknown_names_are_refused_with_the_name(name, message):
    with pytest.raises(ValueError, match=message):
        models.get(name)


def test_builder_arguments_are_checked_by_the_builder():
    with pytest.raises(ValueError, match="depth=9"):
        models.get("cifar_resnet9")
