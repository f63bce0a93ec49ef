"""Trains the shared ResNet-8 with PyTorch's DistributedDataParallel: two CPU processes, gloo.

Each process trains on its half of the global batch; DDP averages the gradients. Prints, as
JSON, the loss of each step averaged over the processes, and whether the processes ended with
identical weights. Run with KERAS_BACKEND=torch and the repository root on PYTHONPATH.
"""

import gc
import json
import os
import sys

import keras
import torch
import torch.distributed as dist

from tests.robustness import training

WORLD_SIZE = 2


def replicas_identical(weights):
    """Whether every process holds the same values of `weights`."""
    values = torch.cat([torch.ravel(w.value.detach()) for w in weights])
    gathered = [torch.zeros_like(values) for _ in range(WORLD_SIZE)]
    dist.all_gather(gathered, values)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


def train(rank, port, results):
    # Everything stays on this machine: gloo would otherwise use the interface of the hostname.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    images, labels = training.make_data()
    shard = slice(rank * len(images) // WORLD_SIZE, (rank + 1) * len(images) // WORLD_SIZE)
    # A Keras model on the torch backend is a torch.nn.Module: DDP wraps it as it is, and
    # broadcasts rank 0's weights (BatchNorm statistics included) on construction.
    model = training.make_model(seed=rank)
    ddp_model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=training.LEARNING_RATE, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for _ in range(training.STEPS):
        optimizer.zero_grad()
        loss = loss_fn(torch.as_tensor(labels[shard]), ddp_model(images[shard], training=True))
        loss.backward()
        optimizer.step()
        loss = loss.detach()
        dist.all_reduce(loss, op=dist.ReduceOp.AVG)
        losses.append(float(loss))
    # DDP's C++ Reducer holds the process group. If the Reducer is the last holder, its
    # destructor (run with the GIL held) destroys the group and joins gloo's threads, which may
    # still need the GIL to free the tensors of the last collective: the process hangs (about
    # one run in three). Freed here, while the group is still registered, it destroys nothing;
    # destroy_process_group below then frees the group without holding the GIL.
    del ddp_model
    gc.collect()
    trainable_identical = replicas_identical(model.trainable_weights)
    # DDP averages gradients but leaves other parameters alone, and Keras keeps BatchNorm
    # statistics as parameters without gradient (not torch buffers): each process has updated
    # them from its own shard. Averaging them is the recipe docs/distributed.md gives.
    statistics_identical = replicas_identical(model.non_trainable_weights)
    for weight in model.non_trainable_weights:
        dist.all_reduce(weight.value.data, op=dist.ReduceOp.AVG)
    averaged_identical = replicas_identical(model.non_trainable_weights)
    if rank == 0:
        results.put(
            {
                "losses": losses,
                "trainable_identical": trainable_identical,
                "statistics_identical": statistics_identical,
                "statistics_identical_after_averaging": averaged_identical,
            }
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    context = torch.multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()
    torch.multiprocessing.spawn(train, args=(int(sys.argv[1]), queue), nprocs=WORLD_SIZE)
    print(json.dumps(queue.get()))
