"""Host networks of the papers, and a MAC counter.

- `cifar_resnet`: the pre-activation CIFAR ResNet of depth 6b+2 (ATAC's CIFAR runs);
- `resnet50_v1b`: ResNet-50 v1b (ATAC's ImageNet runs);
- `conv_mnist`: ConvMNIST (AReLU's MNIST runs);
- `get`, `names`: the host networks by name (`get("cifar_resnet20", activation="atac")`);
- `count_macs`, `register_mac_counter`: multiply-accumulates per forward pass;
- `SSIA`, `GAttANet` (and `gattanet_toy_cnn`): the model-level attention mechanisms, which
  wrap any functional backbone.

Every activation site is built by `keras_atac.layers.get`, so any activation name works.
"""

from keras_atac.models.gattanet import GAttANet
from keras_atac.models.hosts import get, names
from keras_atac.models.macs import count_macs, register_mac_counter
from keras_atac.models.mnist_convnet import conv_mnist
from keras_atac.models.preact_resnet import cifar_resnet
from keras_atac.models.resnet_v1b import resnet50_v1b
from keras_atac.models.ssia import SSIA
from keras_atac.models.toy_cnn import gattanet_toy_cnn

__all__ = [
    "GAttANet",
    "SSIA",
    "cifar_resnet",
    "conv_mnist",
    "count_macs",
    "gattanet_toy_cnn",
    "get",
    "names",
    "register_mac_counter",
    "resnet50_v1b",
]
