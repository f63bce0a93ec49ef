"""A damaged `.keras` file of a model with every package layer gives a clear error and changes
nothing: not the file, and not the weights of a model it is loaded into.

A `.keras` file is a zip archive with a CRC-32 per member, so damaged bytes are found before any
weight is assigned. Tampered but well-formed contents reach the package's own checks.
"""

import hashlib
import io
import json
import re
import zipfile

import keras
import numpy as np
import pytest

from keras_atac.layers import ATAC
from tests.robustness import catalog

pytestmark = pytest.mark.slow


def flip_bytes(data, member, start, stop):
    """`data` with the bytes [start, stop) of a stored zip member's content inverted."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(member)
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    damaged = bytearray(data)
    for i in range(offset + start, offset + stop):
        damaged[i] ^= 0xFF
    return bytes(damaged)


def rewrite_config(data, edit):
    """A well-formed archive whose config.json is `edit(config text)`."""
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(output, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "config.json":
                content = edit(content.decode()).encode()
            target.writestr(info, content)
    return output.getvalue()


def bad_atac_reduction(text):
    """Sets the `reduction` of the first ATAC in the config to 0."""
    config = json.loads(text)
    atac = next(
        layer
        for layer in config["config"]["layers"]
        if layer.get("registered_name") == keras.saving.get_registered_name(ATAC)
    )
    atac["config"]["reduction"] = 0
    return json.dumps(config)


NOT_A_ZIP = "zip file"
# Name -> (damage, what the error of load_model says, whether the weights are intact).
DAMAGE = {
    "empty": (lambda data: b"", NOT_A_ZIP, False),
    "truncated_to_half": (lambda data: data[: len(data) // 2], NOT_A_ZIP, False),
    "truncated_by_16_bytes": (lambda data: data[:-16], NOT_A_ZIP, False),
    "weights_bytes_flipped": (
        lambda data: flip_bytes(data, "model.weights.h5", 500, 600),
        "Bad CRC-32 for file 'model.weights.h5'",
        False,
    ),
    "config_bytes_flipped": (
        lambda data: flip_bytes(data, "config.json", 40, 60),
        "Bad CRC-32 for file 'config.json'",
        True,
    ),
    # json.JSONDecodeError, a ValueError: "Expecting ',' delimiter: line 1 column ...".
    "config_not_json": (
        lambda data: rewrite_config(data, lambda text: text[:-40]),
        "line 1 column",
        True,
    ),
    "atac_reduction_zero": (
        lambda data: rewrite_config(data, bad_atac_reduction),
        "reduction=0",
        True,
    ),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = catalog.every_layer_model()
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model.save(path)
    return path.read_bytes(), model.get_weights()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_keras_file_gives_a_clear_error_and_changes_nothing(saved, damage, tmp_path):
    data, saved_weights = saved
    damaged, message, weights_intact = DAMAGE[damage]
    path = tmp_path / "damaged.keras"
    path.write_bytes(damaged(data))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    # Keras wraps errors of from_config in a TypeError that quotes them.
    with pytest.raises((ValueError, TypeError, zipfile.BadZipFile), match=re.escape(message)):
        keras.saving.load_model(path)

    # load_weights into a live model either loads the intact weights or leaves it untouched.
    keras.utils.set_random_seed(1)
    model = catalog.every_layer_model()
    before = model.get_weights()
    if weights_intact:
        model.load_weights(path)
        expected = saved_weights
    else:
        with pytest.raises((ValueError, zipfile.BadZipFile)):
            model.load_weights(path)
        expected = before
    for actual, wanted in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(actual, wanted)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
