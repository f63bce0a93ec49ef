"""Activation and attention layers: ATAC, AReLU and the baselines of the papers."""

from keras_atac.layers.arelu import AReLU
from keras_atac.layers.atac import ATAC
from keras_atac.layers.factory import canonical_name, get, names

__all__ = ["ATAC", "AReLU", "canonical_name", "get", "names"]
