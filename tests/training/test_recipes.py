"""The papers' training recipes: learning-rate drops, coupled weight decay, compilation."""

import dataclasses

import keras
import numpy as np
import pytest

import keras_atac
from keras_atac import training


def small_model(activation="atac"):
    """Conv (with bias) -> BN -> activation -> pooling -> Dense: every kind of weight."""
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras_atac.layers.get(activation, name="act"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, name="head"),
        ],
        name="net",
    )


def test_recipe_names_and_values():
    assert training.recipe_names() == ["arelu_mnist", "atac_cifar"]
    atac = training.get_recipe("atac_cifar")
    assert (atac.epochs, atac.batch_size, atac.learning_rate) == (400, 128, 0.2)
    assert (atac.momentum, atac.nesterov, atac.weight_decay) == (0.9, True, 1e-4)
    arelu = training.get_recipe("arelu_mnist")
    assert (arelu.epochs, arelu.batch_size, arelu.momentum, arelu.nesterov) == (20, 128, 0.9, False)
    assert arelu.weight_decay == 0.0 and arelu.drop_fractions == ()


@pytest.mark.parametrize(
    "epochs, drops", [(400, (300, 350)), (15, (11, 13)), (8, (6, 7)), (2, (1, 1)), (1, (1, 1))]
)
def test_drops_scale_with_the_epoch_budget(epochs, drops):
    assert training.get_recipe("atac_cifar", epochs=epochs).drop_epochs() == drops


def learning_rate_at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_learning_rate_drops_at_the_first_step_of_the_drop_epochs():
    steps = 78  # 10,000 images in batches of 128, last partial batch dropped
    schedule = training.get_recipe("atac_cifar", epochs=15).learning_rate_schedule(steps)
    assert isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay)
    for step, rate in [
        (0, 0.2),
        (11 * steps - 1, 0.2),
        (11 * steps, 0.02),
        (13 * steps - 1, 0.02),
        (13 * steps, 0.002),
        (15 * steps - 1, 0.002),
    ]:
        np.testing.assert_allclose(learning_rate_at(schedule, step), rate, rtol=1e-6)


def test_coinciding_drops_multiply():
    schedule = training.get_recipe("atac_cifar", epochs=2).learning_rate_schedule(5)
    np.testing.assert_allclose(learning_rate_at(schedule, 4), 0.2, rtol=1e-6)
    np.testing.assert_allclose(learning_rate_at(schedule, 5), 0.002, rtol=1e-6)


def test_optimizers():
    atac = training.get_recipe("atac_cifar").optimizer(steps_per_epoch=10)
    assert isinstance(atac, keras.optimizers.SGD) and atac.nesterov
    assert atac.momentum == 0.9
    arelu = training.get_recipe("arelu_mnist", learning_rate=1e-2).optimizer(steps_per_epoch=10)
    assert not arelu.nesterov and arelu.momentum == 0.9
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(arelu.learning_rate)), 1e-2)


def test_weight_decay_covers_every_trainable_weight():
    model = small_model("arelu")
    training.add_weight_decay(model, 1e-4)
    trainable = model.trainable_weights
    # conv kernel+bias, BN gamma+beta, AReLU alpha+beta, head kernel+bias.
    assert len(trainable) == 8
    assert all(isinstance(v.regularizer, keras.regularizers.L2) for v in trainable)
    assert all(v.regularizer is None for v in model.non_trainable_weights)
    expected = 0.5e-4 * sum(np.sum(np.square(keras.ops.convert_to_numpy(v))) for v in trainable)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    np.testing.assert_allclose(total, expected, rtol=1e-5)


def test_gradient_of_the_decay_is_weight_decay_times_the_weight():
    """One SGD step with and without the decay, from the same weights, on the same batch.

    The two updates differ by exactly `learning_rate * weight_decay * w` for every trainable
    weight: the gradient of the penalty is `wd * w` (a large `wd` keeps float32 rounding small
    against the difference).
    """
    learning_rate, weight_decay = 0.1, 0.5
    model = small_model("atac")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 6, 3)).astype("float32")
    y = rng.integers(0, 3, size=(8,))
    initial = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    state = model.get_weights()

    def one_step():
        model.set_weights(state)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.train_on_batch(x, y)
        return [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]

    plain = one_step()
    training.add_weight_decay(model, weight_decay)
    decayed = one_step()
    paths = [v.path for v in model.trainable_weights]
    for path in ("conv/kernel", "bn/gamma", "act/reduce_kernel", "act/reduce_norm/gamma"):
        path = f"net/{path}"
        assert path in paths, paths
    for path, w0, w_plain, w_decayed in zip(paths, initial, plain, decayed):
        np.testing.assert_allclose(
            w_plain - w_decayed,
            learning_rate * weight_decay * w0,
            rtol=1e-3,
            atol=1e-6,
            err_msg=path,
        )


def test_add_weight_decay_rejects_bad_input():
    with pytest.raises(ValueError, match="weight_decay=-0.1"):
        training.add_weight_decay(small_model(), -0.1)
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="needs a built model"):
        training.add_weight_decay(unbuilt, 1e-4)
    model = small_model()
    model.get_layer("head").kernel.regularizer = keras.regularizers.L1(0.1)
    with pytest.raises(ValueError, match=r"weights with regularizers \['net/head/kernel'\]"):
        training.add_weight_decay(model, 1e-4)
    assert model.get_layer("conv").kernel.regularizer is None  # nothing was changed


def test_get_recipe_rejects_bad_input():
    with pytest.raises(ValueError, match="Unknown recipe: name='imagenet'"):
        training.get_recipe("imagenet")
    with pytest.raises(ValueError, match="epochs=0"):
        training.get_recipe("atac_cifar", epochs=0)
    with pytest.raises(ValueError, match="learning_rate=-1"):
        training.get_recipe("arelu_mnist", learning_rate=-1)
    with pytest.raises(TypeError, match="momentom"):
        training.get_recipe("arelu_mnist", momentom=0.5)


def test_compile_and_fit_log_time_and_learning_rate(tmp_path):
    recipe = training.get_recipe("atac_cifar", epochs=4)
    model = small_model("relu")
    recipe.compile(model, steps_per_epoch=2)
    assert model.get_layer("bn").gamma.regularizer is not None
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 6, 3)).astype("float32")
    y = rng.integers(0, 3, size=(8,))
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=4,
        validation_data=(x, y),
        callbacks=[training.EpochTimer(), keras.callbacks.CSVLogger(tmp_path / "log.csv")],
        verbose=0,
    )
    np.testing.assert_allclose(history.history["learning_rate"], [0.2, 0.2, 0.2, 0.002])
    assert all(seconds > 0 for seconds in history.history["epoch_seconds"])
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert {"epoch_seconds", "learning_rate", "val_accuracy"} <= set(header)
    summary = training.summarize_history(history)
    assert summary["epochs"] == 4 and 1 <= summary["best_epoch"] <= 4
    assert summary["best_accuracy"] == max(history.history["val_accuracy"])
    assert summary["final_accuracy"] == history.history["val_accuracy"][-1]


def test_recipe_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        training.get_recipe("atac_cifar").epochs = 3
