"""Training recipes of the papers, weight decay, a timing callback, summaries and plots."""

from keras_atac.training.callbacks import EpochTimer
from keras_atac.training.recipes import (
    Recipe,
    add_weight_decay,
    get_recipe,
    recipe_names,
)
from keras_atac.training.reports import (
    aggregate_runs,
    markdown_table,
    plot_curves,
    summarize_history,
)

__all__ = [
    "EpochTimer",
    "Recipe",
    "add_weight_decay",
    "aggregate_runs",
    "get_recipe",
    "markdown_table",
    "plot_curves",
    "recipe_names",
    "summarize_history",
]
