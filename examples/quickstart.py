"""
Title: ATAC versus ReLU in five minutes
Description: Train the same small CNN twice with `model.fit`, once with ReLU and once with
ATAC as its activation, and compare their test accuracies.

Attention as activation (ATAC) replaces each ReLU by a gate computed from the point-wise,
cross-channel context of every position: `ATAC(X) = X * sigmoid(BN(PW(ReLU(BN(PW(X))))))`.
`keras_atac.layers.ATAC()` drops into any model wherever an activation goes.

By default the script uses scikit-learn's bundled handwritten digits (1,797 real 8x8 images
shipped inside scikit-learn), so it needs no download. With `--data-dir DIR` it trains on an
image folder laid out as `DIR/train/<class>/*` and `DIR/test/<class>/*`, for example the
CIFAR-10 copy of `../shared/data/cifar10` once unpacked.

The backend is Keras's choice: run it with `KERAS_BACKEND=jax`, `torch` or `tensorflow`.

    python examples/quickstart.py
    KERAS_BACKEND=jax python examples/quickstart.py --data-dir /tmp/cifar10 --epochs 3

On a busy or shared machine add `--threads 1` (or the cores your job owns): see
`keras_atac.threads`.
"""

import argparse
import importlib.util
import os
import pathlib

# TensorFlow's start-up INFO lines (CPU instructions) mean nothing here; its warnings and
# errors still print. A value the user set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import keras

import keras_atac

"""
## The data

The digits are 8x8 grayscale images with values 0..16; we keep a fixed, stratified quarter of
them for testing. An image folder is read with Keras's own loader, which needs TensorFlow
(tf.data); without TensorFlow (e.g. `pip install ".[jax,examples]"`) the images are decoded
with Pillow into NumPy arrays instead. That holds the whole folder in memory as uint8
(CIFAR-10 at 32x32: 150 MB for the training images) and decodes it once, up front, on one core.
"""


def load_digits(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images[..., None].astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    return (x_train, y_train), (x_test, y_test), 16.0, len(digits.target_names)


def load_image_folder(data_dir, image_size, batch_size, seed):
    data_dir = pathlib.Path(data_dir)
    for split in ("train", "test"):
        if not (data_dir / split).is_dir():
            raise SystemExit(
                f"--data-dir must contain train/<class>/ and test/<class>/ folders; "
                f"{data_dir / split} does not exist."
            )
    if importlib.util.find_spec("tensorflow") is None:
        train, classes = read_images(data_dir / "train", image_size)
        test, _ = read_images(data_dir / "test", image_size, classes)
        return train, test, 255.0, len(classes)
    options = dict(image_size=(image_size, image_size), batch_size=batch_size, seed=seed)
    train = keras.utils.image_dataset_from_directory(data_dir / "train", shuffle=True, **options)
    test = keras.utils.image_dataset_from_directory(data_dir / "test", shuffle=False, **options)
    return train, test, 255.0, len(train.class_names)


def read_images(split_dir, image_size, classes=None):
    """`(x, y), classes` of `split_dir/<class>/*` as NumPy arrays, read with Pillow."""
    import numpy as np

    classes = classes or sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((split_dir / name).iterdir()):
            image = keras.utils.load_img(path, color_mode="rgb", target_size=(image_size,) * 2)
            images.append(np.asarray(image, dtype="uint8"))
            labels.append(label)
    if not images:
        raise SystemExit(f"--data-dir: no images in {split_dir}/<class>/.")
    # fit() shuffles the arrays every epoch (shuffle=True is its default).
    return (np.stack(images), np.array(labels)), classes


"""
## The model

A small CNN in which every activation site is built by `keras_atac.layers.get`, so the same
function gives the ReLU baseline and the ATAC network.
"""


def build_cnn(input_shape, num_classes, activation, input_scale):
    # BatchNorm momentum 0.9 (the ATAC paper's) lets the moving statistics keep up with a run of
    # a few hundred steps; Keras's default 0.99 lags behind and spoils inference accuracy.
    def conv_block(filters):
        return [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras_atac.layers.get(activation),
        ]

    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Rescaling(1.0 / input_scale),
            *conv_block(32),
            *conv_block(32),
            keras.layers.MaxPooling2D(),
            *conv_block(64),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ],
        name=f"cnn_{activation}",
    )


"""
## Training

Both networks get the same seed, data, optimizer and number of epochs.
"""


def train_and_evaluate(activation, data, args):
    keras.utils.set_random_seed(args.seed)
    train, test, input_scale, num_classes = data
    if isinstance(train, tuple):
        input_shape = train[0].shape[1:]
        fit_data = dict(x=train[0], y=train[1], batch_size=args.batch_size)
        eval_data = dict(x=test[0], y=test[1], batch_size=args.batch_size)
    else:
        input_shape = tuple(train.element_spec[0].shape[1:])
        fit_data, eval_data = dict(x=train), dict(x=test)
    model = build_cnn(input_shape, num_classes, activation, input_scale)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(f"\n{activation}: {model.count_params():,} parameters")
    model.fit(**fit_data, epochs=args.epochs, verbose=2)
    _, accuracy = model.evaluate(**eval_data, verbose=0)
    return accuracy


def test_size(data):
    test = data[1]
    return len(test[0]) if isinstance(test, tuple) else len(test.file_paths)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--data-dir", help="image folder with train/<class>/ and test/<class>/")
    parser.add_argument("--image-size", type=int, default=32, help="image side for --data-dir")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--activations", default="relu,atac", help="comma-separated names")
    keras_atac.threads.add_threads_argument(parser)
    return parser.parse_args(argv)


"""
## Reading the result

The test set is small: with 450 digits, one image is 0.0022 of accuracy, so a difference of a
few images between two single runs is noise, not a result. The script prints both.
"""


def main(argv=None):
    args = parse_args(argv)
    keras_atac.threads.set_threads(args.threads)
    if args.data_dir:
        data = load_image_folder(args.data_dir, args.image_size, args.batch_size, args.seed)
    else:
        data = load_digits(args.seed)
    print(f"Keras {keras.__version__}, backend: {keras.backend.backend()}")
    results = {name: train_and_evaluate(name, data, args) for name in args.activations.split(",")}
    size = test_size(data)
    print(f"\n{size:,} test images: one image is {1 / size:.4f} of test accuracy")
    for name, accuracy in results.items():
        print(f"test accuracy ({name}): {accuracy:.4f} ({round(accuracy * size):,} images right)")
    print("One run of each on one seed: a difference of a few images is noise.")
    return results


if __name__ == "__main__":
    main()
