"""Puts runs of `keras-atac train` / `compare` side by side: one table and one plot.

Each run folder holds what the command wrote: `summary.json` (one run) and Keras's CSV log
`log.csv`. The table has the columns `keras-atac compare` writes, plus the run's label; the plot
is `keras_atac.training.plot_curves` of the CSV logs.

    python docs/scripts/collect_runs.py --out docs/results/cifar10_resnet8_mechanisms \\
        ReLU=docs/results/cifar10_resnet8_atac_vs_relu/relu \\
        SSIA=docs/results/cifar10_resnet8_mechanisms/ssia ...
"""

import argparse
import csv
import json
import pathlib

from keras_atac import cli, training

# The columns `keras-atac compare` writes, with the run's label in place of its activation.
COLUMNS = [("label", "run"), *cli.RESULT_COLUMNS[1:]]


def read_log(path):
    """Keras's CSV log as `{column: [floats]}`, the form of `History.history`."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


def read_run(folder):
    """The summary and log of the run in `folder`: a `train` output folder, or the folder of
    one network (activation, or activation+attention) inside a `compare` output folder (whose
    `summary.json` lists every run)."""
    if (folder / "summary.json").exists():
        summary = json.loads((folder / "summary.json").read_text())
    else:
        summaries = json.loads((folder.parent / "summary.json").read_text())
        (summary,) = [
            run
            for run in summaries
            if cli.run_label(run["activation"], run.get("attention", "none")) == folder.name
        ]
    return summary, read_log(folder / "log.csv")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=FOLDER, in the order of the table")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="output folder")
    parser.add_argument("--title", default="", help="the plot's title")
    args = parser.parse_args(argv)
    rows, logs = [], {}
    for run in args.runs:
        label, _, folder = run.partition("=")
        if not folder:
            parser.error(f"each run is LABEL=FOLDER. Received: {run!r}")
        summary, logs[label] = read_run(pathlib.Path(folder))
        rows.append({**summary, "label": label})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(training.markdown_table(rows, COLUMNS))
    training.plot_curves(logs, args.out / "curves.png", title=args.title)
    print(training.markdown_table(rows, COLUMNS))
    print(f"wrote {args.out / 'table.md'} and {args.out / 'curves.png'}")


if __name__ == "__main__":
    main()
