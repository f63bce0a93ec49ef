"""Where ATAC's training step goes: the unit taken apart, at cifar_resnet(20)'s shapes.

For each backend, the forward+backward step (as `benchmarks.layer_cost` times it: gradients
with respect to the input and every weight, training mode, on the backend's compiled path) of
a unit at each of the three stages of `cifar_resnet(20)` (batch 64: 32×32×16, 16×16×32,
8×8×64), for a ladder of units that add ATAC's parts one at a time:

- `relu`: Keras's ReLU, the baseline;
- `gate_product`: `x * sigmoid(x)`, the gate product alone (no context);
- `pointwise_rank4`: `x * sigmoid(PW2(ReLU(PW1(x))))`, ATAC without its two BatchNorms, with
  each pointwise map one `ops.matmul` of the rank-4 map (as the package computed them before);
- `pointwise`: the same with the package's pointwise map (`layer_utils.pointwise`);
- `atac`: `keras_atac.layers.ATAC` as it is (the two BatchNorm layers differentiated
  automatically);
- `atac_written_out`: ATAC with the backward pass of the whole unit written out
  (`benchmarks.atac_written_out`, which the layer does not use).

The steps of all units and shapes are interleaved. Each row gives the sum over the three
shapes, its ratio to ReLU's, and the step's peak memory (as `benchmarks.backend_steps`
measures it).

    python -m benchmarks.atac_cost
    python -m benchmarks.atac_cost --backends jax --batch-size 32
"""

import sys

import numpy as np

from benchmarks import harness

STAGES = ((32, 16), (16, 32), (8, 64))  # (resolution, channels) of cifar_resnet(20)'s stages
UNITS = ("relu", "gate_product", "pointwise_rank4", "pointwise", "atac", "atac_written_out")


def add_arguments(parser):
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)


def unit_layers():
    """The ladder's units as Keras layer factories, built here (in the worker: the parent
    process imports no framework)."""
    import keras
    from keras import ops

    from benchmarks import atac_written_out
    from keras_atac import layers
    from keras_atac.layers import atac, layer_utils

    class GateProduct(keras.layers.Layer):
        def call(self, x):
            return x * ops.sigmoid(x)

    class Pointwise(keras.layers.Layer):
        def __init__(self, rank4=False, **kwargs):
            super().__init__(**kwargs)
            self.rank4 = rank4

        def build(self, input_shape):
            channels = input_shape[-1]
            self.reduce_kernel = self.add_weight(shape=(channels, channels // 2))
            self.expand_kernel = self.add_weight(shape=(channels // 2, channels))

        def pointwise(self, x, kernel):
            if self.rank4:
                return ops.matmul(x, kernel)
            return layer_utils.pointwise(x, kernel, "channels_last")

        def call(self, x):
            h = ops.relu(self.pointwise(x, self.reduce_kernel))
            return x * ops.sigmoid(self.pointwise(h, self.expand_kernel))

    class ATACWrittenOut(layers.ATAC):
        """ATAC whose training step is `atac_written_out.training_gate(..., gated=True)`."""

        def call(self, inputs, training=None):
            weights = [
                ops.convert_to_tensor(weight)
                for weight in (
                    self.reduce_kernel,
                    self.expand_kernel,
                    self.reduce_norm.gamma,
                    self.reduce_norm.beta,
                    self.expand_norm.gamma,
                    self.expand_norm.beta,
                )
            ]
            outputs, *statistics = atac_written_out.training_gate(
                inputs,
                weights,
                data_format=self.data_format,
                epsilon=self.epsilon,
                inner_relu=True,
                gated=True,
            )
            norms = (self.reduce_norm, self.expand_norm)
            for norm, mean, variance in zip(norms, statistics[::2], statistics[1::2]):
                # The update ATAC's remat path makes from batch statistics of its own.
                atac._update_moving_statistics(norm, mean, variance)
            return outputs

    return {
        "relu": keras.layers.ReLU,
        "gate_product": GateProduct,
        "pointwise_rank4": lambda: Pointwise(rank4=True),
        "pointwise": Pointwise,
        "atac": layers.ATAC,
        "atac_written_out": ATACWrittenOut,
    }


def work(args):
    from benchmarks import backend_steps

    steps_of_backend = backend_steps.current()
    mode = steps_of_backend.modes[0]
    rng = np.random.default_rng(0)
    steps = {}
    for size, channels in STAGES:
        shape = (args.batch_size, size, size, channels)
        x = rng.normal(size=shape).astype("float32")
        for name, factory in unit_layers().items():
            layer = factory()
            layer.build(shape)
            steps[(name, shape)] = steps_of_backend.layer_step(layer, x, mode)
    times = harness.interleaved_times(steps, warmup=args.warmup, repeats=args.repeats)
    rows = []
    for name in UNITS:
        keys = [key for key in steps if key[0] == name]
        rows.append(
            {
                "unit": name,
                "step_ms": [harness.median_ms(times[key]) for key in keys],
                "peak_bytes": [steps_of_backend.peak_bytes(steps[key]) for key in keys],
            }
        )
    return {"mode": mode, "batch_size": args.batch_size, "rows": rows}


def report(results, output_dir):
    sections = [
        "### Measured",
        "",
        harness.machine_markdown(results),
        "",
        "Step times (ms, median) of one unit at each stage of `cifar_resnet(20)`, their sum and "
        "its ratio to ReLU's; the peak memory (MiB) summed over the three stages, by the "
        "backend's own measure (see `benchmarks.backend_steps`).",
    ]
    for backend, worker in results["backends"].items():
        relu = next(row for row in worker["rows"] if row["unit"] == "relu")
        batch = worker["batch_size"]
        header = ["unit", *(f"{batch}×{s}×{s}×{c}" for s, c in STAGES), "sum", "× ReLU"]
        header += ["peak MiB", "memory × ReLU"]
        table = [
            [
                f"`{row['unit']}`",
                *(harness.format_number(ms) for ms in row["step_ms"]),
                harness.format_number(sum(row["step_ms"])),
                harness.format_number(harness.ratio(sum(row["step_ms"]), sum(relu["step_ms"]))),
                harness.format_number(sum(row["peak_bytes"]) / 2**20, 1),
                harness.format_number(
                    harness.ratio(sum(row["peak_bytes"]), sum(relu["peak_bytes"]))
                ),
            ]
            for row in worker["rows"]
        ]
        sections += [
            "",
            f"### {backend} ({worker['mode']})",
            "",
            harness.markdown_table(header, table),
        ]
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
