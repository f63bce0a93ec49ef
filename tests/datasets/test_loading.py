"""The dataset loaders and pipelines, on tensorflow-datasets' mock data and generated files."""

import itertools

import keras
import numpy as np
import pytest

from keras_atac import datasets
from keras_atac.datasets import loading
from tests.data_utils import write_image_folder, write_npz

MEAN = np.array([0.4914, 0.4822, 0.4465])
STD = np.array([0.2023, 0.1994, 0.2010])


def batches(dataset, count=None):
    return [(np.asarray(x), np.asarray(y)) for x, y in itertools.islice(dataset, count)]


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar_folder")
    return root, write_image_folder(root, num_classes=10, train_per_class=4, test_per_class=1)


def test_names():
    assert datasets.names() == ["cifar10", "cifar100", "mnist"]


@pytest.mark.parametrize(
    "name, shape, num_classes",
    [("cifar10", (32, 32, 3), 10), ("cifar100", (32, 32, 3), 100), ("mnist", (28, 28, 1), 10)],
)
def test_tensorflow_datasets_source(name, shape, num_classes):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        data = datasets.load(name)
    assert data.source == "tensorflow-datasets"
    assert data.input_shape == shape and data.num_classes == num_classes
    assert data.x_train.dtype == np.uint8 and len(data.x_train) == len(data.y_train) == 20
    (x, y), *rest = batches(data.train_dataset(batch_size=8, seed=0))
    assert x.shape == (8, *shape) and x.dtype == np.float32 and y.shape == (8,)
    assert len(rest) == 1  # 20 images: two full batches, the partial one dropped
    test_batches = batches(data.test_dataset(batch_size=8))
    assert [len(y) for _, y in test_batches] == [8, 8, 4]


def test_cifar100_coarse_labels_from_tensorflow_datasets():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        data = datasets.load("cifar100", label_mode="coarse")
        raw = tfds.as_numpy(tfds.load("cifar100", split="test").batch(100))
        expected = next(iter(raw))["coarse_label"]
    np.testing.assert_array_equal(data.y_test, expected)
    assert data.label_mode == "coarse" and data.num_classes == 100  # the paper's 100-way head


def test_image_folder_reads_files_in_order(cifar_folder):
    root, written = cifar_folder
    data = datasets.load("cifar10", data_dir=root)
    for split in ("train", "test"):
        images, labels = written[split]
        np.testing.assert_array_equal(getattr(data, f"x_{split}"), images)
        np.testing.assert_array_equal(getattr(data, f"y_{split}"), labels)
    assert data.source == str(root)


