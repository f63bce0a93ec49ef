"""Why a layer costs what it costs: one layer's step against its plain reference, profiled.

Runs in this process, on the backend `KERAS_BACKEND` names: the forward+backward step of a
layer of the package and of its plain-framework reference, their median times (interleaved),
and what each step executes: on PyTorch the operators with their times (`torch.profiler`), on
TensorFlow and JAX the kernels of the optimized XLA program.

    KERAS_BACKEND=torch python -m benchmarks.profile_step atac --shape 128,8,8,64
"""

import argparse

import numpy as np

from benchmarks import harness


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_step", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("layer", help="a factory name, e.g. atac")
    parser.add_argument("--shape", default="128,8,8,64", help="channels-last input shape")
    parser.add_argument("--mode", help="compiled path (default: the backend's first)")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args(argv)

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
    for name, step in steps.items():
        print(f"\n=== {args.layer} ({name}), {mode}, input {shape}: ", end="")
        print(f"{harness.median_ms(times[name]):.2f} ms (median of {args.repeats})")
        print(steps_of_backend.profile(step))


if __name__ == "__main__":
    main()
