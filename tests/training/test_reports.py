"""Summaries, tables and plots of training histories."""

import pytest

from keras_atac import training

HISTORY = {
    "loss": [2.0, 1.5, 1.2],
    "accuracy": [0.3, 0.5, 0.6],
    "val_accuracy": [0.4, 0.7, 0.65],
    "epoch_seconds": [9.0, 3.0, 4.0],
}


def test_summary_has_best_and_final_accuracy_and_timing():
    assert training.summarize_history(HISTORY) == {
        "best_accuracy": 0.7,
        "best_epoch": 2,
        "final_accuracy": 0.65,
        "epochs": 3,
        "seconds_per_epoch": 4.0,
        "first_epoch_seconds": 9.0,
    }


def test_summary_needs_the_metric():
    with pytest.raises(ValueError, match="metric='val_accuracy'.*validation_data"):
        training.summarize_history({"loss": [1.0]})


def test_markdown_table():
    table = training.markdown_table(
        [
            {"name": "relu", "acc": 0.91234, "params": 78042, "seconds": 44.06},
            {"name": "atac", "acc": 0.9},
        ],
        [
            ("name", "activation"),
            ("acc", "best"),
            ("params", "parameters"),
            ("seconds", "s", ".1f"),
        ],
    )
    assert table.splitlines() == [
        "| activation | best | parameters | s |",
        "|---|---|---|---|",
        "| relu | 0.9123 | 78,042 | 44.1 |",
        "| atac | 0.9000 |  |  |",
    ]


def test_plot_curves_writes_a_png(tmp_path):
    path = training.plot_curves({"relu": HISTORY, "atac": HISTORY}, tmp_path / "curves.png", "t")
    assert path.read_bytes().startswith(b"\x89PNG")


def _pixels_of_colour(path, colour, columns):
    """How many pixels of `path`'s columns `columns` (a slice) are `colour` (RGB in 0..1)."""
    import matplotlib.image
    import numpy as np

    image = matplotlib.image.imread(path)[:, columns, :3]
    return int(np.all(np.abs(image - np.asarray(colour)) < 0.02, axis=-1).sum())


def test_plot_curves_draws_a_one_epoch_run(tmp_path):
    # One point is no line: without markers the panels of a one-epoch run were empty.
    one_epoch = {key: values[:1] for key, values in HISTORY.items()}
    path = training.plot_curves({"relu": one_epoch}, tmp_path / "curves.png")
    # The left half of the figure holds only the accuracy panel (the legend is on the right);
    # matplotlib's first colour, C0, is #1f77b4.
    assert _pixels_of_colour(path, (0x1F / 255, 0x77 / 255, 0xB4 / 255), slice(0, 600)) > 10


def run_summary(activation, seed, best, final, attention="none", **changes):
    """A `summary.json` of one run, with the fields `aggregate_runs` reads."""
    return {
        "model": "cifar_resnet8",
        "dataset": "cifar10",
        "labels": "fine",
        "train_images": 50_000,
        "test_images": 10_000,
        "epochs": 30,
        "recipe": {"name": "atac_cifar", "epochs": 30},
        "activation": activation,
        "attention": attention,
        "mechanism": "none",
        "seed": seed,
        "best_accuracy": best,
        "final_accuracy": final,
        "trainable_parameters": 77_850,
        "macs": 12_501_632,
        "seconds_per_epoch": 40.0 + seed,
        **changes,
    }


def test_aggregate_runs_pools_the_seeds_of_each_network():
    rows = training.aggregate_runs(
        [
            run_summary("relu", 0, 0.82, 0.81),
            run_summary("atac", 0, 0.84, 0.83),
            run_summary("relu", 1, 0.80, 0.79),
            run_summary("relu", 2, 0.84, 0.80),
            run_summary("relu", 0, 0.83, 0.83, attention="se"),
        ]
    )
    assert [(r["activation"], r["attention"], r["runs"]) for r in rows] == [
        ("relu", "none", 3),
        ("atac", "none", 1),
        ("relu", "se", 1),
    ]
    relu = rows[0]
    assert relu["seeds"] == [0, 1, 2]
    # Mean 0.82; sample variance ((0)^2 + 0.02^2 + 0.02^2) / (3 - 1) = 0.0004.
    assert relu["best_accuracy_mean"] == pytest.approx(0.82)
    assert relu["best_accuracy_std"] == pytest.approx(0.02)
    assert relu["final_accuracy_mean"] == pytest.approx(0.80)
    assert relu["final_accuracy_std"] == pytest.approx(0.01)
    assert relu["seconds_per_epoch"] == 41.0
    # One seed has no spread.
    assert rows[1]["best_accuracy_std"] is None and rows[1]["best_accuracy_mean"] == 0.84


@pytest.mark.parametrize(
    "runs, message",
    [
        ([], r"at least one run summary"),
        (
            [run_summary("relu", 0, 0.8, 0.8), run_summary("atac", 0, 0.8, 0.8, epochs=15)],
            r"differ in epochs \(15, 30\)",
        ),
        (
            [
                run_summary("relu", 0, 0.8, 0.8),
                run_summary("atac", 0, 0.8, 0.8, train_images=10_000),
            ],
            r"differ in train_images",
        ),
        (
            [run_summary("relu", 0, 0.8, 0.8), run_summary("relu", 0, 0.7, 0.7)],
            r"relu/none/none has a seed twice: seeds \[0, 0\]",
        ),
    ],
)
def test_aggregate_runs_refuses_runs_that_cannot_be_pooled(runs, message):
    with pytest.raises(ValueError, match=message):
        training.aggregate_runs(runs)
