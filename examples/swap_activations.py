"""
Title: Swap the ReLUs of a pretrained ResNet50 for ATAC
Description: Replace activations inside an existing `keras.applications` model with
`keras_atac.clone_model`, keep every other weight, and fine-tune the result for a few steps.

`keras_atac.clone_model(model, "atac")` rebuilds a Functional or Sequential model with a new
ATAC layer at every matched activation site and copies every other weight from the original.
Here the model is an ImageNet-pretrained ResNet50. Following the ATAC paper, only the two inner
ReLUs of each bottleneck in the last two stages are replaced (18 units); `--everywhere` replaces
all 49 ReLUs instead.

The pretrained weights are downloaded by Keras (about 95 MB, once). Without internet access, or
with `--weights none`, the script goes on with randomly initialized weights (`weights=None`) and
says so: the swap works exactly the same way, but the fine-tuning then starts from scratch.

The fine-tuning data are scikit-learn's bundled handwritten digits (no download), upsampled to
RGB images. `--tiny` runs the whole script on 32x32 images for two steps: a smoke test.

    python examples/swap_activations.py
    KERAS_BACKEND=jax python examples/swap_activations.py --weights none --everywhere
    python examples/swap_activations.py --tiny --weights none
"""

import argparse
import collections
import os

# TensorFlow's start-up INFO lines (CPU instructions) mean nothing here; its warnings and
# errors still print. A value the user set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import keras
import numpy as np

import keras_atac

"""
## The pretrained backbone

`keras.applications.ResNet50` without its ImageNet classifier. If the weights cannot be
downloaded we continue with `weights=None` rather than fail, and say so loudly.
"""


def load_backbone(weights, image_size):
    options = dict(include_top=False, pooling="avg", input_shape=(image_size, image_size, 3))
    if weights == "imagenet":
        try:
            return keras.applications.ResNet50(weights="imagenet", **options), "ImageNet"
        # `keras.utils.get_file` reports a failed download with a bare `Exception`.
        except Exception as error:
            print(
                f"Could not download the ImageNet weights ({error}).\n"
                "Continuing with weights=None: random weights, so the fine-tuning below "
                "starts from scratch. Pass --weights none to skip the download attempt."
            )
    return keras.applications.ResNet50(weights=None, **options), "random (weights=None)"


"""
## Swapping the activations

Keras's ResNet50 names its activations `conv{stage}_block{block}_{1,2}_relu` (inside the
bottleneck) and `conv{stage}_block{block}_out` (after the residual addition). The paper puts
ATAC at the inner activations of the last two stages, `conv4_*` and `conv5_*`, so everything
else is excluded by name. `match` keeps its default, the rectifier family.

`clone_model` returns a new model; the backbone itself is left untouched. With
`return_report=True` it also says which site was replaced and which was kept, and why.
"""


def swap_activations(backbone, everywhere):
    exclude = None if everywhere else ("conv1_*", "conv2_*", "conv3_*", "*_out")
    swapped, report = keras_atac.clone_model(backbone, "atac", exclude=exclude, return_report=True)
    reasons = collections.Counter(site.reason for site in report.skipped)
    print(
        f"Replaced {len(report.replaced)} of {len(report.sites)} activations by ATAC "
        f"({', '.join(site.layer for site in report.replaced[:2])}, ...); kept: {dict(reasons)}."
    )
    added = trainable_parameters(swapped) - trainable_parameters(backbone)
    print(
        f"Parameters: {backbone.count_params():,} before, {swapped.count_params():,} after; "
        f"the ATAC units add {added:,} trainable ones (C**2 + 3*C for C channels)."
    )
    # Every layer that was not replaced kept its weights, e.g. the first convolution:
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(swapped.get_layer("conv1_conv").kernel),
        keras.ops.convert_to_numpy(backbone.get_layer("conv1_conv").kernel),
    )
    return swapped


def trainable_parameters(model):
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


"""
## Fine-tuning data

The 8x8 digits (values 0..16) become RGB images of the chosen size, preprocessed the way the
ImageNet ResNet50 expects (`keras.applications.resnet.preprocess_input`).
"""


def load_digits(image_size, limit, seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.repeat(digits.images[..., None] * (255.0 / 16.0), 3, axis=-1)
    images = keras.ops.image.resize(images.astype("float32"), (image_size, image_size))
    images = keras.applications.resnet.preprocess_input(keras.ops.convert_to_numpy(images))
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    return (x_train[:limit], y_train[:limit]), (x_test[:limit], y_test[:limit])


"""
## Fine-tuning

A new 10-way classifier goes on top of the swapped backbone, and the whole network is trained
for a few steps. The fresh ATAC units start as a gate of about 0.5 (sigmoid of normalized
logits), so a small learning rate lets the pretrained weights adapt without being destroyed.
"""


def fine_tune(backbone, train, test, args):
    model = keras.Sequential([backbone, keras.layers.Dense(10)], name="digits_resnet50_atac")
    model.compile(
        optimizer=keras.optimizers.SGD(args.learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        # A ResNet50 train step takes longer to compile than a two-step smoke run takes eagerly,
        # except on JAX, whose eager gradient compiles every op on its own.
        run_eagerly=args.tiny and keras.backend.backend() != "jax",
    )
    (x_train, y_train), (x_test, y_test) = train, test
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=1,
        steps_per_epoch=args.steps,
        verbose=2,
    )
    _, accuracy = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    return accuracy


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument(
        "--weights", choices=("imagenet", "none"), default="imagenet", help="backbone weights"
    )
    parser.add_argument(
        "--everywhere", action="store_true", help="replace all 49 ReLUs, not the paper's 18"
    )
    parser.add_argument("--image-size", type=int, default=64, help="at least 32")
    parser.add_argument("--steps", type=int, default=20, help="fine-tuning steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny", action="store_true", help="32x32 images, 2 steps of 4 images: a smoke run"
    )
    keras_atac.threads.add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.tiny:
        args.image_size, args.steps, args.batch_size = 32, 2, 4
    if args.image_size < 32:
        parser.error(f"--image-size must be at least 32 for ResNet50, got {args.image_size}")
    return args


def main(argv=None):
    args = parse_args(argv)
    keras_atac.threads.set_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    print(f"Keras {keras.__version__}, backend: {keras.backend.backend()}")
    backbone, origin = load_backbone(args.weights, args.image_size)
    print(f"ResNet50 backbone with {origin} weights, {args.image_size}x{args.image_size} inputs.")
    swapped = swap_activations(backbone, args.everywhere)
    train, test = load_digits(args.image_size, args.steps * args.batch_size, args.seed)
    accuracy = fine_tune(swapped, train, test, args)
    print(f"test accuracy after {args.steps} fine-tuning steps: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
