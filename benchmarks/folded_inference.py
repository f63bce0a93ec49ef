"""Inference with BatchNorms folded away: `keras_atac.fold_batchnorm(model)` against the model.

On each backend's main path (XLA on TensorFlow, `jax.jit`, eager PyTorch), the median time
of `model(x, training=False)` for a single ATAC and a single xUnit layer at the layer-cost
shapes and for `cifar_resnet(20)` with ATAC at every activation site, against the same model
after `fold_batchnorm`. The two are interleaved and checked to compute the same output first.

    python -m benchmarks.folded_inference
"""

import sys

import numpy as np

from benchmarks import harness
from benchmarks.harness import SHAPES, parse_shapes


def add_arguments(parser):
    parser.add_argument(
        "--shapes",
        default=";".join(",".join(map(str, shape)) for shape in SHAPES),
        help="semicolon-separated input shapes of the single-layer cases (default: %(default)s)",
    )
    parser.add_argument("--batch-size", type=int, default=128, help="for cifar_resnet(20)")
    parser.add_argument("--depth", type=int, default=20, help="of the CIFAR ResNet")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)


def randomized(model, seed=0):
    """Non-trivial BatchNorm statistics, as after training (fresh ones fold to identities)."""
    rng = np.random.default_rng(seed)
    for variable in model.non_trainable_variables:
        low, high = (0.5, 2.0) if "variance" in variable.path else (-0.5, 0.5)
        variable.assign(rng.uniform(low, high, tuple(variable.shape)).astype("float32"))
    return model


def cases(args):
    """(name, model, input) of everything compared."""
    import keras

    import keras_atac

    for layer_name in ("ATAC", "XUnit"):
        for shape in parse_shapes(args.shapes):
            layer = getattr(keras_atac.layers, layer_name)()
            model = keras.Sequential([keras.Input(shape[1:]), layer])
            yield f"{layer_name} layer, input {'×'.join(map(str, shape))}", model, shape
    model = keras_atac.models.cifar_resnet(args.depth, activation="atac")
    yield (
        f"cifar_resnet({args.depth}) with ATAC, batch {args.batch_size}",
        model,
        (args.batch_size, *model.input_shape[1:]),
    )


def work(args):
    import keras

    import keras_atac
    from benchmarks import backend_steps

    steps_of_backend = backend_steps.current()
    rows = []
    for name, model, shape in cases(args):
        randomized(model)
        folded = keras_atac.fold_batchnorm(model)
        x = np.random.default_rng(1).normal(size=shape).astype("float32")
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(folded(x)),
            keras.ops.convert_to_numpy(model(x, training=False)),
            rtol=1e-4,
            atol=1e-4,
        )
        mode = steps_of_backend.modes[0]
        steps = {
            "model": steps_of_backend.inference_step(model, x, mode),
            "folded": steps_of_backend.inference_step(folded, x, mode),
        }
        times = harness.interleaved_times(steps, warmup=args.warmup, repeats=args.repeats)
        row = {
            "case": name,
            "mode": mode,
            "model_ms": harness.median_ms(times["model"]),
            "folded_ms": harness.median_ms(times["folded"]),
        }
        rows.append(row)
        print(f"  {mode} {name}: folded / model {row['folded_ms'] / row['model_ms']:.2f}")
    return {"rows": rows}


def report(results, output_dir):
    table = [
        [
            backend,
            row["mode"],
            row["case"],
            harness.format_number(row["model_ms"]),
            harness.format_number(row["folded_ms"]),
            harness.format_number(harness.ratio(row["folded_ms"], row["model_ms"])),
        ]
        for backend, worker in results["backends"].items()
        for row in worker["rows"]
    ]
    return (
        "\n".join(
            [
                "### Measured",
                "",
                harness.machine_markdown(results),
                "",
                harness.markdown_table(
                    ["backend", "path", "model", "model ms", "folded ms", "folded / model"],
                    table,
                ),
            ]
        )
        + "\n"
    )


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
