"""Why a layer costs what it costs: its step profiled kernel by kernel.

Runs in this process, on the backend `KERAS_BACKEND` names, and prints Markdown.

- A layer against its plain reference (the default): the forward+backward step of a layer of
  the package and of its plain-framework reference, their median times (interleaved), what
  each step executes (the kernels of the optimized XLA program on TensorFlow and JAX, the
  operators on PyTorch) and the slowest kernels with their times.
- A network against ReLU's (`--network`): the training step of `cifar_resnet(--depth)` with
  the layer at every activation site and with ReLU, as `fit` runs it (XLA on TensorFlow and
  JAX, eager on PyTorch), their median times (interleaved), and each step's kernel time by
  category and by kind of work side by side: where the layer's extra time in the network goes,
  including what it changes in the kernels around it.

Kernel times come from the backend's profiler (`benchmarks.kernel_times`): on TensorFlow and
JAX the XLA kernels summed over XLA's threads, on PyTorch the operators' self times on the
calling thread. Profiling adds overhead, so these times add up to about the step, not to it.

    KERAS_BACKEND=torch python -m benchmarks.profile_step atac --shape 128,8,8,64
    KERAS_BACKEND=jax python -m benchmarks.profile_step atac --network
"""

import argparse

import numpy as np

from benchmarks import harness, kernel_times


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_step", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("layer", help="a factory name, e.g. atac")
    parser.add_argument("--shape", default="128,8,8,64", help="channels-last input shape")
    parser.add_argument("--mode", help="compiled path (default: the backend's first)")
    parser.add_argument("--repeats", type=int, default=11, help="timed rounds (ABAB...)")
    parser.add_argument("--profiled", type=int, default=5, help="steps profiled, after timing")
    parser.add_argument("--rows", type=int, default=15, help="rows of the kernel tables")
    parser.add_argument(
        "--network",
        action="store_true",
        help="profile cifar_resnet(--depth)'s training step with the layer against ReLU's",
    )
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    print(network_profile(args) if args.network else layer_profile(args))


def layer_profile(args):
    from benchmarks import backend_steps
    from keras_atac import layers

    steps_of_backend = backend_steps.current()
    mode = args.mode or steps_of_backend.modes[0]
    shape = tuple(int(size) for size in args.shape.split(","))
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    layer = layers.get(args.layer)
    layer.build(shape)
    reference = steps_of_backend.references()[args.layer](layer)
    steps = {
        "keras_atac": steps_of_backend.layer_step(layer, x, mode),
        "plain": steps_of_backend.reference_step(reference, x, mode),
    }
    times = harness.interleaved_times(steps, warmup=2, repeats=args.repeats)
    sections = []
    for name, step in steps.items():
        times_of_kernels = steps_of_backend.kernel_times(step, args.profiled)
        rows = [
            [f"`{kernel.work}`", kernel.category, f"{ms:.3f}"]
            for kernel, ms, _ in times_of_kernels[: args.rows]
        ]
        sections += [
            f"### {args.layer} ({name}), {mode}, input {shape}: "
            f"{harness.median_ms(times[name]):.2f} ms (median of {args.repeats})",
            "",
            steps_of_backend.profile(step),
            "",
            harness.markdown_table(["kernel", "category", "ms"], rows),
            "",
        ]
    return "\n".join(sections)


def network_profile(args):
    measured = network_kernel_times(
        args.layer, args.depth, args.batch_size, args.repeats, args.profiled
    )
    return network_report(args, *measured)


def network_report(args, step_ms, profiles):
    """The Markdown of `network_profile`, from what `network_kernel_times` measured."""
    import keras

    from benchmarks import backend_steps

    relu, layer = "relu", args.layer
    compiled = "eager" if keras.backend.backend() == "torch" else "XLA"
    caveat = backend_steps.current().kernel_times_caveat
    return "\n".join(
        [
            f"### cifar_resnet({args.depth}), {layer} against ReLU, "
            f"{keras.backend.backend()} ({compiled}), batch {args.batch_size}",
            "",
            f"Training step, median of {args.repeats} interleaved: ReLU {step_ms[relu]:.1f} ms, "
            f"{layer} {step_ms[layer]:.1f} ms ({step_ms[layer] / step_ms[relu]:.2f}x, "
            f"{step_ms[layer] - step_ms[relu]:+.1f} ms). Kernel time per step (mean of "
            f"{args.profiled} profiled steps), by category:" + (f" {caveat}" if caveat else ""),
            "",
            _category_table(profiles[relu], profiles[layer], layer),
            "",
            f"The {args.rows} kinds of work whose time changed most (in brackets: how many "
            "kernels or operator calls of that kind run in a step):",
            "",
            _work_table(profiles[relu], profiles[layer], layer, args.rows),
            "",
        ]
    )


def network_kernel_times(layer, depth, batch_size, repeats, profiled):
    """The training steps of `cifar_resnet(depth)` with ReLU and with `layer`, timed interleaved
    and then profiled: `({"relu": ms, layer: ms}, {"relu": times, layer: times})`, the median
    step times and each step's `kernel_times` list."""
    from benchmarks import backend_steps, train_step

    steps_of_backend = backend_steps.current()
    x, y = train_step.training_data(batch_size)
    steps = {}
    for activation in ("relu", layer):
        model = train_step.compiled_network(depth, activation)
        model.train_on_batch(x, y)  # builds the optimizer's variables
        steps[activation] = steps_of_backend.model_step(model, x, y)
    times = harness.interleaved_times(steps, warmup=2, repeats=repeats)
    step_ms = {name: harness.median_ms(times[name]) for name in steps}
    profiles = {name: steps_of_backend.kernel_times(step, profiled) for name, step in steps.items()}
    return step_ms, profiles


def _category_table(relu_times, layer_times, layer):
    relu, other = kernel_times.by_category(relu_times), kernel_times.by_category(layer_times)
    relu["**all kernels**"], other["**all kernels**"] = sum(relu.values()), sum(other.values())
    rows = [
        [name, f"{relu[name]:.1f}", f"{other[name]:.1f}", f"{other[name] - relu[name]:+.1f}"]
        for name in relu
    ]
    return harness.markdown_table(["category", "ReLU ms", f"{layer} ms", "difference"], rows)


def _work_table(relu_times, layer_times, layer, length):
    relu, other = kernel_times.by_work(relu_times), kernel_times.by_work(layer_times)
    absent = (None, 0.0, 0)
    changes = []
    for work in relu.keys() | other.keys():
        category = (other.get(work) or relu[work])[0]
        _, relu_ms, relu_runs = relu.get(work, absent)
        _, other_ms, other_runs = other.get(work, absent)
        changes.append(
            (other_ms - relu_ms, work, category, relu_ms, relu_runs, other_ms, other_runs)
        )
    changes.sort(key=lambda change: -abs(change[0]))
    rows = [
        [
            f"`{work}`",
            category,
            f"{relu_ms:.1f} ({relu_runs:.0f})",
            f"{other_ms:.1f} ({other_runs:.0f})",
            f"{difference:+.1f}",
        ]
        for difference, work, category, relu_ms, relu_runs, other_ms, other_runs in changes[:length]
    ]
    header = ["work", "category", "ReLU ms", f"{layer} ms", "difference"]
    return harness.markdown_table(header, rows)


if __name__ == "__main__":
    main()
