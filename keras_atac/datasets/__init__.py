"""CIFAR-10, CIFAR-100 and MNIST as tf.data pipelines for `model.fit` on every Keras backend.

`load(name, data_dir=None, label_mode="fine", subset=None)` reads a dataset from
tensorflow-datasets, an image folder or an `.npz` file; its `train_dataset()` and
`test_dataset()` apply the papers' preprocessing. TensorFlow and tensorflow-datasets are imported
only when data is loaded, so `import keras_atac` does not import them.
"""

from keras_atac.datasets.loading import ImageClassificationData, load, names, network_shape

__all__ = ["ImageClassificationData", "load", "names", "network_shape"]
