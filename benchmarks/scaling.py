"""How ATAC's cost grows with the channel count and with the resolution.

A forward+backward step of ATAC and of ReLU (training mode, float32) on each backend's
compiled path, over a sweep of channel counts at a fixed resolution and of resolutions at a
fixed channel count; ATAC and ReLU are interleaved at every point. ATAC's multiply-accumulates
grow as C**2 per position (two pointwise maps of C * C/2) and as H * W with the resolution;
ReLU's cost grows as C * H * W. The plot shows both, with ATAC's time per element.

    python -m benchmarks.scaling
"""

import sys

import numpy as np

from benchmarks import harness

CHANNELS = (8, 16, 32, 64, 128)
RESOLUTIONS = (8, 16, 32, 64)


def add_arguments(parser):
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels", default=",".join(map(str, CHANNELS)))
    parser.add_argument("--resolutions", default=",".join(map(str, RESOLUTIONS)))
    parser.add_argument("--fixed-resolution", type=int, default=16, help="for the channel sweep")
    parser.add_argument("--fixed-channels", type=int, default=32, help="for the resolution sweep")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)


def sweep_points(args):
    """(sweep, value, shape) for the channel sweep and the resolution sweep."""
    points = []
    for channels in map(int, args.channels.split(",")):
        size = args.fixed_resolution
        points.append(("channels", channels, (args.batch_size, size, size, channels)))
    for size in map(int, args.resolutions.split(",")):
        points.append(("resolution", size, (args.batch_size, size, size, args.fixed_channels)))
    return points


def work(args):
    from benchmarks import backend_steps
    from keras_atac import layers

    steps_of_backend = backend_steps.current()
    mode = steps_of_backend.modes[0]
    rows = []
    for sweep, value, shape in sweep_points(args):
        x = np.random.default_rng(0).normal(size=shape).astype("float32")
        steps = {}
        for name in ("atac", "relu"):
            layer = layers.get(name)
            layer.build(shape)
            steps[name] = steps_of_backend.layer_step(layer, x, mode)
        times = harness.interleaved_times(steps, warmup=args.warmup, repeats=args.repeats)
        rows.append(
            {
                "sweep": sweep,
                "value": value,
                "shape": list(shape),
                "atac_ms": harness.median_ms(times["atac"]),
                "relu_ms": harness.median_ms(times["relu"]),
            }
        )
        print(f"  {mode} {shape}: ATAC {rows[-1]['atac_ms']:.2f} ms", flush=True)
    return {"mode": mode, "rows": rows}


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for column, (sweep, label) in enumerate(
        (("channels", "channels C (resolution fixed)"), ("resolution", "resolution H = W"))
    ):
        for backend, worker in results["backends"].items():
            rows = [row for row in worker["rows"] if row["sweep"] == sweep]
            values = [row["value"] for row in rows]
            elements = [np.prod(row["shape"]) for row in rows]
            axes[0, column].plot(
                values,
                [1e6 * row["atac_ms"] / n for row, n in zip(rows, elements)],
                marker="o",
                label=f"{backend} ({worker['mode']})",
            )
            axes[1, column].plot(
                values, [row["atac_ms"] / row["relu_ms"] for row in rows], marker="o"
            )
        axes[0, column].set_ylabel("ATAC ns per element")
        axes[1, column].set_ylabel("ATAC time / ReLU time")
        axes[1, column].set_xlabel(label)
        for row_axes in axes[:, column]:
            row_axes.set_xscale("log", base=2)
            row_axes.set_yscale("log")
            row_axes.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend()
    figure.suptitle("ATAC forward+backward, float32: cost per element and ratio to ReLU")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report(results, output_dir):
    plot(results, output_dir / "scaling.png")
    sections = [
        "### Measured",
        "",
        harness.machine_markdown(results),
        "",
        "![ATAC's cost per element and its ratio to ReLU](benchmarks/scaling.png)",
    ]
    for backend, worker in results["backends"].items():
        table = [
            [
                row["sweep"],
                "×".join(map(str, row["shape"])),
                harness.format_number(row["atac_ms"]),
                harness.format_number(row["relu_ms"]),
                harness.format_number(harness.ratio(row["atac_ms"], row["relu_ms"])),
                harness.format_number(1e6 * row["atac_ms"] / np.prod(row["shape"])),
            ]
            for row in worker["rows"]
        ]
        sections += [
            "",
            f"### {backend}, {worker['mode']}",
            "",
            harness.markdown_table(
                ["sweep", "input", "ATAC ms", "ReLU ms", "ATAC / ReLU", "ATAC ns per element"],
                table,
            ),
        ]
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
