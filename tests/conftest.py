"""Test configuration: one pytest process per backend, chosen with KERAS_BACKEND."""

import os

# The backend must be chosen before Keras is first imported; tensorflow is Keras's own default.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend: {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def fresh_keras_state():
    """Every test starts from the float32 policy, a fixed seed and a clean name scope."""
    keras.config.set_dtype_policy("float32")
    keras.config.set_image_data_format("channels_last")
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")
    keras.config.set_image_data_format("channels_last")
    keras.backend.clear_session()


@pytest.fixture
def global_channels_first():
    """Sets the global `keras.config.image_data_format()` to channels-first for one test and
    restores the previous format afterwards, also when the test fails."""
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        yield
    finally:
        keras.config.set_image_data_format(previous)
