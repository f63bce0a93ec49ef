"""GAttANet: global attention agreement (VanRullen and Alamia, 2021).

Its toy CNN is `keras_atac.models.toy_cnn.gattanet_toy_cnn`.
"""

import re

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import input_checks, layer_utils
from keras_atac.models import backbones
from keras_atac.utils import checks

KEY_SOURCES = ("current", "previous")
AGREEMENTS = ("dot", "cosine")
# Default taps: block outputs of the package's ResNets (`backbones.BLOCK_OUTPUT`), else the
# activations of the toy CNN (and of ConvMNIST, which follows the same naming).
_ACTIVATION = re.compile(r"block\d+_act|dense_act")


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
    - BatchNorm across passes (ours): in training, every pass but the last runs in inference
      mode (BatchNorm normalises with its moving statistics and updates nothing, dropout is
      off); the last pass is the training pass (batch statistics, moving-statistics updates,
      dropout). The moving statistics thus describe the last pass, and the earlier passes
      compute the same function in training and at inference. The alternative, every pass an
      ordinary training-mode call, averages the moving statistics over passes whose
      activations differ once the alphas grow: at inference neither pass then matches what
      it learned (on `cifar_resnet(8)` with the cosine agreement: 0.72 training accuracy,
      0.28 test accuracy after 13 of 15 epochs).
    - Initialisation of the projections: Keras's `glorot_uniform` (the paper's is not known),
      drawn for every query and key kernel on its own (each gets a copy of
      `kernel_initializer`, as the sublayers of Keras's `MultiHeadAttention` do).
    - `agreement="cosine"` (ours) divides each agreement by the norms of its key and of the
      query, `g = k . q / max(|k| |q|, 1e-6)`, the cosine in [-1, 1] (0 where a position is
      silent). With the paper's raw dot product (`"dot"`, the default) `g` grows with the
      square of the activations: on the unnormalised block outputs of `cifar_resnet(8)` it
      takes either sign and magnitudes up to 15 to 160 at initialisation (64 CIFAR-10
      training images, three seeds), and at the ATAC recipe's learning rate of 0.2 the
      network collapses: in the CIFAR-10 comparison of `docs/results` the accuracy is chance
      from the first epoch on, where the cosine agreement reaches 0.69. The cosine agreement
      trains stably there; the dot product may suit adaptive optimizers or small learning
      rates (not tried).

    The passes are functional models built from the backbone's own layers (weights are shared
    with `self.backbone`, which stays the plain single-pass network); the model saves to
    `.keras` files through its config (the backbone's config and these arguments).

    Args:
        backbone: a built functional (or sequential) `keras.Model`.
        tapped_layers: names of the layers of `backbone` whose outputs take part: outputs of
            rank 2 (dense) or rank >= 3 (convolutional, with `data_format`). `None` takes
            `GAttANet.default_layers(backbone)`.
        key_dim: `d`, the size of the keys and queries (16 in the paper's toy model).
        iterations: the number of passes, an integer >= 1; 1 is the backbone itself (no
            attention weights are created), 2 is the paper's.
        keys_from: `"current"` or `"previous"`, the pass the keys come from (see above).
        agreement: `"dot"` (the paper's `k . q`) or `"cosine"` (`k . q / (|k| |q|)`, ours).
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
        agreement="dot",
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
        backbones.check_backbone(backbone)
        if tapped_layers is None:
            tapped_layers = self.default_layers(backbone)
        tapped_layers, data_format = _check_arguments(
            backbone, tapped_layers, key_dim, iterations, keys_from, agreement, data_format
        )
        weight_arguments = {
            "kernel_initializer": keras.initializers.get(kernel_initializer),
            "kernel_regularizer": keras.regularizers.get(kernel_regularizer),
            "kernel_constraint": keras.constraints.get(kernel_constraint),
            "alpha_initializer": keras.initializers.get(alpha_initializer),
            "alpha_regularizer": keras.regularizers.get(alpha_regularizer),
            "alpha_constraint": keras.constraints.get(alpha_constraint),
        }

        super().__init__(name=name or f"{backbone.name}_gattanet", **kwargs)
        self.backbone = backbone
        self.tapped_layers = tapped_layers
        self.key_dim = key_dim
        self.iterations = iterations
        self.keys_from = keys_from
        self.agreement = agreement
        for argument, value in weight_arguments.items():
            setattr(self, argument, value)
        self.data_format = data_format
        if iterations > 1:
            self._build_attention()
        # The backbone is built and so is every layer above: so is the model.
        self.built = True

    def _build_attention(self):
        """Creates the queries, the agreements and the functional models of the passes."""

        def projection():
            return {
                "key_dim": self.key_dim,
                **_weight_arguments(self, "kernel"),
                "data_format": self.data_format,
            }

        def modulation():
            return {"agreement": self.agreement, **_weight_arguments(self, "alpha")}

        # Each tapped layer's projections compute in that layer's dtype policy.
        tapped = {name: self.backbone.get_layer(name) for name in self.tapped_layers}
        self.queries = {
            name: _Query(name=f"{name}_query", dtype=layer.dtype_policy, **projection())
            for name, layer in tapped.items()
        }
        for name, layer in tapped.items():
            self.queries[name].build(layer.output.shape)
        self.agreements = {
            name: _Agreement(
                name=f"{name}_agreement", dtype=layer.dtype_policy, **projection(), **modulation()
            )
            for name, layer in tapped.items()
        }
        # Pass 1: the plain backbone up to the tapped layers. Later passes: the backbone with
        # every tapped layer modulated (the agreements are built here).
        self._first_pass = keras.Model(
            self.backbone.input, [layer.output for layer in tapped.values()]
        )
        self._modulated_pass = _modulated_pass(
            self.backbone,
            self.agreements,
            self.key_dim,
            previous_keys=self.keys_from == "previous",
        )

    def call(self, inputs, training=None):
        if self.iterations == 1:
            return self.backbone(inputs, training=training)
        # Every pass but the last runs in inference mode (see the class docstring).
        activations = self._first_pass(inputs, training=False)
        for iteration in range(2, self.iterations + 1):
            queries = [
                ops.cast(query(activation), "float32")
                for query, activation in zip(self.queries.values(), activations)
            ]
            query = ops.mean(ops.stack(queries), axis=0)
            previous = activations if self.keys_from == "previous" else []
            outputs, activations = self._modulated_pass(
                [inputs, query, previous],
                training=training if iteration == self.iterations else False,
            )
        return outputs

    @staticmethod
    def default_layers(backbone):
        """The default taps: every block output of the package's ResNets (`cifar_resnet`,
        `resnet50_v1b`: the layers `f"stage{s}_block{i}_out"`), or else every activation layer
        `f"block{k}_act"` and `"dense_act"` (`gattanet_toy_cnn`, `conv_mnist`).

        Raises:
            ValueError: if `backbone` has none of these layers.
        """
        for pattern in (backbones.BLOCK_OUTPUT, _ACTIVATION):
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
            "agreement": self.agreement,
            **layer_utils.weight_arguments_config(self, "kernel", "alpha"),
            "data_format": self.data_format,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**backbones.revived_config(config))


def _check_arguments(
    backbone, tapped_layers, key_dim, iterations, keys_from, agreement, data_format
):
    """Checks the arguments of `GAttANet` other than the weight arguments, before anything is
    built; returns the tapped layers as a tuple and the standardized data format."""
    tapped_layers = _check_tapped_layers(backbone, tapped_layers)
    checks.check_positive_number("key_dim", key_dim, integer=True)
    checks.check_positive_number("iterations", iterations, integer=True)
    checks.check_choice("keys_from", keys_from, KEY_SOURCES)
    checks.check_choice("agreement", agreement, AGREEMENTS)
    return tapped_layers, checks.standardize_data_format(data_format)


def _modulated_pass(backbone, agreements, key_dim, previous_keys):
    """The functional model of one modulated pass through the backbone's own layers.

    Inputs: `[backbone inputs, global query, previous activations]` (the activations of the
    tapped layers in the pass before, used for the keys if `previous_keys`, else an empty
    list). Outputs: `[backbone outputs, activations]`, the activations of the tapped layers
    before their modulation.
    """
    inputs = keras.tree.map_structure(
        lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype), backbone.input
    )
    query = keras.Input((key_dim,), name="global_query")
    previous = [
        keras.Input(batch_shape=backbone.get_layer(name).output.shape, name=f"{name}_previous")
        for name in agreements
    ]
    previous = previous if previous_keys else []
    activations = {}

    def call(layer, *args, **kwargs):
        output = layer(*args, **kwargs)
        if layer.name in agreements:
            if layer.name in activations:
                raise ValueError(
                    "A tapped layer must be called once in the backbone, but layer "
                    f"'{layer.name}' is shared between several calls. Received: "
                    f"tapped_layers={tuple(agreements)!r}"
                )
            activations[layer.name] = output
            keys = previous[list(agreements).index(layer.name)] if previous else output
            output = agreements[layer.name]([output, keys, query])
        return output

    # A functional view of the backbone that also takes the query and the previous
    # activations: its clone (with the identity as clone function, i.e. the backbone's own
    # layers; cloning a sequential model takes no `call_function`) can route them to the
    # tapped layers.
    view = keras.Model([backbone.input, query, previous], backbone.output)
    clone = keras.models.clone_model(
        view,
        input_tensors=[inputs, query, previous],
        clone_function=lambda layer: layer,
        call_function=call,
    )
    return keras.Model(
        [inputs, query, previous], [clone.output, [activations[name] for name in agreements]]
    )


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
        output = backbones.tapped_output(backbone, name, "tapped_layers")
        if not isinstance(output, keras.KerasTensor) or len(output.shape) < 2:
            raise ValueError(
                f"A tapped layer must output one tensor of rank >= 2 (batch axis included). "
                f"Received: layer {name!r} with output {output!r}"
            )
    return tuple(tapped_layers)


def _weight_arguments(model, kind):
    """The initializer, regularizer and constraint of `kind` for one sublayer: the initializer
    a copy made from its config, as Keras's `MultiHeadAttention` gives each of its sublayers.

    A Keras initializer without a seed fixes one when it is created, so one object shared by
    the sublayers gave every query kernel, and every key kernel of the same shape, the same
    initial values: with the default `"glorot_uniform"`, W_q and W_k of each tapped layer were
    equal. A copy of an unseeded initializer draws a seed of its own (from Keras's global seed,
    so seeded runs stay reproducible); a seeded one keeps its seed, and its values, as Keras's
    layers do. A plain function is passed on as it is.
    """
    initializer = getattr(model, f"{kind}_initializer")
    if isinstance(initializer, keras.initializers.Initializer):
        initializer = initializer.__class__.from_config(initializer.get_config())
    return {
        f"{kind}_initializer": initializer,
        f"{kind}_regularizer": getattr(model, f"{kind}_regularizer"),
        f"{kind}_constraint": getattr(model, f"{kind}_constraint"),
    }


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
        layer_utils.set_weight_arguments(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        self.data_format = checks.standardize_data_format(data_format)

    def _build_kernel(self, name, input_shape):
        channels = input_checks.check_channels(self, input_shape, self.data_format)
        self._rank = len(input_shape)
        self._axis = checks.channel_axis(self.data_format)
        self._spatial_axes = checks.spatial_axes(self._rank, self.data_format)
        return self.add_weight(
            name=name,
            shape=(channels, self.key_dim),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            # Read at full precision: the projections are computed in float32.
            autocast=False,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "key_dim": self.key_dim,
                **layer_utils.weight_arguments_config(self, "kernel"),
                "data_format": self.data_format,
            }
        )
        return config


class _Query(_Projection):
    """A tapped layer's query: `mean over positions of W_q x`, shape (batch, key_dim)."""

    def build(self, input_shape):
        self.kernel = self._build_kernel("query_kernel", input_shape)

    def call(self, inputs):
        # In float32, as the package's gates: sums of raw pixels overflow float16.
        inputs = ops.cast(inputs, "float32")
        kernel = ops.cast(self.kernel, "float32")
        if self._rank == 2:
            # Units are the positions: mean_c x_c W_q[c].
            return ops.matmul(inputs, kernel) / ops.cast(ops.shape(kernel)[0], "float32")
        return ops.matmul(ops.mean(inputs, axis=self._spatial_axes), kernel)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.key_dim)


