"""Test configuration: one pytest process per backend, chosen with KERAS_BACKEND."""

import gc
import os

# The backend must be chosen before Keras is first imported; tensorflow is Keras's own default.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The benchmarks' tests read TensorFlow's CPU allocator statistics, which it keeps on every CPU
# build only as a BFC allocator (as the benchmarks' workers run it; see benchmarks/harness.py).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
# TensorFlow's channels-first convolutions on the CPU are oneDNN's, which TensorFlow leaves off
# on some CPUs (an AMD EPYC build of this project's machine): see docs/installation.md.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402
import pytest  # noqa: E402

import keras_atac  # noqa: E402, F401  (imported here so that the freeze below covers it)

# The frameworks leave hundreds of thousands of long-lived objects behind their import; a full
# garbage collection walks all of them (1-2 s with TensorFlow or PyTorch loaded). Freezing them
# keeps every later collection to the objects the tests create.
gc.freeze()


# tryfirst: xdist's own hook turns the markers into groups, so ours must run before it.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Keeps the tests that share an expensive module-scoped model on one xdist worker.

    `scripts/test.sh` runs pytest-xdist with `--dist loadgroup`; without a group, the tests of
    one `keras.applications` model would be spread over the workers and each worker would build
    and clone the model again (seconds to minutes per model).
    """
    for item in items:
        application = getattr(item, "callspec", None) and item.callspec.params.get("application")
        if application:
            item.add_marker(pytest.mark.xdist_group(f"application-{application}"))


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
    # free_memory=False: Keras would otherwise run a full gc.collect() after every test, about a
    # second each with a framework loaded; Python's own collector still frees the test's cycles.
    keras.backend.clear_session(free_memory=False)


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
