"""keras_atac: attention as activation for Keras 3, on TensorFlow, JAX and PyTorch.

Choose the backend before importing Keras (`KERAS_BACKEND=jax`); the package itself only uses
`keras` and `keras.ops`.
"""

from keras_atac import datasets, layers, models, threads, training
from keras_atac.activation_swap import SwapReport, SwapSite, clone_model
from keras_atac.folding import fold_batchnorm
from keras_atac.version import __version__

__all__ = [
    "SwapReport",
    "SwapSite",
    "__version__",
    "clone_model",
    "datasets",
    "fold_batchnorm",
    "layers",
    "models",
    "threads",
    "training",
]
