"""Multi-device training with each backend's own engine, on CPU devices (docs/distributed.md).

Each check runs in a worker process (see `subprocesses.py`) and only in the test run of its
backend: JAX's keras.distribution over 4 host devices, TensorFlow's MirroredStrategy over 2
logical CPUs, PyTorch's DistributedDataParallel over 2 gloo processes.
"""

import keras
import numpy as np
import pytest

from tests.robustness import training
from tests.robustness.subprocesses import free_port, run_worker

pytestmark = pytest.mark.slow

# Several devices sum the same numbers in another order; three SGD steps amplify that a little.
LOSS_RTOL = 1e-5


def only_on(backend):
    return pytest.mark.skipif(
        keras.backend.backend() != backend, reason=f"runs in the {backend} test run"
    )


@only_on("jax")
def test_jax_data_and_model_parallel_give_the_single_device_loss():
    result = run_worker(
        "jax_distribution.py", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    )
    assert result["devices"] == 4
    # The sharded batch is one array: BatchNorm statistics are global, as on one device.
    np.testing.assert_allclose(result["data_parallel"], result["single"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(result["model_parallel"], result["single"], rtol=LOSS_RTOL)
    # ResNet-8 has 7 ATAC units, each with two kernels, all split over the "model" axis.
    assert result["atac_kernels"] == 14
    assert result["kernel_shardings"] == ["P('model', None)", "P(None, 'model')"]


@only_on("tensorflow")
def test_tensorflow_mirrored_strategy_with_synchronized_batch_norm_gives_the_single_device_loss():
    result = run_worker("tf_mirrored.py")
    assert result["replicas"] == 2
    np.testing.assert_allclose(result["mirrored_synchronized"], result["single"], rtol=LOSS_RTOL)
    # ATAC(synchronized=True) normalises with the statistics of the global batch ...
    assert result["lone_atac_difference"]["synchronized"] < 1e-5
    # ... and without it each replica uses the statistics of its own half.
    assert result["lone_atac_difference"]["per_replica"] > 1e-2


def ghost_batch_losses(world_size):
    """What DDP over `world_size` processes computes, in one process: the BatchNorms see each
    shard of the global batch separately, and the gradient is the mean of the shards'."""
    import torch

    images, labels = training.make_data()
    model = training.make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=training.LEARNING_RATE, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for _ in range(training.STEPS):
        optimizer.zero_grad()
        shard_losses = [
            loss_fn(torch.as_tensor(y), model(x, training=True))
            for x, y in zip(np.split(images, world_size), np.split(labels, world_size))
        ]
        loss = sum(shard_losses) / world_size
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return losses


@only_on("torch")
def test_torch_distributed_data_parallel_over_two_gloo_processes():
    result = run_worker("torch_ddp.py", free_port())
    np.testing.assert_allclose(result["losses"], ghost_batch_losses(2), rtol=LOSS_RTOL)
    assert result["trainable_identical"]
    # Keras's BatchNorm statistics are not torch buffers: DDP does not broadcast them, and
    # each process keeps those of its own shard until they are averaged.
    assert not result["statistics_identical"]
    assert result["statistics_identical_after_averaging"]
