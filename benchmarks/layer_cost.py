"""What an attentional activation costs: every layer against ReLU and against plain framework code.

For each layer of the package (every name of `keras_atac.layers.names()` whose layer comes from
keras_atac, so new layers are included automatically), on each backend and compiled path, at
each input shape: the median time of a forward+backward step (gradients with respect to the
input and every weight, in training mode) and its peak memory, as ratios to Keras's `ReLU` and
to a plain PyTorch / JAX / TensorFlow implementation of the same formula (`reference_*.py`).
Before timing, each reference is checked to compute the same output and input gradient as the
layer, with the same weights.

    python -m benchmarks.layer_cost
    python -m benchmarks.layer_cost --backends jax --layers atac,arelu --repeats 5
"""

import sys

import numpy as np

from benchmarks import harness
from benchmarks.harness import SHAPES, package_layer_names, parse_shapes, selected_names

# On PyTorch, `torch.compile` takes tens of seconds per variant and shape on a small CPU: by
# default it is measured for these layers only (`--compile-layers all` for every layer).
DEFAULT_COMPILE_LAYERS = "relu,atac,arelu"
# The goal for every layer: at most this much slower than the plain-framework reference.
TARGET_RATIO = 1.10


def add_arguments(parser):
    parser.add_argument(
        "--layers", default="all", help="comma-separated factory names (default: all)"
    )
    parser.add_argument(
        "--shapes",
        default=";".join(",".join(map(str, shape)) for shape in SHAPES),
        help="semicolon-separated channels-last input shapes (default: %(default)s)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls of each step")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (ABAB...)")
    parser.add_argument(
        "--compile-layers",
        default=DEFAULT_COMPILE_LAYERS,
        help="layers measured with torch.compile on PyTorch: names, 'all' or 'none'",
    )


def check_reference(steps, layer, reference, x):
    """The reference computes the layer's output and input gradient with the same weights."""
    from keras import ops

    from benchmarks.backend_steps import call_kwargs

    expected = ops.convert_to_numpy(layer(x, **call_kwargs(layer)))
    actual = steps.reference_forward(reference, x)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def check_gradients(layer_step, reference_step, name):
    expected = np.asarray(layer_step()[0])
    actual = np.asarray(reference_step()[0])
    np.testing.assert_allclose(
        actual, expected, rtol=1e-3, atol=1e-4, err_msg=f"input gradient of {name}"
    )


def work(args):
    import keras

    from benchmarks import backend_steps
    from keras_atac import layers

    steps_of_backend = backend_steps.current()
    references = steps_of_backend.references()
    names = ["relu", *selected_names(args.layers, package_layer_names())]
    compile_names = set(selected_names(args.compile_layers, ["relu", *package_layer_names()]))
    rows = []
    for mode in steps_of_backend.modes:
        mode_names = [n for n in names if mode != "compile" or n in compile_names]
        for shape in parse_shapes(args.shapes):
            keras.utils.set_random_seed(0)
            x = np.random.default_rng(0).normal(size=shape).astype("float32")
            steps = {}
            for name in mode_names:
                layer = layers.get(name)
                layer.build(shape)
                steps[name] = steps_of_backend.layer_step(layer, x, mode)
                if name in references:
                    reference = references[name](layer)
                    check_reference(steps_of_backend, layer, reference, x)
                    steps[(name, "plain")] = steps_of_backend.reference_step(reference, x, mode)
                    check_gradients(steps[name], steps[(name, "plain")], name)
            print(f"  {mode} {shape}: timing {len(steps)} steps", flush=True)
            times = harness.interleaved_times(steps, warmup=args.warmup, repeats=args.repeats)
            peak = {key: steps_of_backend.peak_bytes(step) for key, step in steps.items()}
            for name in mode_names:
                plain = (name, "plain")
                rows.append(
                    {
                        "mode": mode,
                        "shape": list(shape),
                        "layer": name,
                        "ms": harness.median_ms(times[name]),
                        "plain_ms": harness.median_ms(times[plain]) if plain in times else None,
                        "relu_ms": harness.median_ms(times["relu"]),
                        "peak_bytes": peak[name],
                        "plain_peak_bytes": peak.get(plain),
                        "relu_peak_bytes": peak["relu"],
                    }
                )
    return {"rows": rows}


def _shape_text(shape):
    return "×".join(map(str, shape))


def report(results, output_dir):
    sections = [
        "### Measured",
        "",
        harness.machine_markdown(results),
        "",
        "Times are medians of interleaved rounds; `× ReLU` and `× plain` divide the layer's "
        "median by the median of Keras's `ReLU` and of the plain-framework reference of the "
        f"same formula, measured in the same rounds. The goal is `× plain` ≤ {TARGET_RATIO:.2f}. "
        "Peak memory is measured per backend as described in `benchmarks/backend_steps.py` "
        "(TensorFlow: CPU allocator peak; JAX: XLA buffer assignment, temporaries + outputs; "
        "PyTorch: CPU allocator peak from profiler events).",
    ]
    summary_header = ["layer"]
    summary = {}
    for backend, worker in results["backends"].items():
        by_mode = {}
        for row in worker["rows"]:
            by_mode.setdefault((row["mode"], tuple(row["shape"])), []).append(row)
        for (mode, shape), rows in by_mode.items():
            column = f"{backend} {mode} {_shape_text(shape[1:])}"
            summary_header.append(column)
            table = []
            for row in rows:
                plain_ratio = harness.ratio(row["ms"], row["plain_ms"])
                summary.setdefault(row["layer"], {})[column] = plain_ratio
                table.append(
                    [
                        f"`{row['layer']}`",
                        harness.format_number(row["ms"]),
                        harness.format_number(harness.ratio(row["ms"], row["relu_ms"])),
                        harness.format_number(row["plain_ms"]),
                        harness.format_number(plain_ratio),
                        harness.format_number(row["peak_bytes"] / 2**20, 1),
                        harness.format_number(
                            harness.ratio(row["peak_bytes"], row["relu_peak_bytes"])
                        ),
                        harness.format_number(
                            harness.ratio(row["peak_bytes"], row["plain_peak_bytes"])
                        ),
                    ]
                )
            sections += [
                "",
                f"### {backend}, {mode}, input {_shape_text(shape)}",
                "",
                harness.markdown_table(
                    [
                        "layer",
                        "ms",
                        "× ReLU",
                        "plain ms",
                        "× plain",
                        "peak MiB",
                        "mem × ReLU",
                        "mem × plain",
                    ],
                    table,
                ),
            ]
    summary_rows = [
        [f"`{layer}`"]
        + [harness.format_number(ratios.get(column)) for column in summary_header[1:]]
        for layer, ratios in summary.items()
    ]
    summary_section = [
        "",
        "### Summary: time × plain-framework reference",
        "",
        harness.markdown_table(summary_header, summary_rows),
    ]
    return "\n".join(sections[:5] + summary_section + sections[5:]) + "\n"


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
