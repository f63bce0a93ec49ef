"""Training in reduced precision: the CIFAR ResNet with ATAC and with AReLU under the float16
and bfloat16 policies takes a few steps with finite losses on every backend."""

import keras
import numpy as np
import pytest

from keras_atac.layers import ATAC
from tests.layer_test_case import to_numpy
from tests.robustness import training

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("activation", ["atac", "arelu"])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "bfloat16"])
def test_cifar_resnet_trains_with_finite_losses(policy, activation):
    keras.config.set_dtype_policy(policy)
    model = training.compile_model(training.make_model(activation))
    # float16 gradients underflow without loss scaling; Keras adds it when compiling a
    # mixed_float16 model, and it must still be there.
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
        policy == "mixed_float16"
    )
    images, labels = training.make_data()
    # Larger inputs than the normalised images of CIFAR, to exercise float16's range.
    losses = training.fit_losses(model, images * 30.0, labels, steps=2)
    assert np.all(np.isfinite(losses)), losses
    variable_dtype = keras.DTypePolicy(policy).variable_dtype
    # ATAC computes its gate in float32 under 16-bit policies, so the gate's BatchNorms keep
    # float32 weights and statistics even where the policy's variables are bfloat16.
    gate_norms = {
        weight.path
        for layer in model.layers
        if isinstance(layer, ATAC)
        for norm in (layer.reduce_norm, layer.expand_norm)
        for weight in norm.weights
    }
    for weight in model.weights:
        expected = "float32" if weight.path in gate_norms else variable_dtype
        assert keras.backend.standardize_dtype(weight.dtype) == expected, weight.path
        assert np.all(np.isfinite(to_numpy(keras.ops.cast(weight, "float32")))), weight.path
    predictions = model.predict(images, verbose=0)
    assert keras.backend.standardize_dtype(predictions.dtype) == (
        keras.DTypePolicy(policy).compute_dtype
    )
