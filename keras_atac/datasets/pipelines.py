"""tf.data pipelines with the papers' preprocessing, for `model.fit` on every Keras backend.

- ATAC's CIFAR augmentation (the official code's `RandomCrop(32, pad=4)` and
  `RandomFlipLeftRight`): zero-pad every image by 4 pixels, take a random 32x32 window, flip it
  horizontally with probability 1/2. The padding is done on the raw uint8 image, so the border is
  black before normalisation, as in the reference.
- Normalisation: scale to [0, 1] (`keras.layers.Rescaling`), then per-channel
  `(x - mean) / std` (`keras.layers.Normalization`); MNIST (AReLU paper) is only scaled.

The random crop and flip are `tf.image`'s stateless ops applied to one image at a time, with
seeds drawn from `tf.data.Dataset.random`: Keras's `RandomCrop` uses one window for a whole batch,
and stateful random ops in a parallel `map` are not reproducible. This way a pipeline built with
the same seed yields the same batches, epoch after epoch, however the map is parallelised.
Keras's preprocessing layers run inside tf.data on every backend.

TensorFlow is imported inside the functions, so importing this module costs nothing.
"""

import keras
import numpy as np

# Zero padding before the random crop of ATAC's CIFAR augmentation.
CROP_PADDING = 4


def augment_image(image, seed):
    """Zero-pads 4 pixels, crops a random window of the original size and flips it horizontally.

    Args:
        image: one uint8 image, (H, W, C).
        seed: an int64 tensor of shape (2,); the same seed gives the same crop and flip.
    """
    import tensorflow as tf

    height, width, channels = image.shape
    padded = tf.image.pad_to_bounding_box(
        image,
        CROP_PADDING,
        CROP_PADDING,
        height + 2 * CROP_PADDING,
        width + 2 * CROP_PADDING,
    )
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    cropped = tf.image.stateless_random_crop(padded, (height, width, channels), seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)


def normalizer(image_shape, mean=None, std=None):
    """Returns a function mapping uint8 images to float32: `x / 255`, then `(x - mean) / std`.

    Args:
        image_shape: `(height, width, channels)` of the images.
        mean, std: per-channel statistics of the [0, 1]-scaled images, or `None` for scaling
            only.
    """
    layers = [keras.layers.Rescaling(1.0 / 255.0)]
    if mean is not None:
        layers.append(keras.layers.Normalization(mean=mean, variance=np.square(std)))
    for layer in layers:
        # Built here: inside a tf.data function on JAX or PyTorch, the layer cannot build itself.
        layer.build((None, *image_shape))

    def normalize(images, labels):
        for layer in layers:
            images = layer(images)
        return images, labels

    return normalize


def train_dataset(x, y, normalize, batch_size, *, augment, seed=None):
    """Shuffled, (optionally) augmented, normalised batches; the last partial batch is dropped.

    Args:
        x: uint8 images, (N, H, W, C).
        y: integer labels, (N,).
        normalize: the function `normalizer` returns.
        batch_size: images per batch.
        augment: whether to apply `augment_image`.
        seed: seeds the shuffle and the augmentation; every epoch gets a new order and new
            crops, and the sequence of epochs is the same for the same seed.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda example, pair_seed: (augment_image(example[0], pair_seed), example[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.map(normalize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def test_dataset(x, y, normalize, batch_size):
    """Normalised batches in the source's order, the last partial batch kept."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return dataset.map(normalize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
