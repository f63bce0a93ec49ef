"""Summaries, tables and plots of training runs, from Keras's `History`.

matplotlib is imported inside `plot_curves` (with the non-interactive Agg backend), so it is only
needed when a plot is drawn.
"""

import statistics

from keras_atac.api_export import keras_atac_export


@keras_atac_export("keras_atac.training.summarize_history")
def summarize_history(history, metric="val_accuracy"):
    """Best and final value of a metric, and the epoch timings, from a `History`.

    The ATAC paper reports the best test accuracy over all epochs; the final one is the honest
    companion. With the test set passed as `validation_data`, `val_accuracy` is the test
    accuracy after every epoch.

    Args:
        history: a `keras.callbacks.History` or its `.history` dict.
        metric: the key to summarise.

    Returns:
        A dict with `best_accuracy`, `best_epoch` (1-based), `final_accuracy` and `epochs`, and,
        when the logs have `epoch_seconds` (`EpochTimer`), `seconds_per_epoch` (the median, which
        leaves out the first epoch's compilation) and `first_epoch_seconds`.
    """
    logs = getattr(history, "history", history)
    if not logs.get(metric):
        raise ValueError(
            f"The history has no values for metric={metric!r}; it has {sorted(logs)}. Pass the "
            "test set as `validation_data` to `fit` to record the test accuracy."
        )
    values = [float(value) for value in logs[metric]]
    best = max(range(len(values)), key=values.__getitem__)
    summary = {
        "best_accuracy": values[best],
        "best_epoch": best + 1,
        "final_accuracy": values[-1],
        "epochs": len(values),
    }
    if logs.get("epoch_seconds"):
        seconds = [float(value) for value in logs["epoch_seconds"]]
        summary["seconds_per_epoch"] = statistics.median(seconds)
        summary["first_epoch_seconds"] = seconds[0]
    return summary


# What must be equal for runs to be compared, or pooled as seeds of one network.
_BUDGET_FIELDS = (
    "model", "dataset", "labels", "train_images", "test_images", "epochs", "recipe"
)  # fmt: skip
# What tells networks apart: runs that agree on these are seeds of one network.
_NETWORK_FIELDS = ("activation", "attention", "mechanism")


def _mean_and_spread(values):
    """The mean and the sample standard deviation (None for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


@keras_atac_export("keras_atac.training.aggregate_runs")
def aggregate_runs(summaries):
    """Pools the runs of each network over its seeds: mean and spread of its accuracies.

    Args:
        summaries: the `summary.json` dicts of single runs (`keras-atac train`, or one network
            of `keras-atac compare`), all on the same model, data and epoch budget.

    Returns:
        One dict per network (activation, attention module, mechanism), in the order the
        networks first appear: `activation`, `attention`, `mechanism`, `runs`, `seeds`,
        `best_accuracy_mean`, `best_accuracy_std`, `final_accuracy_mean`, `final_accuracy_std`
        (sample standard deviations over the seeds, None for one seed), `trainable_parameters`,
        `macs` (None if not recorded) and `seconds_per_epoch` (the median of the runs' medians).

    Raises:
        ValueError: if there are no summaries, if they differ in model, data, epochs or
            recipe (their accuracies would not be comparable), or if one network has the same
            seed twice.
    """
    summaries = list(summaries)
    if not summaries:
        raise ValueError("aggregate_runs needs at least one run summary. Received: []")
    for field in _BUDGET_FIELDS:
        values = sorted({str(summary.get(field)) for summary in summaries})
        if len(values) > 1:
            raise ValueError(
                f"The runs differ in {field} ({', '.join(values)}): only runs on the same "
                "model, data, epoch budget and recipe can be compared."
            )
    networks = {}
    for summary in summaries:
        key = tuple(summary.get(field, "none") for field in _NETWORK_FIELDS)
        networks.setdefault(key, []).append(summary)
    rows = []
    for key, runs in networks.items():
        seeds = [run["seed"] for run in runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"The network {'/'.join(key)} has a seed twice: seeds {seeds}")
        best_mean, best_std = _mean_and_spread([run["best_accuracy"] for run in runs])
        final_mean, final_std = _mean_and_spread([run["final_accuracy"] for run in runs])
        seconds = [run["seconds_per_epoch"] for run in runs if "seconds_per_epoch" in run]
        rows.append(
            {
                **dict(zip(_NETWORK_FIELDS, key)),
                "runs": len(runs),
                "seeds": sorted(seeds),
                "best_accuracy_mean": best_mean,
                "best_accuracy_std": best_std,
                "final_accuracy_mean": final_mean,
                "final_accuracy_std": final_std,
                "trainable_parameters": runs[0]["trainable_parameters"],
                "macs": runs[0].get("macs"),
                "seconds_per_epoch": statistics.median(seconds) if seconds else None,
            }
        )
    return rows


@keras_atac_export("keras_atac.training.markdown_table")
def markdown_table(rows, columns):
    """A Markdown table of `rows` (dicts).

    Args:
        rows: one dict per row.
        columns: `(key, heading)` or `(key, heading, format_spec)` tuples. Without a format
            spec, floats are written with 4 decimals and integers with thousands separators.
    """

    def cell(value, format_spec):
        if value is None:
            return ""
        if format_spec:
            return format(value, format_spec)
        if isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = [
        "| " + " | ".join(column[1] for column in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [cell(row.get(key), spec[0] if spec else None) for key, _, *spec in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# Runs of up to this many epochs are plotted with a marker at every epoch.
MARKER_EPOCHS = 20


@keras_atac_export("keras_atac.training.plot_curves")
def plot_curves(histories, path, title=""):
    """Plots test accuracy and training loss per epoch of one or more runs into a PNG file.

    Args:
        histories: a dict from run label (e.g. the activation) to a `History` or its dict.
        path: the PNG file to write.
        title: the figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    figure, (accuracy_axes, loss_axes) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    handles = []
    for label, history in histories.items():
        logs = getattr(history, "history", history)
        epochs = range(1, len(logs["loss"]) + 1)
        # A line needs two points: a run of one epoch (or a few) shows its values as markers.
        marker = dict(marker="o", markersize=4) if len(epochs) <= MARKER_EPOCHS else {}
        (line,) = accuracy_axes.plot(epochs, logs["val_accuracy"], label=label, **marker)
        if "accuracy" in logs:
            accuracy_axes.plot(
                epochs,
                logs["accuracy"],
                linestyle="--",
                color=line.get_color(),
                alpha=0.5,
                **marker,
            )
        loss_axes.plot(epochs, logs["loss"], color=line.get_color(), **marker)
        handles.append(line)
    # One legend for both panels: a colour per run, solid for test and dashed for training.
    handles += [
        Line2D([], [], color="gray", label="test"),
        Line2D([], [], color="gray", linestyle="--", alpha=0.5, label="training"),
    ]
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    loss_axes.set(xlabel="epoch", ylabel="training loss", title="training loss")
    for axes in (accuracy_axes, loss_axes):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.legend(handles=handles, loc="outside right upper", fontsize="small")
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
