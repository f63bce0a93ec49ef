"""Where the images come from: tensorflow-datasets, an image folder or an `.npz` file.

Every source returns the same thing: a dict of NumPy arrays with the keys of
`keras.datasets.cifar100.load_data()`'s files, `x_train`, `y_train`, `x_test`, `y_test` (uint8
images of shape (N, H, W, C) in the source's order, integer labels), plus `y_train_coarse` and
`y_test_coarse` where the source has CIFAR-100's superclass labels. The datasets are small enough
(at most 60,000 32x32 images) to hold in memory, which makes class-balanced subsets exact and lets
every run build identical pipelines from the same arrays.

TensorFlow and tensorflow-datasets are imported inside the functions, so importing this module
costs nothing.
"""

import pathlib

import numpy as np

SPLITS = ("train", "test")
# Images are decoded in chunks of this many when a source is read into memory.
_CHUNK = 4096


def from_tfds(tfds_name, data_dir=None):
    """Reads a dataset with tensorflow-datasets (downloaded on first use).

    Args:
        tfds_name: the tensorflow-datasets name, e.g. `"cifar10"`.
        data_dir: where tensorflow-datasets keeps its files; `None` is its default
            (`~/tensorflow_datasets`, or `$TFDS_DATA_DIR`).
    """
    import tensorflow_datasets as tfds

    arrays = {}
    for split, dataset in zip(SPLITS, tfds.load(tfds_name, split=list(SPLITS), data_dir=data_dir)):
        chunks = list(tfds.as_numpy(dataset.batch(_CHUNK)))
        arrays[f"x_{split}"] = np.concatenate([chunk["image"] for chunk in chunks])
        arrays[f"y_{split}"] = np.concatenate([chunk["label"] for chunk in chunks])
        if "coarse_label" in chunks[0]:
            arrays[f"y_{split}_coarse"] = np.concatenate([c["coarse_label"] for c in chunks])
    return arrays


def from_image_folder(directory, image_shape, num_classes):
    """Reads `directory/train/<class>/*` and `directory/test/<class>/*` into memory.

    The images are read with `keras.utils.image_dataset_from_directory` in file order (classes
    sorted by name, files by name within a class) and resized to `image_shape` if they differ.

    Args:
        directory: the folder holding `train/` and `test/`.
        image_shape: `(height, width, channels)`; 1 channel reads the images as grayscale.
        num_classes: the number of class folders the dataset must have (a missing folder would
            silently shift every label after it).

    Raises:
        ValueError: if `train/` or `test/` is missing or holds no images, or if the two splits
            do not have the same `num_classes` class folders.
    """
    import keras

    directory = pathlib.Path(directory)
    missing = [split for split in SPLITS if not (directory / split).is_dir()]
    if missing:
        raise ValueError(
            f"An image folder must contain train/<class>/ and test/<class>/ subfolders; "
            f"{', '.join(str(directory / split) for split in missing)} does not exist. "
            f"Received: data_dir={str(directory)!r}"
        )
    train_classes = sorted(p.name for p in (directory / "train").iterdir() if p.is_dir())
    test_classes = sorted(p.name for p in (directory / "test").iterdir() if p.is_dir())
    if len(train_classes) != num_classes or train_classes != test_classes:
        raise ValueError(
            f"train/ and test/ of the image folder must hold the same {num_classes} class "
            f"folders. Received: train classes {train_classes}, test classes {test_classes} "
            f"in data_dir={str(directory)!r}"
        )
    height, width, channels = image_shape
    arrays = {}
    for split in SPLITS:
        try:
            dataset = keras.utils.image_dataset_from_directory(
                directory / split,
                class_names=train_classes,
                color_mode="grayscale" if channels == 1 else "rgb",
                image_size=(height, width),
                batch_size=_CHUNK,
                shuffle=False,
                data_format="channels_last",
                verbose=False,
            )
        except ValueError as error:
            raise ValueError(f"Cannot read the image folder {directory / split}: {error}") from None
        images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
        # The loader returns float32; the pixel values are integers unless it had to resize.
        arrays[f"x_{split}"] = np.concatenate(images).round().clip(0, 255).astype("uint8")
        arrays[f"y_{split}"] = np.concatenate(labels)
    return arrays


def from_npz(path):
    """Reads the arrays of an `.npz` file (the keys of `keras.datasets.*.load_data`'s files).

    Grayscale images stored as (N, H, W) get a channel axis.

    Raises:
        ValueError: if one of `x_train`, `y_train`, `x_test`, `y_test` is missing.
    """
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in archive]
        if missing:
            raise ValueError(
                f"The .npz file lacks the keys {missing}; it must hold x_train, y_train, x_test "
                f"and y_test (and y_train_coarse, y_test_coarse for CIFAR-100's coarse labels). "
                f"Received: data_dir={str(path)!r} with keys {sorted(archive.files)}"
            )
        wanted = [key for key in archive.files if key.startswith(("x_", "y_"))]
        arrays = {key: archive[key] for key in wanted}
    for split in SPLITS:
        if arrays[f"x_{split}"].ndim == 3:
            arrays[f"x_{split}"] = arrays[f"x_{split}"][..., None]
    return arrays
