"""The contract every layer of the package meets, as a reusable pytest base class.

Subclass `LayerTestCase` in a class named `Test...`, set the class attributes, and pytest runs
every `test_*` method below for that layer on the current backend. Formula tests against an
independent NumPy implementation stay in the layer's own test module. Only public Keras API is
used (Keras's `keras.src.testing` is private).
"""

import json

import keras
import numpy as np
import pytest
from keras import ops

# The spacing of 16-bit floats just above 1.
MACHINE_EPSILON = {"float16": 2.0**-10, "bfloat16": 2.0**-7}


def parameter_count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


class LayerTestCase:
    #: The layer class under test.
    layer_cls = None
    #: Constructor arguments (data_format, if any, is set by the tests).
    init_kwargs = {}
    #: Full channels-last input shape, batch included, e.g. (3, 5, 6, 8).
    input_shape = None
    #: Exact parameter counts for `input_shape`.
    expected_trainable_params = None
    expected_non_trainable_params = 0
    #: Whether the layer takes `data_format` (has a channel axis).
    supports_data_format = True
    #: The smallest input rank (batch included) the layer accepts; lower ranks must be rejected.
    min_rank = 2
    #: Weight paths (relative to the layer) that a training step leaves unchanged by
    #: construction (a gradient or a batch statistic that is exactly zero).
    unchanged_by_training = ()
    #: Weight paths (relative to the layer) whose leading dimensions are the map's spatial size
    #: by the layer's definition (GE-θ's global gather kernel); every other weight must be
    #: per-channel or scalar.
    map_sized_weights = ()
    #: Largest input magnitude in the mixed-precision test.
    mixed_precision_input_scale = 1e4

    # -- helpers ---------------------------------------------------------------------------

    def make_layer(self, **overrides):
        return self.layer_cls(**{**self.init_kwargs, **overrides})

    def make_input(self, shape=None, scale=1.0, seed=0):
        shape = self.input_shape if shape is None else shape
        return (np.random.default_rng(seed).normal(size=shape) * scale).astype("float32")

    def channels_first_shape(self, shape):
        return (shape[0], shape[-1], *shape[1:-1])

    def make_model(self, layer, input_shape=None):
        input_shape = self.input_shape if input_shape is None else input_shape
        return keras.Sequential([keras.Input(input_shape[1:]), layer])

    # -- the contract ----------------------------------------------------------------------

    def test_config_round_trip(self):
        layer = self.make_layer()
        layer.build(self.input_shape)
        config = layer.get_config()
        revived = self.layer_cls.from_config(config)
        assert revived.get_config() == config

        serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
        revived = keras.saving.deserialize_keras_object(serialized)
        assert type(revived) is self.layer_cls
        assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(
            config, sort_keys=True
        )

    def test_parameter_counts_and_build(self):
        layer = self.make_layer()
        layer.build(self.input_shape)
        assert layer.built
        assert parameter_count(layer.trainable_weights) == self.expected_trainable_params
        assert parameter_count(layer.non_trainable_weights) == self.expected_non_trainable_params
        # Built completely in build(): calling creates no further state.
        paths = [w.path for w in layer.weights]
        layer(self.make_input(), training=True)
        assert [w.path for w in layer.weights] == paths
        # Per-channel or scalar, never per-element: no weight shape depends on the batch or
        # spatial sizes.
        other_shape = tuple(d + 3 for d in self.input_shape[:-1]) + self.input_shape[-1:]
        other = self.make_layer()
        other.build(other_shape)
        assert len(other.weights) == len(layer.weights)
        for small, large in zip(layer.weights, other.weights):
            if small.path.endswith(self.map_sized_weights):
                spatial = len(self.input_shape) - 2
                assert tuple(small.shape[:spatial]) == self.input_shape[1:-1]
                assert tuple(large.shape[:spatial]) == other_shape[1:-1]
            else:
                assert tuple(large.shape) == tuple(small.shape)

    def test_symbolic_call_with_unknown_batch_and_spatial_sizes(self):
        channels = self.input_shape[-1]
        rank = len(self.input_shape)
        inputs = keras.Input(batch_shape=(None,) * (rank - 1) + (channels,))
        layer = self.make_layer()
        outputs = layer(inputs)
        assert tuple(outputs.shape) == tuple(layer.compute_output_shape(inputs.shape))
        assert outputs.shape[0] is None
        model = keras.Model(inputs, outputs)
        # The same model runs on two batch and spatial sizes.
        for grow in (0, 2):
            shape = tuple(d + grow for d in self.input_shape[:-1]) + (channels,)
            result = model.predict(self.make_input(shape), verbose=0)
            assert result.shape == tuple(layer.compute_output_shape(shape))

    def test_compiled_predict_matches_eager_call(self):
        layer = self.make_layer()
        model = self.make_model(layer)
        x = self.make_input()
        eager = to_numpy(layer(x, training=False))
        # predict runs compiled: jax.jit on JAX, XLA on TensorFlow where supported.
        compiled = model.predict(x, verbose=0)
        np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-5)

    def test_fit_step_updates_every_weight(self):
        layer = self.make_layer()
        model = self.make_model(layer)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = self.make_input()
        y = self.make_input(model.compute_output_shape(x.shape), seed=1)
        before = [to_numpy(w).copy() for w in layer.weights]
        history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        for weight, old in zip(layer.weights, before):
            changed = not np.allclose(to_numpy(weight), old)
            fixed = weight.path.split("/", 2)[-1] in self.unchanged_by_training
            assert changed != fixed, f"{weight.path}: changed={changed} in one training step"
        # Every weight that changed in training stays fixed in evaluate and predict.
        after = [to_numpy(w).copy() for w in layer.weights]
        model.evaluate(x, y, verbose=0)
        model.predict(x, verbose=0)
        for weight, old in zip(layer.weights, after):
            np.testing.assert_array_equal(to_numpy(weight), old)

    def test_keras_save_and_load(self, tmp_path):
        model = self.make_model(self.make_layer())
        model.compile(optimizer="sgd", loss="mse")
        x = self.make_input()
        y = self.make_input(model.compute_output_shape(x.shape), seed=1)
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)  # non-initial weights
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded.layers[-1]) is self.layer_cls
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

    def corner_shapes(self):
        """`input_shape`, and the shapes with a spatial size equal to the channel count: the
        last one (W == C), where Keras's TensorFlow backend adds a channels-first bias along
        the width, and the first one (H == C)."""
        shape, channels = self.input_shape, self.input_shape[-1]
        shapes = [shape]
        if len(shape) >= 3:
            shapes.append(shape[:-2] + (channels, channels))
        if len(shape) >= 4:
            shapes.append((shape[0], channels) + shape[2:])
        return list(dict.fromkeys(shapes))

    def test_channels_first_matches_channels_last(self):
        if not self.supports_data_format:
            pytest.skip(f"{self.layer_cls.__name__} has no channel axis (no data_format)")
        for shape in self.corner_shapes():
            last = self.make_layer(data_format="channels_last")
            first = self.make_layer(data_format="channels_first")
            last.build(shape)
            first.build(self.channels_first_shape(shape))
            # Biases and offsets start at zero, which would hide one added along a wrong axis.
            rng = np.random.default_rng(0)
            for weight in last.weights:
                if weight.path.endswith(("bias", "offset", "beta")):
                    weight.assign(rng.normal(size=tuple(weight.shape)).astype("float32"))
            first.set_weights(last.get_weights())
            x = self.make_input(shape)
            x_first = np.moveaxis(x, -1, 1)
            for training in (False, True):
                expected = np.moveaxis(to_numpy(last(x, training=training)), -1, 1)
                actual = to_numpy(first(x_first, training=training))
                np.testing.assert_allclose(
                    actual, expected, rtol=1e-5, atol=1e-5, err_msg=f"shape={shape}"
                )

    def test_explicit_data_format_ignores_the_global_format(self, global_channels_first):
        """A channels-last layer under a global channels-first `image_data_format()` computes
        what it computes under the default format (a sublayer or op that read the global
        format, such as `ops.image.resize` without `data_format`, would not)."""
        kwargs = {"data_format": "channels_last"} if self.supports_data_format else {}
        layer = self.make_layer(**kwargs)
        layer.build(self.input_shape)
        keras.config.set_image_data_format("channels_last")
        reference = self.make_layer(**kwargs)
        reference.build(self.input_shape)
        reference.set_weights(layer.get_weights())
        x = self.make_input()
        for training in (False, True):
            keras.config.set_image_data_format("channels_last")
            expected = to_numpy(reference(x, training=training))
            keras.config.set_image_data_format("channels_first")
            actual = to_numpy(layer(x, training=training))
            np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)

    @pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
    def test_mixed_precision(self, policy):
        """Finite outputs in the compute dtype, float32 weights, and the float32 computation
        with the same weights, on the same (16-bit representable) inputs, up to the rounding
        of the output to the compute dtype: a gate or polynomial silently computed at 16 bits
        (a kernel read autocast, a sum overflowing float16) fails this."""
        layer = self.make_layer(dtype=policy)
        reference = self.make_layer(dtype="float32")
        compute_dtype = keras.DTypePolicy(policy).compute_dtype
        x = np.random.default_rng(0).uniform(
            -self.mixed_precision_input_scale, self.mixed_precision_input_scale, self.input_shape
        )
        # The inputs the layer sees after its cast to the compute dtype.
        x = to_numpy(ops.cast(ops.cast(x.astype("float32"), compute_dtype), "float32"))
        layer.build(x.shape)
        reference.build(x.shape)
        reference.set_weights(layer.get_weights())
        # Two roundings (the gate's cast and the product) of a 16-bit float each half an ulp.
        tolerance = 2 * MACHINE_EPSILON[compute_dtype]
        for training in (False, True):
            outputs = layer(x, training=training)
            assert keras.backend.standardize_dtype(outputs.dtype) == compute_dtype
            values = to_numpy(ops.cast(outputs, "float32"))
            assert np.all(np.isfinite(values)), f"non-finite outputs (training={training})"
            expected = to_numpy(reference(x, training=training))
            np.testing.assert_allclose(
                values,
                expected,
                rtol=tolerance,
                atol=tolerance,
                err_msg=f"{policy} differs from float32 (training={training})",
            )
        for weight in layer.weights:
            assert keras.backend.standardize_dtype(weight.dtype) == "float32", weight.path

    def test_rejects_low_rank_input(self):
        if self.min_rank <= 1:
            pytest.skip(f"{self.layer_cls.__name__} accepts inputs of any rank")
        layer = self.make_layer()
        shape = self.input_shape[: self.min_rank - 2] + (self.input_shape[-1],)
        with pytest.raises(ValueError, match="rank"):
            layer.build(shape)
        assert not layer.built and not layer.weights

    def test_rejects_undefined_channels(self):
        if not self.supports_data_format:
            pytest.skip(f"{self.layer_cls.__name__} has no channel axis")
        layer = self.make_layer()
        with pytest.raises(ValueError, match="channel"):
            layer.build(self.input_shape[:-1] + (None,))
        assert not layer.built and not layer.weights

    def test_rejects_unknown_data_format(self):
        if not self.supports_data_format:
            pytest.skip(f"{self.layer_cls.__name__} has no data_format argument")
        with pytest.raises(ValueError, match="data_format='NHWC'"):
            self.make_layer(data_format="NHWC")
