"""Draws ATAC's gates on a real CIFAR-10 image next to ReLU's: docs/images/gate_maps.png.

A small CNN with ATAC activations trains for a minute on part of CIFAR-10, so that its gates
mean something. For one test image the figure shows, for a few channels of the first ATAC
unit, the features X that reach it, the hard gate ReLU would apply to them (1 where X > 0) and
the soft gate ATAC learned, sigmoid(L(X)), computed from all channels at each position.

    tar -xf ../shared/data/cifar10/cifar10-jpeg.tar -C /tmp/cifar10   # once; not committed
    KERAS_BACKEND=jax python docs/scripts/gate_maps.py --data-dir /tmp/cifar10
"""

import argparse
import pathlib

import keras
import matplotlib
import numpy as np

import keras_atac

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "images" / "gate_maps.png"
# CIFAR-10's per-channel mean and standard deviation (the ATAC paper's normalisation).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=pathlib.Path, default=pathlib.Path("/tmp/cifar10"))
    parser.add_argument("--train-batches", type=int, default=50, help="batches of 64 images")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image", default="test/horse/0007.jpg", help="relative to --data-dir")
    parser.add_argument("--channels", type=int, default=4, help="channels shown")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def build_model():
    def block(filters, name):
        return [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras_atac.layers.ATAC(name=name),
        ]

    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1.0 / 255.0),
            keras.layers.Normalization(mean=MEAN, variance=np.square(STD)),
            *block(32, "atac1"),
            *block(32, "atac2"),
            keras.layers.MaxPooling2D(),
            *block(64, "atac3"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )


def train(model, args):
    train = keras.utils.image_dataset_from_directory(
        args.data_dir / "train", image_size=(32, 32), batch_size=64, seed=args.seed
    ).take(args.train_batches)
    augment = keras.layers.RandomFlip("horizontal", seed=args.seed)
    train = train.map(lambda x, y: (augment(x), y)).cache()
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(train, epochs=args.epochs, verbose=2)


def gates(model, image, layer_name):
    """The features X reaching an ATAC layer and its gate sigmoid(L(X)), for one image."""
    layer = model.get_layer(layer_name)
    features = keras.Model(model.inputs, layer.input).predict(image[None], verbose=0)
    gate = keras.ops.convert_to_numpy(layer.gate_map(features, training=False))
    return features[0], gate[0]


def draw(image, features, gate, args):
    # The channels whose gate varies most over the image: where ATAC is selective.
    channels = np.argsort(gate.std(axis=(0, 1)))[::-1][: args.channels]
    figure = plt.figure(figsize=(2.0 * (args.channels + 1.4), 6.4))
    grid = figure.add_gridspec(3, args.channels + 1, width_ratios=[1.4] + [1] * args.channels)
    axes = figure.add_subplot(grid[:, 0])
    axes.imshow(image.astype("uint8"), interpolation="nearest")
    axes.set_title("CIFAR-10 test image")
    axes.axis("off")
    limit = np.abs(features[..., channels]).max()
    rows = (
        ("features X", features, {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}),
        ("ReLU gate 1[X > 0]", (features > 0).astype("float32"), {"cmap": "gray"}),
        ("ATAC gate σ(L(X))", gate, {"cmap": "viridis"}),
    )
    for row, (label, maps, style) in enumerate(rows):
        row_axes = [figure.add_subplot(grid[row, column + 1]) for column in range(len(channels))]
        for axes, channel in zip(row_axes, channels):
            shown = axes.imshow(
                maps[..., channel], interpolation="nearest", **{"vmin": 0, "vmax": 1, **style}
            )
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(f"channel {channel}")
        row_axes[0].set_ylabel(label)
        figure.colorbar(shown, ax=row_axes, fraction=0.02, pad=0.02)
    figure.suptitle("First ATAC unit of a small CNN trained briefly on CIFAR-10")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=110, bbox_inches="tight")
    print(f"wrote {args.output}")


def main():
    args = parse_args()
    keras.utils.set_random_seed(args.seed)
    model = build_model()
    train(model, args)
    image = keras.utils.img_to_array(keras.utils.load_img(args.data_dir / args.image))
    features, gate = gates(model, image, "atac1")
    draw(image, features, gate, args)


if __name__ == "__main__":
    main()
