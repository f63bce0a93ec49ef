"""GAttANet: global attention agreement (VanRullen and Alamia, 2021), and its toy CNN."""

import re

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks
from keras_atac.models import model_utils

KEY_SOURCES = ("current", "previous")
# Default taps: block outputs of the package's ResNets, else the activations of the toy CNN
# (and of ConvMNIST, which follows the same naming).
_BLOCK_OUTPUT = re.compile(r"stage\d+_block\d+_out")
_ACTIVATION = re.compile(r"block\d+_act|dense_act")

# The toy CNN: (filters of the three 3x3 convolutions), units of the hidden dense layer.
TOY_FILTERS = (32, 64, 128)
TOY_UNITS = 256


@keras_atac_export("keras_atac.models.GAttANet")
class GAttANet(keras.Model):
    """Global attention agreement: a network-wide query modulates every tapped layer.

    Every tapped layer `l` (with `C_l` channels) projects its activation `X_l` to a key and a
    query of `key_dim = d` dimensions at every position, by 1x1 projections without bias. The
    queries are averaged over the positions of each layer and then over the layers into one
    global query per example; on the next pass through the same network, the agreement of each
    key with the global query scales the activations:

        q_l      = mean over positions of (W_q^l X_l)         pass t - 1
        q        = mean over layers of q_l
        g_l      = (W_k^l X_l) . q                           one value per position
        X_l     <- X_l * (1 + alpha_l * g_l)                  pass t

    `alpha_l` is one learned scalar per layer, initialised to 0, so the untrained model computes
    exactly the backbone. With `iterations = T` the network runs `T` times with shared weights:
    pass 1 is the plain backbone and only computes the first global query; every later pass is
    modulated by the query of the pass before and computes the next one. The model outputs the
    last pass. For a dense layer (rank 2) the units are the positions: unit `c` has its own
    key and query vectors `W_k[c]`, `W_q[c]` scaled by its activation (`k_c = x_c W_k[c]`), so
    `q_l = mean_c x_c W_q[c]` and `g_c = x_c W_k[c] . q`.

    Parameters: `2 * d * sum_l C_l` projection weights plus one `alpha` per tapped layer; the
    backbone's are shared. Inference runs pass 1 up to the last tapped layer, then the full
    network again: about twice the backbone's cost.

    What REFERENCE (section 5) leaves open, and what is ours:

    - Keys of pass `t`: from the activations of pass `t` itself, before their modulation
      (`keys_from="current"`, our default: every pass, each layer produces its key and query
      from its own activation, and is modulated by the global query of the pass before), or
      from pass `t - 1`, so that the whole attention map is fixed before the pass begins
      (`keys_from="previous"`). Queries always come from a layer's activation before its
      modulation.
    - BatchNorm across passes: every pass is an ordinary call of the same layers. In training
      each pass normalises with its own batch statistics and updates the moving statistics
      (so they average over the passes); at inference every pass uses the moving statistics.
      Dropout draws a new mask in every pass.
    - Initialisation of the projections: Keras's `glorot_uniform` (the paper's is not known).

    The result is a functional model built from the backbone's own layers (weights are shared
    with `self.backbone`, which stays the plain single-pass network) and saves to `.keras`
    files through its config (the backbone's config and these arguments).

    Args:
        backbone: a built functional (or sequential) `keras.Model`.
        tapped_layers: names of the layers of `backbone` whose outputs take part: outputs of
            rank 2 (dense) or rank >= 3 (convolutional, with `data_format`). `None` takes
            `GAttANet.default_layers(backbone)`.
        key_dim: `d`, the size of the keys and queries (16 in the paper's toy model).
        iterations: the number of passes, an integer >= 1; 1 is the backbone itself (no
            attention weights are created), 2 is the paper's.
        keys_from: `"current"` or `"previous"`, the pass the keys come from (see above).
        kernel_initializer: initializer of the key and query projections.
        kernel_regularizer: optional regularizer of the key and query projections.
        kernel_constraint: optional constraint of the key and query projections.
        alpha_initializer: initializer of the `alpha`s (`"zeros"`, the paper's).
        alpha_regularizer: optional regularizer of the `alpha`s.
        alpha_constraint: optional constraint of the `alpha`s.
        data_format: the data format of the convolutional feature maps, `"channels_last"` or
            `"channels_first"`; defaults to `keras.config.image_data_format()`.
        name: the model's name; defaults to `f"{backbone.name}_gattanet"`.

    Example:

    >>> model = keras_atac.models.GAttANet(keras_atac.models.gattanet_toy_cnn())
    >>> model = keras_atac.models.GAttANet(keras_atac.models.cifar_resnet(20))  # block outputs

    Reference:
        Rufin VanRullen, Andrea Alamia. "GAttANet: Global attention agreement for
        convolutional neural networks". ICANN 2021, arXiv:2104.05575.
        https://arxiv.org/abs/2104.05575
    """

    def __init__(
        self,
        backbone,
        tapped_layers=None,
        key_dim=16,
        iterations=2,
        keys_from="current",
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        kernel_constraint=None,
        alpha_initializer="zeros",
        alpha_regularizer=None,
        alpha_constraint=None,
        data_format=None,
        name=None,
        **kwargs,
    ):
        if not isinstance(backbone, keras.Model) or not getattr(backbone, "inputs", None):
            raise ValueError(
                "`backbone` must be a built functional or sequential keras.Model (with symbolic "
                f"inputs, so that its layers can be tapped). Received: backbone={backbone!r}"
            )
        if tapped_layers is None:
            tapped_layers = self.default_layers(backbone)
        tapped_layers = _check_tapped_layers(backbone, tapped_layers)
        input_checks.check_positive_number("key_dim", key_dim, integer=True)
        input_checks.check_positive_number("iterations", iterations, integer=True)
        input_checks.check_choice("keys_from", keys_from, KEY_SOURCES)
        data_format = input_checks.standardize_data_format(data_format)
        settings = {
            "key_dim": key_dim,
            "kernel_initializer": keras.initializers.get(kernel_initializer),
            "kernel_regularizer": keras.regularizers.get(kernel_regularizer),
            "kernel_constraint": keras.constraints.get(kernel_constraint),
            "data_format": data_format,
        }
        alpha_settings = {
            "alpha_initializer": keras.initializers.get(alpha_initializer),
            "alpha_regularizer": keras.regularizers.get(alpha_regularizer),
            "alpha_constraint": keras.constraints.get(alpha_constraint),
        }

        inputs = keras.tree.map_structure(
            lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype), backbone.input
        )
        outputs, activations = _run_pass(backbone, inputs, tapped_layers)
        if iterations > 1:
            # Each tapped layer's projections compute in that layer's dtype policy.
            policies = {name: backbone.get_layer(name).dtype_policy for name in tapped_layers}
            queries = {
                name: _Query(name=f"{name}_query", dtype=policies[name], **settings)
                for name in tapped_layers
            }
            agreements = {
                name: _Agreement(
                    name=f"{name}_agreement", dtype=policies[name], **settings, **alpha_settings
                )
                for name in tapped_layers
            }
        for iteration in range(2, iterations + 1):
            query = [queries[name](activations[name]) for name in tapped_layers]
            if len(query) > 1:
                query = keras.layers.Average(name=f"global_query{iteration - 1}")(query)
            else:
                query = query[0]
            previous = activations

            def modulate(name, activation, query=query, previous=previous):
                keys = activation if keys_from == "current" else previous[name]
                return agreements[name]([activation, keys, query])

            outputs, activations = _run_pass(backbone, inputs, tapped_layers, modulate)
        super().__init__(inputs, outputs, name=name or f"{backbone.name}_gattanet", **kwargs)

        self.backbone = backbone
        self.tapped_layers = tapped_layers
        self.key_dim = key_dim
        self.iterations = iterations
        self.keys_from = keys_from
        self.kernel_initializer = settings["kernel_initializer"]
        self.kernel_regularizer = settings["kernel_regularizer"]
        self.kernel_constraint = settings["kernel_constraint"]
        self.alpha_initializer = alpha_settings["alpha_initializer"]
        self.alpha_regularizer = alpha_settings["alpha_regularizer"]
        self.alpha_constraint = alpha_settings["alpha_constraint"]
        self.data_format = data_format

    @staticmethod
    def default_layers(backbone):
        """The default taps: every block output of the package's ResNets (`cifar_resnet`,
        `resnet50_v1b`: the layers `f"stage{s}_block{i}_out"`), or else every activation layer
        `f"block{k}_act"` and `"dense_act"` (`gattanet_toy_cnn`, `conv_mnist`).

        Raises:
            ValueError: if `backbone` has none of these layers.
        """
        for pattern in (_BLOCK_OUTPUT, _ACTIVATION):
            names = tuple(layer.name for layer in backbone.layers if pattern.fullmatch(layer.name))
            if names:
                return names
        raise ValueError(
            "GAttANet has default taps only for the package's networks (block outputs "
            "'stage{s}_block{i}_out', or activations 'block{k}_act' and 'dense_act'); pass "
            f"`tapped_layers` explicitly. Received: backbone '{backbone.name}'"
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "tapped_layers": list(self.tapped_layers),
            "key_dim": self.key_dim,
            "iterations": self.iterations,
            "keys_from": self.keys_from,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": keras.regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": keras.constraints.serialize(self.alpha_constraint),
            "data_format": self.data_format,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def _run_pass(backbone, inputs, tapped_layers, modulate=None):
    """Runs the backbone's layers on `inputs` once, symbolically.

    Returns the outputs and the tapped layers' activations (before modulation); with
    `modulate(name, activation)`, a tapped layer's output is replaced by its result.
    """
    activations = {}

    def call(layer, *args, **kwargs):
        output = layer(*args, **kwargs)
        if layer.name in tapped_layers:
            if layer.name in activations:
                raise ValueError(
                    f"A tapped layer must be called once in the backbone, but layer "
                    f"'{layer.name}' is shared between several calls. Received: "
                    f"tapped_layers={tapped_layers!r}"
                )
            activations[layer.name] = output
            if modulate is not None:
                output = modulate(layer.name, output)
        return output

    # With the identity as clone function, cloning re-runs the backbone's own layers (as a
    # functional model: cloning a sequential one takes no `call_function`).
    clone = keras.models.clone_model(
        keras.Model(backbone.input, backbone.output),
        input_tensors=inputs,
        clone_function=lambda layer: layer,
        call_function=call,
    )
    return clone.output, activations


def _check_tapped_layers(backbone, tapped_layers):
    """Returns `tapped_layers` as a tuple of distinct layer names of `backbone`, checked."""
    if (
        isinstance(tapped_layers, str)
        or not isinstance(tapped_layers, (list, tuple))
        or not tapped_layers
        or not all(isinstance(name, str) for name in tapped_layers)
        or len(set(tapped_layers)) != len(tapped_layers)
    ):
        raise ValueError(
            "`tapped_layers` must be a non-empty list of distinct layer names. "
            f"Received: tapped_layers={tapped_layers!r}"
        )
    for name in tapped_layers:
        try:
            layer = backbone.get_layer(name)
        except ValueError:
            raise ValueError(
                f"`tapped_layers` names a layer that backbone '{backbone.name}' does not have. "
                f"Received: {name!r}"
            ) from None
        if not isinstance(layer.output, keras.KerasTensor) or len(layer.output.shape) < 2:
            raise ValueError(
                f"A tapped layer must output one tensor of rank >= 2 (batch axis included). "
                f"Received: layer {name!r} with output {layer.output!r}"
            )
    return tuple(tapped_layers)


class _Projection(keras.layers.Layer):
    """The key or query projection of one tapped layer: a (channels, key_dim) kernel."""

    def __init__(
        self,
        key_dim,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        kernel_constraint=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.key_dim = key_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.data_format = input_checks.standardize_data_format(data_format)

    def _build_kernel(self, name, input_shape):
        channels = input_checks.check_channels(self, input_shape, self.data_format)
        self._rank = len(input_shape)
        self._axis = input_checks.channel_axis(self.data_format)
        self._spatial_axes = input_checks.spatial_axes(self._rank, self.data_format)
        return self.add_weight(
            name=name,
            shape=(channels, self.key_dim),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "key_dim": self.key_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
                "data_format": self.data_format,
            }
        )
        return config


class _Query(_Projection):
    """A tapped layer's query: `mean over positions of W_q x`, shape (batch, key_dim)."""

    def build(self, input_shape):
        self.kernel = self._build_kernel("query_kernel", input_shape)

    def call(self, inputs):
        kernel = ops.cast(self.kernel, inputs.dtype)
        if self._rank == 2:
            # Units are the positions: mean_c x_c W_q[c].
            return ops.matmul(inputs, kernel) / ops.cast(ops.shape(kernel)[0], inputs.dtype)
        return ops.matmul(ops.mean(inputs, axis=self._spatial_axes), kernel)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.key_dim)


