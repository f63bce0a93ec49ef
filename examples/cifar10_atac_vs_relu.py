"""
Title: ATAC versus ReLU on CIFAR-10 with `model.fit`
Description: Train the ATAC paper's pre-activation CIFAR ResNet twice, once with ReLU and once
with ATAC at every activation site, with the paper's data pipeline and training recipe.

Attention as activation (ATAC, Dai et al., ICPR 2020) replaces every ReLU of a network by a
local channel-attention gate, `ATAC(X) = X * sigmoid(BN(PW(ReLU(BN(PW(X))))))`, where `PW` are
1x1 convolutions. The paper trains pre-activation ResNets of depth 8 to 32 on CIFAR-10 and
reports, for depth 20, 93.0% (ReLU) against 93.6% (ATAC) best test accuracy after 400 epochs.

This tutorial reproduces that comparison on a budget you choose. Everything is Keras:
`keras_atac.datasets` builds the tf.data pipeline (zero-pad 4, random 32x32 crop, horizontal
flip, per-channel normalisation), `keras_atac.training` the recipe (Nesterov SGD, learning
rate 0.2 with x0.1 drops at 75% and 87.5% of the epochs, weight decay 1e-4 on every weight),
and `model.fit` trains on whichever backend `KERAS_BACKEND` names.

    python examples/cifar10_atac_vs_relu.py --epochs 30             # downloads CIFAR-10 (tfds)
    KERAS_BACKEND=jax python examples/cifar10_atac_vs_relu.py --data-dir /tmp/cifar10 \\
        --depth 8 --subset 10000 --epochs 15                         # offline image folder
"""

import argparse
import os
import pathlib

# TensorFlow's start-up INFO lines (CPU instructions) mean nothing here; its warnings and
# errors still print. A value the user set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import keras

import keras_atac

"""
## The data

`keras_atac.datasets.load` reads CIFAR-10 with tensorflow-datasets (a download on first use),
or, with `--data-dir`, from an image folder `train/<class>/*.jpg`, `test/<class>/*.jpg` or an
`.npz` file. `subset=N` keeps the first N/10 training images of every class. The pipelines are
built from the arrays in memory, so both networks see exactly the same batches and crops.
"""


def load_data(args):
    data = keras_atac.datasets.load("cifar10", data_dir=args.data_dir, subset=args.subset)
    print(f"{len(data.x_train):,} training and {len(data.x_test):,} test images")
    return data


"""
## The model

`keras_atac.models.cifar_resnet(depth, activation=...)` is the paper's network: a BatchNorm
on the raw input, a 3x3 stem convolution, three stages of pre-activation basic blocks with 16,
32 and 64 channels, and a final BN-activation-pooling-dense head. The activation goes through
`keras_atac.layers.get`, so `"relu"` and `"atac"` (or `"swish"`, `"arelu"`, ...) are the only
difference between the two networks.
"""


def build_model(depth, activation):
    return keras_atac.models.cifar_resnet(depth, num_classes=10, activation=activation)


"""
## The recipe

`get_recipe("atac_cifar", epochs=N)` scales the paper's 400-epoch schedule to N epochs.
`recipe.compile` adds the coupled L2 weight decay to every trainable weight (kernels, biases,
BatchNorm scales and offsets, and ATAC's own weights) and compiles with the recipe's
`keras.optimizers.SGD` and its `PiecewiseConstantDecay` schedule. The test set is the
validation data, so the `History` holds the test accuracy of every epoch; the paper reports
the best one, and we report the final one too.
"""


def train(activation, data, args):
    keras.utils.set_random_seed(args.seed)
    recipe = keras_atac.training.get_recipe(
        "atac_cifar", epochs=args.epochs, batch_size=args.batch_size
    )
    model = build_model(args.depth, activation)
    recipe.compile(model, steps_per_epoch=data.steps_per_epoch(recipe.batch_size))
    print(f"\n{model.name} with {activation}: {model.count_params():,} parameters")
    history = model.fit(
        data.train_dataset(batch_size=recipe.batch_size, seed=args.seed),
        validation_data=data.test_dataset(batch_size=recipe.batch_size),
        epochs=recipe.epochs,
        shuffle=False,  # the pipeline shuffles
        callbacks=[keras_atac.training.EpochTimer()],
        verbose=args.verbose,
    )
    return history


"""
## Results

Both networks are trained with the same seed, data and budget; the plot shows the test
accuracy and training loss of each epoch.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data-dir", help="image folder or .npz (default: tfds download)")
    parser.add_argument("--depth", type=int, default=20, help="6b+2: 8, 14, 20, 26, 32")
    parser.add_argument("--epochs", type=int, default=30, help="the paper used 400")
    parser.add_argument("--subset", type=int, help="first N training images, class-balanced")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="cifar10_atac_vs_relu.png", help="the plot")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    keras_atac.threads.add_threads_argument(parser)
    args = parser.parse_args(argv)
    keras_atac.threads.set_threads(args.threads)

    print(f"Keras {keras.__version__}, backend: {keras.backend.backend()}")
    data = load_data(args)
    histories = {name: train(name, data, args) for name in ("relu", "atac")}
    print()
    for name, history in histories.items():
        summary = keras_atac.training.summarize_history(history)
        print(
            f"{name}: best test accuracy {summary['best_accuracy']:.4f} "
            f"(epoch {summary['best_epoch']}), final {summary['final_accuracy']:.4f}, "
            f"{summary['seconds_per_epoch']:.1f} s per epoch"
        )
    keras_atac.training.plot_curves(
        histories, pathlib.Path(args.out), title=f"cifar_resnet{args.depth} on CIFAR-10"
    )
    print(f"plot: {args.out}")
    return histories


if __name__ == "__main__":
    main()
