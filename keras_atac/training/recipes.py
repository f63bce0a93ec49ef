"""The training recipes of the ATAC (CIFAR) and AReLU (MNIST) papers, with Keras's own parts."""

import dataclasses

import keras

from keras_atac.api_export import keras_atac_export
from keras_atac.utils import checks


# Exported for the API reference; `get_recipe` is the public way to obtain one.
@keras_atac_export("keras_atac.training.Recipe")
@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a paper trained its networks: optimizer, learning-rate drops, weight decay, batch.

    The learning rate starts at `learning_rate` and is multiplied by `drop_factor` after each
    fraction of the epoch budget in `drop_fractions`, so a recipe scales to any number of
    epochs: ATAC's drops at epochs 300 and 350 of 400 are `(0.75, 0.875)`, i.e. epochs 11 and 13
    of a 15-epoch budget. Change a field with `dataclasses.replace(recipe, epochs=15)`.

    Attributes:
        name: the recipe's name (`recipe_names()`).
        epochs: the epoch budget.
        batch_size: images per batch; the last partial batch of an epoch is dropped.
        learning_rate: the initial learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: coupled L2 decay `wd` on every trainable weight (see
            `add_weight_decay`); 0 for none.
        drop_fractions: fractions of `epochs` after which the learning rate drops.
        drop_factor: the factor of each drop.
        reference: where the recipe comes from.
    """

    name: str
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float
    nesterov: bool
    weight_decay: float
    drop_fractions: tuple = ()
    drop_factor: float = 0.1
    reference: str = ""

    def drop_epochs(self):
        """After how many epochs each drop happens: `floor(fraction * epochs)`, at least 1.

        ATAC's recipe drops after 300 and 350 of 400 epochs; on 15 epochs after 11 and 13, so
        epochs 12-13 (counting from 1) run at 0.1x and epochs 14-15 at 0.01x the initial rate.
        The minimum of 1 keeps a budget of a few epochs from skipping the initial rate; drops
        may then coincide (2 epochs: both after the first).
        """
        return tuple(max(1, int(fraction * self.epochs)) for fraction in self.drop_fractions)

    def learning_rate_schedule(self, steps_per_epoch):
        """The learning rate as a function of the step: a `PiecewiseConstantDecay`, or a float.

        `PiecewiseConstantDecay` keeps `values[i]` while `step <= boundaries[i]`; the optimizer
        counts steps from 0, so the boundary of a drop at epoch `e` is `e * steps_per_epoch - 1`
        and the first step of epoch `e` already uses the lower rate.
        """
        checks.check_positive_number("steps_per_epoch", steps_per_epoch, integer=True)
        if not self.drop_fractions:
            return self.learning_rate
        drops = self.drop_epochs()
        # Coinciding drops become one boundary with their factors multiplied.
        epochs = sorted(set(drops))
        values = [self.learning_rate] + [
            self.learning_rate * self.drop_factor ** sum(drop <= epoch for drop in drops)
            for epoch in epochs
        ]
        boundaries = [epoch * steps_per_epoch - 1 for epoch in epochs]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)

    def optimizer(self, steps_per_epoch):
        """A new `keras.optimizers.SGD` following the recipe's learning rates."""
        return keras.optimizers.SGD(
            learning_rate=self.learning_rate_schedule(steps_per_epoch),
            momentum=self.momentum,
            nesterov=self.nesterov,
        )

    def compile(self, model, steps_per_epoch, from_logits=True):
        """Adds the recipe's weight decay to a built model and compiles it for classification.

        Args:
            model: a built Keras model with integer-label classification outputs.
            steps_per_epoch: optimizer steps per epoch (for the learning-rate drops).
            from_logits: whether the model outputs logits (else probabilities).

        Returns:
            The model, compiled with the recipe's optimizer, sparse categorical cross-entropy
            and accuracy.
        """
        if self.weight_decay:
            add_weight_decay(model, self.weight_decay)
        model.compile(
            optimizer=self.optimizer(steps_per_epoch),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
            metrics=["accuracy"],
        )
        return model