class _Agreement(_Projection):
    """Modulates a tapped layer: `x * (1 + alpha * (W_k keys) . query)`.

    Called on `[x, keys, query]`: the activation to modulate, the activation the keys come
    from (the same tensor, or the one of the pass before), and the global query.
    """

    def __init__(
        self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)

    def build(self, input_shape):
        self.kernel = self._build_kernel("key_kernel", input_shape[0])
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )

    def call(self, inputs):
        x, keys, query = inputs
        # (W_k k) . q = k . (W_k^T q): one weight per channel and example, then a sum over
        # channels at every position (or, for dense layers, one agreement per unit).
        weights = ops.matmul(query, ops.transpose(ops.cast(self.kernel, query.dtype)))
        if self._rank == 2:
            agreement = keys * weights
        else:
            for axis in self._spatial_axes:
                weights = ops.expand_dims(weights, axis)
            agreement = ops.sum(keys * weights, axis=self._axis, keepdims=True)
        alpha = ops.cast(ops.convert_to_tensor(self.alpha), x.dtype)
        return x * (1.0 + alpha * agreement)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": keras.regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": keras.constraints.serialize(self.alpha_constraint),
            }
        )
        return config


@keras_atac_export("keras_atac.models.gattanet_toy_cnn")
def gattanet_toy_cnn(
    num_classes=10,
    activation="relu",
    input_shape=None,
    data_format=None,
    classifier_activation=None,
    name="gattanet_toy_cnn",
):
    """A 5-layer CNN like the toy model of the GAttANet paper (CIFAR-10, about 0.83 -> 0.85).

    REFERENCE describes the paper's toy model only as a 5-layer CNN with `d = 16` on CIFAR-10;
    the widths and the block structure here are ours. Five weight layers:

        block k (k = 1, 2, 3):  x = MaxPool2x2(ACT(BN(Conv3x3(filters_k, "same")(x))))
        head:                   x = ACT(Dense(256)(Flatten(x))); logits = Dense(classes)(x)

    with 32, 64 and 128 filters. `GAttANet.default_layers` taps the four activations (three
    convolutional, one dense), i.e. every hidden layer.

    Layer names: `f"block{k}_conv"`, `_bn`, `_act`, `_pool` for k = 1, 2, 3, then `"flatten"`,
    `"dense"`, `"dense_act"` and `"predictions"`.

    Args:
        num_classes: the number of classes of the head.
        activation: the hidden activation, anything `keras_atac.layers.get` accepts.
        input_shape: the image shape without batch axis; defaults to `(32, 32, 3)`, or
            `(3, 32, 32)` for channels-first. The spatial sizes must be defined (the head is
            dense over the flattened features).
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        classifier_activation: activation of the head; `None` (default) outputs logits.
        name: the model's name.

    Returns:
        A functional `keras.Model`.

    Reference:
        Rufin VanRullen, Andrea Alamia. "GAttANet: Global attention agreement for
        convolutional neural networks". ICANN 2021, arXiv:2104.05575.
    """
    model_utils.check_activation(activation)
    model_utils.check_head(num_classes, classifier_activation)
    data_format = input_checks.standardize_data_format(data_format)
    shape = model_utils.image_input_shape(input_shape, data_format, (32, 32, 3))
    if None in [shape[axis - 1] for axis in input_checks.spatial_axes(4, data_format)]:
        raise ValueError(
            "gattanet_toy_cnn needs defined spatial sizes: its head is dense over the flattened "
            f"features. Received: input_shape={input_shape!r}"
        )
    axis = input_checks.channel_axis(data_format)

    inputs = keras.Input(shape)
    x = inputs
    for index, filters in enumerate(TOY_FILTERS, start=1):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", data_format=data_format, name=f"block{index}_conv"
        )(x)
        x = keras.layers.BatchNormalization(axis=axis, name=f"block{index}_bn")(x)
        x = model_utils.activation_layer(activation, data_format, f"block{index}_act")(x)
        x = keras.layers.MaxPooling2D(data_format=data_format, name=f"block{index}_pool")(x)
    x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
    x = keras.layers.Dense(TOY_UNITS, name="dense")(x)
    x = model_utils.activation_layer(activation, data_format, "dense_act")(x)
    outputs = keras.layers.Dense(num_classes, activation=classifier_activation, name="predictions")(
        x
    )
    return keras.Model(inputs, outputs, name=name)
