"""CIFAR-10, CIFAR-100 and MNIST as the ATAC and AReLU papers trained on them."""

import dataclasses
import pathlib

import numpy as np

from keras_atac.api_export import keras_atac_export
from keras_atac.datasets import pipelines, sources
from keras_atac.utils import checks

# Per-channel statistics of CIFAR-10 that the official ATAC code normalises with (used for
# CIFAR-100 too, as there).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
LABEL_MODES = ("fine", "coarse")


@dataclasses.dataclass(frozen=True)
class _Spec:
    tfds_name: str
    image_shape: tuple
    # Output units of the papers' networks. For CIFAR-100 the ATAC paper kept a 100-way head
    # when it trained on the 20 coarse labels.
    num_classes: int
    num_coarse_classes: int | None
    # ATAC's CIFAR recipe: pad-crop-flip and mean/std normalisation; MNIST is only scaled.
    augment: bool
    mean: tuple | None
    std: tuple | None


_SPECS = {
    "cifar10": _Spec("cifar10", (32, 32, 3), 10, None, True, CIFAR_MEAN, CIFAR_STD),
    "cifar100": _Spec("cifar100", (32, 32, 3), 100, 20, True, CIFAR_MEAN, CIFAR_STD),
    "mnist": _Spec("mnist", (28, 28, 1), 10, None, False, None, None),
}


@keras_atac_export("keras_atac.datasets.names")
def names():
    """The dataset names `load` accepts."""
    return sorted(_SPECS)


@keras_atac_export("keras_atac.datasets.network_shape")
def network_shape(name):
    """`(image_shape, num_classes)` of dataset `name`'s networks, without loading any data.

    `num_classes` is the papers' number of output units (100 for CIFAR-100, also with the
    coarse labels).
    """
    if name not in _SPECS:
        raise ValueError(f"Unknown dataset. Received: name={name!r}; known: {names()}")
    return _SPECS[name].image_shape, _SPECS[name].num_classes


