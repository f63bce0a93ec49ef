"""Smoke runs of an installed keras_atac, one per extra; scripts/check_install.sh calls them.

Each run must use the package installed in the running environment, never a checkout, so it
first checks where `keras_atac` was imported from. Run it from outside the repository.

    python scripts/smoke_install.py layer      # a backend extra: train, save and reload ATAC
    python scripts/smoke_install.py datasets   # the datasets extra: tfds pipeline on mock data
    python scripts/smoke_install.py cli        # the cli extra: `keras-atac train` on mock data
    python scripts/smoke_install.py image-folder DIR  # writes a tiny train/ and test/ folder
"""

import argparse
import pathlib
import sys
import tempfile


def _check_installed():
    import keras_atac

    location = pathlib.Path(keras_atac.__file__).resolve()
    if "site-packages" not in location.parts:
        raise SystemExit(f"keras_atac was imported from {location}, not from an installed wheel")
    print(f"keras_atac {keras_atac.__version__} from {location.parent}", flush=True)


def smoke_layer():
    """One ATAC network: a training step, a `.keras` round trip, the documented count."""
    import keras
    import numpy as np

    import keras_atac

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(8, 3, padding="same", use_bias=False),
            keras_atac.layers.ATAC(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    # ATAC on C = 8 channels, r = 2: C^2 + 3C trainable (README's table).
    atac_weights = sum(int(np.prod(w.shape)) for w in model.layers[1].trainable_weights)
    assert atac_weights == 8 * 8 + 3 * 8, atac_weights
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    model.fit(x, np.arange(16) % 2, epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "atac.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), 1e-5)
    print(f"ATAC trains, saves and loads on {keras.backend.backend()}")


def smoke_datasets():
    """`keras_atac.datasets.load` through tensorflow-datasets (mocked: no download)."""
    import tensorflow_datasets as tfds

    import keras_atac

    with tfds.testing.mock_data(num_examples=32):
        data = keras_atac.datasets.load("mnist")
    images, labels = next(iter(data.train_dataset(batch_size=8)))
    assert tuple(images.shape) == (8, 28, 28, 1), images.shape
    print(f"tfds pipeline: {len(data.x_train)} training images, batch {tuple(images.shape)}")


def smoke_cli():
    """`keras-atac train` for one epoch on mock MNIST (tensorflow-datasets' mock_data)."""
    import tensorflow_datasets as tfds

    from keras_atac import cli

    with tempfile.TemporaryDirectory() as folder:
        out = pathlib.Path(folder) / "run"
        argv = ["train", "--model", "conv_mnist", "--activation", "atac", "--dataset", "mnist"]
        argv += ["--epochs", "1", "--batch-size", "16", "--verbose", "2", "--out", str(out)]
        with tfds.testing.mock_data(num_examples=64):
            code = cli.main(argv)
        assert code == 0, code
        written = sorted(p.name for p in out.iterdir())
        assert written == ["curves.png", "log.csv", "summary.json"], written
    print("keras-atac train wrote curves.png, log.csv, summary.json")


def write_image_folder(directory):
    """A tiny `train/<class>/*.png`, `test/<class>/*.png` folder (2 classes, 8x8 RGB)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 4)):
        for label in ("a", "b"):
            folder = pathlib.Path(directory) / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


def main():
    smokes = {"layer": smoke_layer, "datasets": smoke_datasets, "cli": smoke_cli}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("smoke", choices=(*smokes, "image-folder"))
    parser.add_argument("directory", nargs="?", help="for image-folder: where to write it")
    args = parser.parse_args()
    if args.smoke == "image-folder":
        return write_image_folder(args.directory)
    _check_installed()
    smokes[args.smoke]()


if __name__ == "__main__":
    sys.exit(main())
