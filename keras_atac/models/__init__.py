"""Host networks and the model-level attention mechanisms of the papers."""

from keras_atac.models.gattanet import GAttANet, gattanet_toy_cnn
from keras_atac.models.ssia import SSIA

__all__ = ["GAttANet", "SSIA", "gattanet_toy_cnn"]