# The plain return type of `load`, exported for the API reference.
@keras_atac_export("keras_atac.datasets.ImageClassificationData")
@dataclasses.dataclass(frozen=True)
class ImageClassificationData:
    """A dataset held in memory, with its train and test pipelines.

    `load` creates it. The arrays are the images as stored (uint8, (N, H, W, C)) and the labels
    the model is trained on; `train_dataset` and `test_dataset` build fresh tf.data pipelines
    from them, so several runs (e.g. one per activation) can see exactly the same batches.

    Attributes:
        name: the dataset name, e.g. `"cifar10"`.
        x_train, y_train, x_test, y_test: images and labels.
        num_classes: the number of output units the papers' networks use (100 for CIFAR-100,
            also with its 20 coarse labels, as in the ATAC paper).
        label_mode: `"fine"` or `"coarse"` (CIFAR-100's superclasses).
        source: where the arrays came from (`"tensorflow-datasets"` or a path).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    label_mode: str
    source: str

    @property
    def input_shape(self):
        """The shape of one image, `(height, width, channels)`."""
        return tuple(self.x_train.shape[1:])

    def steps_per_epoch(self, batch_size):
        """Training batches per epoch (the last partial batch is dropped)."""
        return len(self.x_train) // batch_size

    def train_dataset(self, batch_size=128, seed=None, augment=True):
        """Shuffled batches `(images, labels)` of the training set, last partial batch dropped.

        Args:
            batch_size: images per batch.
            seed: seeds the shuffle and the augmentation (the same seed gives the same batches).
            augment: apply the dataset's augmentation (CIFAR: zero-pad 4, random crop, flip;
                MNIST has none).

        Returns:
            A `tf.data.Dataset` of float32 images, normalised as the papers did, and int labels.
        """
        checks.check_positive_number("batch_size", batch_size, integer=True)
        if self.steps_per_epoch(batch_size) == 0:
            raise ValueError(
                f"The training set ({len(self.x_train)} images) is smaller than one batch. "
                f"Received: batch_size={batch_size}"
            )
        spec = _SPECS[self.name]
        return pipelines.train_dataset(
            self.x_train,
            self.y_train,
            self._normalizer(),
            batch_size,
            augment=augment and spec.augment,
            seed=seed,
        )

    def test_dataset(self, batch_size=128):
        """Batches `(images, labels)` of the whole test set, in order, normalised."""
        checks.check_positive_number("batch_size", batch_size, integer=True)
        return pipelines.test_dataset(self.x_test, self.y_test, self._normalizer(), batch_size)

    def _normalizer(self):
        spec = _SPECS[self.name]
        return pipelines.normalizer(self.input_shape, spec.mean, spec.std)


def balanced_subset(labels, size):
    """Indices of the first images of every class, `size` in all, in dataset order.

    Every class present gets `size // K` images (the first `size % K` classes one more), taken
    in the order of the dataset.

    Raises:
        ValueError: if a class has fewer images than its share.
    """
    classes, counts = np.unique(labels, return_counts=True)
    shares = np.full(len(classes), size // len(classes))
    shares[: size % len(classes)] += 1
    if np.any(counts < shares):
        short = int(classes[np.argmax(counts < shares)])
        raise ValueError(
            f"A class-balanced subset of {size} images needs {int(shares.max())} images of "
            f"every class, but class {short} has only {int(counts[classes == short][0])}. "
            f"Received: subset={size}"
        )
    picked = [np.flatnonzero(labels == c)[:share] for c, share in zip(classes, shares)]
    return np.sort(np.concatenate(picked))


def _read(spec, data_dir):
    if data_dir is None:
        return sources.from_tfds(spec.tfds_name), "tensorflow-datasets"
    path = pathlib.Path(data_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"The data folder or file does not exist. Received: data_dir={str(data_dir)!r}"
        )
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(
                "`data_dir` must be an image folder (train/<class>/, test/<class>/) or an .npz "
                f"file. Received: data_dir={str(data_dir)!r}"
            )
        return sources.from_npz(path), str(path)
    return sources.from_image_folder(path, spec.image_shape, spec.num_classes), str(path)


def _check(arrays, name, spec, source, suffix, num_labels):
    """Checks the image shapes and the labels `y_<split><suffix>` of both splits."""
    for split in sources.SPLITS:
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}{suffix}"]
        if images.shape[1:] != spec.image_shape or len(images) != len(labels):
            raise ValueError(
                f"{name} needs {spec.image_shape} images with one label each; the {split} split "
                f"of {source} has images of shape {images.shape} and {len(labels)} labels."
            )
        if labels.size and (labels.min() < 0 or labels.max() >= num_labels):
            raise ValueError(
                f"{name} has {num_labels} classes, but the {split} labels of {source} range "
                f"over [{labels.min()}, {labels.max()}]."
            )


@keras_atac_export("keras_atac.datasets.load")
def load(name, data_dir=None, label_mode="fine", subset=None):
    """Loads CIFAR-10, CIFAR-100 or MNIST into memory.

    Three sources, chosen by `data_dir`:

    - `None`: tensorflow-datasets, which downloads the dataset on first use (set
      `TFDS_DATA_DIR` to choose where it is kept);
    - a folder laid out as `train/<class>/*` and `test/<class>/*` (read with
      `keras.utils.image_dataset_from_directory`; classes in name order, so CIFAR-10's folders
      `airplane ... truck` get Keras's labels 0..9);
    - an `.npz` file with the arrays `x_train`, `y_train`, `x_test`, `y_test` (as written by
      `numpy.savez` from `keras.datasets.*.load_data()`), plus `y_train_coarse` and
      `y_test_coarse` for CIFAR-100's coarse labels.

    Args:
        name: one of `names()`: `"cifar10"`, `"cifar100"`, `"mnist"`.
        data_dir: the source (see above).
        label_mode: `"fine"`, or `"coarse"` for CIFAR-100's 20 superclasses (the labels of the
            ATAC paper's CIFAR-100 results, which kept a 100-way output layer).
        subset: keep only this many training images: the first `subset // K` of every one of
            the K (fine) classes in the source's order, so the subset is class-balanced. The
            test set is always complete.

    Returns:
        An `ImageClassificationData`; call its `train_dataset()` and `test_dataset()`.

    Raises:
        ValueError: for an unknown name or label mode, a malformed folder or file, or a subset
            that is not a positive integer or is larger than a class allows.
        FileNotFoundError: if `data_dir` does not exist.

    Example:

    >>> data = keras_atac.datasets.load("cifar10", data_dir="/tmp/cifar10", subset=10_000)
    >>> model.fit(data.train_dataset(batch_size=128, seed=0), epochs=15,
    ...           validation_data=data.test_dataset())
    """
    if name not in _SPECS:
        raise ValueError(f"Unknown dataset: name={name!r}. Known datasets: {', '.join(names())}.")
    spec = _SPECS[name]
    checks.check_choice("label_mode", label_mode, LABEL_MODES)
    if label_mode == "coarse" and spec.num_coarse_classes is None:
        raise ValueError(
            f"Only cifar100 has coarse labels. Received: label_mode='coarse' for {name}"
        )
    if subset is not None:
        checks.check_positive_number("subset", subset, integer=True)

    arrays, source = _read(spec, data_dir)
    _check(arrays, name, spec, source, "", spec.num_classes)
    suffix = "_coarse" if label_mode == "coarse" else ""
    if suffix:
        if "y_train_coarse" not in arrays or "y_test_coarse" not in arrays:
            raise ValueError(
                "Coarse labels need tensorflow-datasets or an .npz file with y_train_coarse and "
                f"y_test_coarse; {source} has none."
            )
        _check(arrays, name, spec, source, suffix, spec.num_coarse_classes)
    x_train, y_train = arrays["x_train"], arrays[f"y_train{suffix}"]
    if subset is not None:
        if subset > len(x_train):
            raise ValueError(
                f"`subset` is larger than the training set of {source} ({len(x_train)} images). "
                f"Received: subset={subset}"
            )
        # Balanced over the fine classes, also when training on coarse labels.
        keep = balanced_subset(arrays["y_train"], subset)
        x_train, y_train = x_train[keep], y_train[keep]
    return ImageClassificationData(
        name=name,
        x_train=x_train,
        y_train=y_train.astype("int32"),
        x_test=arrays["x_test"],
        y_test=arrays[f"y_test{suffix}"].astype("int32"),
        num_classes=spec.num_classes,
        label_mode=label_mode,
        source=source,
    )
