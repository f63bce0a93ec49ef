"""Training throughput of `cifar_resnet(20)` with each activation, next to its MACs.

For ReLU and every activation layer of the package (at every activation site of the network),
on each backend: `model.train_on_batch` with the paper's optimizer (Nesterov SGD, momentum
0.9), compiled as Keras compiles it there (XLA on TensorFlow and JAX with
`jit_compile=True`; eager on PyTorch, where Keras's `jit_compile=True` means `torch.compile`
and takes minutes per model). The steps of all networks are interleaved. Next to each
network's step-time ratio to ReLU stands its ratio of multiply-accumulates, the lower bound if
the activation's elementwise work were free (`keras_atac.models.count_macs`; a dash where the
counter has no rule for a layer). Next to the time stands the step's peak memory, measured as
`benchmarks.backend_steps` measures it for one layer: TensorFlow's CPU allocator peak during
`train_on_batch` above what it held before; on JAX, XLA's buffer assignment (temporaries and
outputs) of Keras's compiled `train_step`; on PyTorch, the peak of the CPU allocator's
allocation events during `train_on_batch` (`torch.profiler`).

    python -m benchmarks.train_step
    python -m benchmarks.train_step --activations relu,atac,se --backends jax
    python -m benchmarks.train_step --activations atac --remat   # the memory remat saves
"""

import sys
import types

import numpy as np

from benchmarks import harness

JIT_COMPILE = {"tensorflow": True, "jax": True, "torch": False}


def add_arguments(parser):
    parser.add_argument(
        "--activations", default="all", help="comma-separated factory names (default: all)"
    )
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each network")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (ABAB...)")
    parser.add_argument(
        "--remat",
        action="store_true",
        help="also ATAC(remat=True): the gate recomputed in the backward pass",
    )


def compiled_network(depth, activation):
    """`cifar_resnet(depth)` with `activation` at every site, compiled with the paper's
    optimizer as this benchmark compiles it on the current backend (seeded weights)."""
    import keras

    import keras_atac

    keras.utils.set_random_seed(0)
    model = keras_atac.models.cifar_resnet(depth, num_classes=10, activation=activation)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=JIT_COMPILE[keras.backend.backend()],
    )
    return model


def training_data(batch_size):
    """A batch of CIFAR-sized random images and labels (the same in every run)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(batch_size,))
    return x, y


def training_step_peak_bytes(model, x, y):
    """The peak memory of one training step of a compiled (and already stepped) model."""
    import keras

    from benchmarks import backend_steps

    steps_of_backend = backend_steps.current()
    if keras.backend.backend() != "jax":
        return steps_of_backend.peak_bytes(lambda: model.train_on_batch(x, y))
    import jax

    state = backend_steps.model_state(model)
    compiled = jax.jit(model.train_step).lower(state, (x, y)).compile()
    return steps_of_backend.peak_bytes(types.SimpleNamespace(compiled=compiled))


def work(args):
    import keras

    import keras_atac
    from benchmarks.harness import package_layer_names, selected_names

    backend = keras.backend.backend()
    names = ["relu", *selected_names(args.activations, package_layer_names())]
    # What each row builds: a registered name, or the config of a layer with its arguments.
    activations = {name: name for name in names}
    if args.remat:
        remat = keras_atac.layers.ATAC(remat=True)
        activations["atac(remat=True)"] = keras.saving.serialize_keras_object(remat)
        names = list(activations)
    x, y = training_data(args.batch_size)
    steps, macs, parameters, models = {}, {}, {}, {}
    for name in names:
        model = compiled_network(args.depth, activations[name])
        steps[name] = lambda model=model: model.train_on_batch(x, y)
        models[name] = model
        parameters[name] = model.count_params()
        try:
            macs[name] = keras_atac.models.count_macs(model)
        except ValueError:  # a layer the MAC counter has no rule for
            macs[name] = None
    print(f"  timing {len(steps)} networks", flush=True)
    times = harness.interleaved_times(steps, warmup=args.warmup, repeats=args.repeats)
    peak = {name: training_step_peak_bytes(models[name], x, y) for name in names}
    rows = [
        {
            "activation": name,
            "step_ms": harness.median_ms(times[name]),
            "images_per_s": args.batch_size / (harness.median_ms(times[name]) / 1e3),
            "peak_bytes": peak[name],
            "macs": macs[name],
            "parameters": parameters[name],
        }
        for name in names
    ]
    return {"jit_compile": JIT_COMPILE[backend], "batch_size": args.batch_size, "rows": rows}


def report(results, output_dir):
    sections = [
        "### Measured",
        "",
        harness.machine_markdown(results),
        "",
        "`time × ReLU` is the median step time over ReLU's; `MACs × ReLU` the ratio of "
        "multiply-accumulates per image, i.e. the time ratio if only the MACs counted; "
        "`peak MiB` the step's peak memory by the backend's own measure (see the module's "
        "docstring), `memory × ReLU` its ratio to ReLU's.",
    ]
    for backend, worker in results["backends"].items():
        relu = next(row for row in worker["rows"] if row["activation"] == "relu")
        table = [
            [
                f"`{row['activation']}`",
                f"{row['parameters']:,}",
                None if row["macs"] is None else f"{row['macs'] / 1e6:.1f}M",
                harness.format_number(row["step_ms"], 0),
                harness.format_number(row["images_per_s"], 0),
                harness.format_number(harness.ratio(row["step_ms"], relu["step_ms"])),
                harness.format_number(harness.ratio(row["macs"], relu["macs"])),
                harness.format_number(row["peak_bytes"] / 2**20, 0),
                harness.format_number(harness.ratio(row["peak_bytes"], relu["peak_bytes"])),
            ]
            for row in worker["rows"]
        ]
        compiled = "jit_compile=True" if worker["jit_compile"] else "eager"
        sections += [
            "",
            f"### {backend} ({compiled}), batch {worker['batch_size']}",
            "",
            harness.markdown_table(
                [
                    "activation",
                    "parameters",
                    "MACs",
                    "step ms",
                    "images/s",
                    "time × ReLU",
                    "MACs × ReLU",
                    "peak MiB",
                    "memory × ReLU",
                ],
                table,
            ),
        ]
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