def test_npz_source_with_coarse_labels_and_grayscale(tmp_path):
    arrays = write_npz(tmp_path / "c100.npz", num_classes=100, num_train=200, coarse=20)
    data = datasets.load("cifar100", data_dir=tmp_path / "c100.npz", label_mode="coarse")
    np.testing.assert_array_equal(data.y_train, arrays["y_train_coarse"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test_coarse"])
    mnist = write_npz(tmp_path / "mnist.npz", shape=(28, 28))
    data = datasets.load("mnist", data_dir=tmp_path / "mnist.npz")
    np.testing.assert_array_equal(data.x_train, mnist["x_train"][..., None])


def test_cifar_test_pipeline_normalises_per_channel(tmp_path):
    arrays = write_npz(tmp_path / "c10.npz")
    data = datasets.load("cifar10", data_dir=tmp_path / "c10.npz")
    x = np.concatenate([x for x, _ in batches(data.test_dataset(batch_size=16))])
    expected = (arrays["x_test"] / 255.0 - MEAN) / STD
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_mnist_is_scaled_to_unit_interval_without_augmentation(tmp_path):
    arrays = write_npz(tmp_path / "mnist.npz", num_train=16, shape=(28, 28))
    data = datasets.load("mnist", data_dir=tmp_path / "mnist.npz")
    x, _ = batches(data.train_dataset(batch_size=16, seed=0))[0]
    originals = arrays["x_train"][..., None] / 255.0
    # Shuffled, but every image is one of the originals, scaled to [0, 1] and nothing else.
    for image in x:
        assert np.any(np.all(np.abs(originals - image) < 1e-6, axis=(1, 2, 3)))


def test_cifar_augmentation_is_a_padded_crop_and_flip(tmp_path):
    arrays = write_npz(tmp_path / "c10.npz", num_train=32)
    data = datasets.load("cifar10", data_dir=tmp_path / "c10.npz")
    # One class per image, so the label identifies the original.
    data = loading.ImageClassificationData(
        **{**vars(data), "y_train": np.arange(32, dtype="int32")}
    )
    x, y = batches(data.train_dataset(batch_size=32, seed=3))[0]
    pixels = np.rint((x * STD + MEAN) * 255.0)
    windows = set()
    for image, label in zip(pixels, y):
        padded = np.pad(arrays["x_train"][label], ((4, 4), (4, 4), (0, 0)))
        matches = [
            (top, left, flip)
            for top, left, flip in itertools.product(range(9), range(9), (False, True))
            if np.array_equal(
                padded[top : top + 32, left : left + 32][:, :: -1 if flip else 1], image
            )
        ]
        assert matches, f"image {label} is not a flipped or unflipped crop of its padded original"
        windows.add(matches[0])
    assert len(windows) > 8  # per-image windows, not one for the whole batch
    assert {flip for _, _, flip in windows} == {False, True}


def test_same_seed_same_batches_and_new_order_every_epoch(tmp_path):
    write_npz(tmp_path / "c10.npz", num_train=24)
    data = datasets.load("cifar10", data_dir=tmp_path / "c10.npz")
    first = data.train_dataset(batch_size=8, seed=5)
    second = data.train_dataset(batch_size=8, seed=5)
    epoch_1, epoch_2 = batches(first), batches(first)
    for (x1, y1), (x2, y2) in zip(epoch_1 + epoch_2, batches(second) + batches(second)):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(epoch_1[0][0], epoch_2[0][0])
    other_seed = batches(data.train_dataset(batch_size=8, seed=6))
    assert not np.array_equal(epoch_1[0][0], other_seed[0][0])


def test_subset_is_the_first_images_of_every_class(cifar_folder):
    root, written = cifar_folder
    images, labels = written["train"]
    data = datasets.load("cifar10", data_dir=root, subset=23)
    # 23 = 10 * 2 + 3: two per class, a third for classes 0, 1 and 2, in file order.
    counts = np.bincount(data.y_train, minlength=10)
    np.testing.assert_array_equal(counts, [3, 3, 3] + [2] * 7)
    keep = [i for i in range(len(labels)) if i % 4 < counts[labels[i]]]
    np.testing.assert_array_equal(data.x_train, images[keep])
    assert len(data.x_test) == 10  # the test set stays complete


def test_coarse_subset_is_balanced_over_fine_classes(tmp_path):
    write_npz(tmp_path / "c100.npz", num_classes=100, num_train=400, coarse=20)
    data = datasets.load(
        "cifar100", data_dir=tmp_path / "c100.npz", label_mode="coarse", subset=200
    )
    # Two images of each of the 100 fine classes, i.e. ten of each of the 20 coarse ones.
    np.testing.assert_array_equal(np.bincount(data.y_train), [10] * 20)


def test_balanced_subset_rejects_too_small_classes():
    with pytest.raises(ValueError, match="class 1 has only 1"):
        loading.balanced_subset(np.array([0, 0, 0, 1, 2, 2]), 6)


def test_fit_on_the_pipelines(tmp_path):
    write_npz(tmp_path / "c10.npz", num_train=32, num_test=8)
    data = datasets.load("cifar10", data_dir=tmp_path / "c10.npz")
    model = keras.Sequential(
        [
            keras.Input(data.input_shape),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(data.num_classes),
        ]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        data.train_dataset(batch_size=8, seed=0),
        validation_data=data.test_dataset(batch_size=8),
        epochs=2,
        shuffle=False,  # the pipeline shuffles; Keras warns if asked to shuffle a tf.data.Dataset
        verbose=0,
    )
    assert len(history.history["val_accuracy"]) == 2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"name": "imagenet"}, ValueError, "Unknown dataset: name='imagenet'"),
        ({"name": "cifar10", "label_mode": "coarse"}, ValueError, "Only cifar100 has coarse"),
        ({"name": "cifar100", "label_mode": "super"}, ValueError, "label_mode='super'"),
        ({"name": "cifar10", "subset": 0}, ValueError, "subset=0"),
        ({"name": "cifar10", "data_dir": "/nonexistent/cifar"}, FileNotFoundError, "nonexistent"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        datasets.load(**kwargs)


def test_malformed_image_folders(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="test does not exist"):
        datasets.load("cifar10", data_dir=tmp_path)
    write_image_folder(tmp_path / "few", num_classes=3, train_per_class=1)
    with pytest.raises(ValueError, match="same 10 class folders"):
        datasets.load("cifar10", data_dir=tmp_path / "few")
    for split, label in itertools.product(("train", "test"), range(10)):
        (tmp_path / "empty" / split / f"class_{label}").mkdir(parents=True)
    with pytest.raises(ValueError, match="Cannot read the image folder"):
        datasets.load("cifar10", data_dir=tmp_path / "empty")
    # Tiny files: the loader resizes them to 32x32.
    write_image_folder(tmp_path / "c100", num_classes=100, train_per_class=1, shape=(4, 4, 3))
    with pytest.raises(ValueError, match="Coarse labels need"):
        datasets.load("cifar100", data_dir=tmp_path / "c100", label_mode="coarse")


def test_malformed_npz_files(tmp_path):
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 32, 32, 3), "uint8"))
    with pytest.raises(ValueError, match=r"lacks the keys \['y_train', 'x_test', 'y_test'\]"):
        datasets.load("cifar10", data_dir=tmp_path / "partial.npz")
    write_npz(tmp_path / "mnist.npz", shape=(28, 28))
    with pytest.raises(ValueError, match=r"cifar10 needs \(32, 32, 3\) images"):
        datasets.load("cifar10", data_dir=tmp_path / "mnist.npz")
    write_npz(tmp_path / "c100.npz", num_classes=100)
    with pytest.raises(ValueError, match=r"labels of .* range over \[0, 39\]"):
        datasets.load("cifar10", data_dir=tmp_path / "c100.npz")
    with pytest.raises(ValueError, match="y_train_coarse"):
        datasets.load("cifar100", data_dir=tmp_path / "c100.npz", label_mode="coarse")
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(ValueError, match="an image folder .* or an .npz file"):
        datasets.load("cifar10", data_dir=tmp_path / "notes.txt")


def test_subset_and_batch_size_beyond_the_data(tmp_path):
    write_npz(tmp_path / "c10.npz", num_train=20)
    with pytest.raises(ValueError, match="subset=30"):
        datasets.load("cifar10", data_dir=tmp_path / "c10.npz", subset=30)
    data = datasets.load("cifar10", data_dir=tmp_path / "c10.npz")
    with pytest.raises(ValueError, match="smaller than one batch. Received: batch_size=32"):
        data.train_dataset(batch_size=32)
