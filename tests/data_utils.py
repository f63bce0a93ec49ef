"""Tiny generated datasets for tests: image folders and .npz files, never a download."""

import keras
import numpy as np


def random_images(count, shape, seed=0):
    """`count` random uint8 images of `shape` (H, W, C)."""
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype="uint8")


def write_image_folder(
    root, num_classes=10, train_per_class=3, test_per_class=1, shape=(32, 32, 3)
):
    """Writes `root/train/<class>/*.png` and `root/test/<class>/*.png` with random images.

    Class folders are named `class_00`, `class_01`, ... so their sorted order is the label.
    Returns `{split: (images, labels)}` in file order (classes sorted, files sorted).
    """
    written = {}
    for seed, (split, per_class) in enumerate(
        (("train", train_per_class), ("test", test_per_class))
    ):
        images = random_images(num_classes * per_class, shape, seed=seed)
        labels = np.repeat(np.arange(num_classes), per_class)
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / f"class_{label:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            keras.utils.save_img(folder / f"{index:04d}.png", image, scale=False)
        written[split] = (images, labels)
    return written


def write_npz(path, num_train=40, num_test=20, shape=(32, 32, 3), num_classes=10, coarse=None):
    """Writes an .npz with the keys of keras.datasets' files; `coarse` adds superclass labels.

    Labels cycle through the classes (0, 1, ..., K-1, 0, ...); coarse labels are
    `fine % coarse`. Returns the dict of arrays written.
    """
    arrays = {
        "x_train": random_images(num_train, shape, seed=1),
        "y_train": np.arange(num_train) % num_classes,
        "x_test": random_images(num_test, shape, seed=2),
        "y_test": np.arange(num_test) % num_classes,
    }
    if coarse:
        arrays["y_train_coarse"] = arrays["y_train"] % coarse
        arrays["y_test_coarse"] = arrays["y_test"] % coarse
    np.savez(path, **arrays)
    return arrays