class _Agreement(_Projection):
    """Modulates a tapped layer: `x * (1 + alpha * g)`, `g = (W_k keys) . query` (or its cosine).

    Called on `[x, keys, query]`: the activation to modulate, the activation the keys come
    from (the same tensor, or the one of the pass before), and the global query.
    """

    def __init__(
        self,
        agreement="dot",
        alpha_initializer="zeros",
        alpha_regularizer=None,
        alpha_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.agreement = agreement
        layer_utils.set_weight_arguments(
            self, "alpha", alpha_initializer, alpha_regularizer, alpha_constraint
        )

    def build(self, input_shape):
        self.kernel = self._build_kernel("key_kernel", input_shape[0])
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
            autocast=False,
        )

    def call(self, inputs):
        x, keys, query = inputs
        # The agreement in float32, as the package's gates: under mixed_float16 the products
        # k . q (and the cosine's norms) of inputs such as raw 0-255 pixels overflow float16.
        keys, query = ops.cast(keys, "float32"), ops.cast(query, "float32")
        kernel = ops.cast(self.kernel, "float32")
        if self._rank == 2:
            # Unit c's key is its activation times its own vector: (batch, units, key_dim).
            keys = keys[:, :, None] * kernel
        else:
            keys = ops.matmul(ops.moveaxis(keys, self._axis, -1), kernel)
        query = ops.reshape(query, (-1,) + (1,) * (len(keys.shape) - 2) + (self.key_dim,))
        agreement = ops.sum(keys * query, axis=-1)
        if self.agreement == "cosine":
            norms = ops.norm(keys, axis=-1) * ops.norm(query, axis=-1)
            agreement = agreement / ops.maximum(norms, 1e-6)
        if self._rank > 2:
            agreement = ops.expand_dims(agreement, self._axis)
        alpha = ops.cast(ops.convert_to_tensor(self.alpha), "float32")
        return x * ops.cast(1.0 + alpha * agreement, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "agreement": self.agreement,
                **layer_utils.weight_arguments_config(self, "alpha"),
            }
        )
        return config