_RECIPES = {
    # Dai et al., "Attention as Activation", ICPR 2020, and its official code: Nesterov SGD,
    # lr 0.2 dropping x0.1 at epochs 300 and 350 of 400, coupled L2 1e-4 on all parameters.
    "atac_cifar": Recipe(
        name="atac_cifar",
        epochs=400,
        batch_size=128,
        learning_rate=0.2,
        momentum=0.9,
        nesterov=True,
        weight_decay=1e-4,
        drop_fractions=(0.75, 0.875),
        reference="Dai et al., Attention as Activation, ICPR 2020 (arXiv:2007.07729)",
    ),
    # Chen et al., "AReLU", arXiv:2006.13858: SGD momentum 0.9, a fixed learning rate (the paper
    # sweeps 1e-2 to 1e-5; 1e-4 is its headline setting), no weight decay, 20 epochs.
    "arelu_mnist": Recipe(
        name="arelu_mnist",
        epochs=20,
        batch_size=128,
        learning_rate=1e-4,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        reference="Chen et al., AReLU: Attention-based Rectified Linear Unit (arXiv:2006.13858)",
    ),
}


@keras_atac_export("keras_atac.training.recipe_names")
def recipe_names():
    """The names `get_recipe` accepts."""
    return sorted(_RECIPES)


@keras_atac_export("keras_atac.training.get_recipe")
def get_recipe(name, **changes):
    """Returns a paper's training recipe, with optional changes.

    - `"atac_cifar"`: Nesterov SGD, lr 0.2, momentum 0.9, x0.1 at 75% and 87.5% of the epochs
      (epochs 300 and 350 of 400), coupled L2 weight decay 1e-4 on every trainable weight,
      batch 128.
    - `"arelu_mnist"`: SGD, momentum 0.9, fixed lr 1e-4, no weight decay, batch 128, 20 epochs.

    Args:
        name: one of `recipe_names()`.
        **changes: fields to change, e.g. `epochs=15` or `learning_rate=1e-2`.

    Example:

    >>> recipe = keras_atac.training.get_recipe("atac_cifar", epochs=15)
    >>> recipe.drop_epochs()
    (11, 13)
    >>> recipe.compile(model, steps_per_epoch=78)
    """
    if name not in _RECIPES:
        raise ValueError(
            f"Unknown recipe: name={name!r}. Known recipes: {', '.join(recipe_names())}."
        )
    recipe = dataclasses.replace(_RECIPES[name], **changes)
    checks.check_positive_number("epochs", recipe.epochs, integer=True)
    checks.check_positive_number("batch_size", recipe.batch_size, integer=True)
    checks.check_positive_number("learning_rate", recipe.learning_rate)
    checks.check_number_in_range("weight_decay", recipe.weight_decay, 0.0, float("inf"))
    return recipe


@keras_atac_export("keras_atac.training.add_weight_decay")
def add_weight_decay(model, weight_decay):
    """Adds coupled L2 weight decay to every trainable weight of a built model.

    The penalty added to the loss is

        (weight_decay / 2) * sum over all trainable weights w of sum(w**2)

    so its gradient is `weight_decay * w` for every weight, the coupled decay of SGD frameworks
    (MXNet's `wd`, PyTorch's `weight_decay`) that then goes through the momentum like any other
    gradient. It is `keras.regularizers.L2(weight_decay / 2)` (Keras's L2 is `l * sum(w**2)`) set
    as the regularizer of every trainable variable, so it covers what a layer's
    `kernel_regularizer` argument cannot reach after the model is built: biases, BatchNorm gamma
    and beta, and the weights of activation layers (ATAC's pointwise kernels and BatchNorms,
    AReLU's alpha and beta). Keras adds the penalties (`model.losses`) to the training loss on
    every backend. Non-trainable weights (BatchNorm moving statistics) get none.

    Args:
        model: a built Keras model. Its trainable weights must not have a regularizer yet.
        weight_decay: the decay `wd`, a number >= 0 (1e-4 in the ATAC recipe).

    Returns:
        The model, whose variables now carry the regularizer.

    Raises:
        ValueError: if the model is not built, `weight_decay` is negative, or a weight already
            has a regularizer (nothing is changed then).
    """
    checks.check_number_in_range("weight_decay", weight_decay, 0.0, float("inf"))
    if not model.built:
        raise ValueError(
            f"add_weight_decay needs a built model (its weights must exist). Received: model "
            f"'{model.name}' that is not built"
        )
    regularized = [v.path for v in model.trainable_weights if v.regularizer is not None]
    if regularized:
        raise ValueError(
            "Every trainable weight must be free of a regularizer before the decay is added, so "
            f"that no weight is decayed twice. Received: weights with regularizers {regularized}"
        )
    regularizer = keras.regularizers.L2(weight_decay / 2.0)
    for variable in model.trainable_weights:
        variable.regularizer = regularizer
    return model
