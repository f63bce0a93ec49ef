"""Activation and attention layers: ATAC, AReLU and the baselines of the papers."""

from keras_atac.layers.arelu import AReLU
from keras_atac.layers.atac import ATAC
from keras_atac.layers.factory import canonical_name, get, names
from keras_atac.layers.folded_atac import FoldedATAC

__all__ = ["ATAC", "AReLU", "FoldedATAC", "canonical_name", "get", "names"]
