"""Activation and attention layers: ATAC, AReLU and the baselines of the papers.

Each layer module registers its classes under their names (`registry.register`) when it is
imported; importing this package imports them all, so `get` knows every name.
"""

from keras_atac.layers.apl import APL
from keras_atac.layers.arelu import AReLU
from keras_atac.layers.atac import ATAC
from keras_atac.layers.cbam import CBAM, ChannelAttention, SpatialAttention
from keras_atac.layers.eca import ECA
from keras_atac.layers.folded_atac import FoldedATAC
from keras_atac.layers.folded_xunit import FoldedXUnit
from keras_atac.layers.gather_excite import GatherExcite
from keras_atac.layers.maxout import Maxout
from keras_atac.layers.mixture import Mixture
from keras_atac.layers.pau import PAU
from keras_atac.layers.prelu import PReLU
from keras_atac.layers.registry import (
    attention_names,
    canonical_name,
    get,
    is_attention,
    layer_class,
    layer_classes,
    names,
    register,
    register_attention,
    unregister,
)
from keras_atac.layers.slaf import SLAF
from keras_atac.layers.squeeze_excite import SqueezeExcite
from keras_atac.layers.xunit import XUnit

__all__ = [
    "APL",
    "ATAC",
    "AReLU",
    "CBAM",
    "ECA",
    "ChannelAttention",
    "FoldedATAC",
    "FoldedXUnit",
    "GatherExcite",
    "Maxout",
    "Mixture",
    "PAU",
    "PReLU",
    "SLAF",
    "SpatialAttention",
    "SqueezeExcite",
    "XUnit",
    "attention_names",
    "canonical_name",
    "get",
    "is_attention",
    "layer_class",
    "layer_classes",
    "names",
    "register",
    "register_attention",
    "unregister",
]
