"""ATAC: attention as activation (Dai, Oehmcke, Gieseke, Wu and Barnard, ICPR 2020)."""

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.layers import gating, input_checks, layer_utils, recomputation
from keras_atac.layers.registry import register
from keras_atac.utils import checks

CONTEXTS = ("local", "global")
# The activation between the two pointwise maps: the paper's ReLU, or none (an ablation of the
# official code). Folding and the MAC counter know these two.
INNER_ACTIVATIONS = ("relu", None)


def inner_activation_argument(inner_activation, use_inner_relu=None):
    """Checks `inner_activation`; `use_inner_relu`, the argument it replaced, still reads
    old configs (`True` is `"relu"`, `False` is `None`)."""
    if use_inner_relu is not None:
        checks.check_bool("use_inner_relu", use_inner_relu)
        from_flag = "relu" if use_inner_relu else None
        if inner_activation not in ("relu", from_flag):
            raise ValueError(
                "`use_inner_relu` (the older name of `inner_activation`) contradicts "
                f"`inner_activation`. Received: use_inner_relu={use_inner_relu!r}, "
                f"inner_activation={inner_activation!r}"
            )
        inner_activation = from_flag
    if inner_activation not in INNER_ACTIVATIONS:
        raise ValueError(
            f"`inner_activation` must be one of {INNER_ACTIVATIONS}. "
            f"Received: inner_activation={inner_activation!r}"
        )
    return inner_activation


@register("atac", aliases=("atac_local",))
@register("atac_global", context="global")
@keras_atac_export("keras_atac.layers.ATAC")
class ATAC(gating.GatingLayer):
    """Attention as activation: a local channel-attention gate used in place of ReLU.

    An activation function and an attention gate both compute `x * G(x)`. ATAC uses as `G` a
    channel attention computed from the point-wise, cross-channel context of every position:

        L(X)    = BN2(PW2(ReLU(BN1(PW1(X)))))
        ATAC(X) = X * sigmoid(L(X))

    `PW1` is a 1x1 convolution (a dense map over the channel axis) from `C` to
    `Ci = floor(C / reduction)` channels and `PW2` maps `Ci` back to `C`; neither has a bias.
    The gate has the full shape of `X`: one value per element. Because a 1x1 convolution is a
    dense map over channels, the unit works after `Dense` (N, C), `Conv1D`, `Conv2D` and `Conv3D`.

    Parameters for `C` channels: `2*C*Ci + 2*Ci + 2*C` trainable (the two kernels and the
    BatchNorm scales and offsets) and `2*Ci + 2*C` non-trainable (the BatchNorm moving
    statistics); with `reduction=2` that is `C**2 + 3*C` trainable.

    Variants of the official code:

    - `inner_activation=None` drops the ReLU between the two BatchNorms (an ablation).
    - `context="global"` averages over the spatial axes first, so the gate is one value per
      channel broadcast over space: an SE-style gate used as the activation (the "SENet" curves
      of the paper's attention-network figure). The parameter counts are the same.

    Under float16 and bfloat16 policies the gate is computed in float32 (kernels included) and
    cast back: the un-normalised pointwise sums of large activations overflow float16 (largest
    value 65504), and bfloat16's 8 significant bits lose the gate's logit to cancellation.
    The gate's two BatchNorms therefore hold float32 weights and statistics, also under a pure
    `"bfloat16"` policy whose other variables are bfloat16.

    Args:
        reduction: the channel reduction ratio `r` of the bottleneck (2 in every published run).
            A positive number with `floor(C / reduction) >= 1`.
        context: `"local"` (the paper's unit, a gate per element) or `"global"` (a gate per
            channel from globally averaged context).
        inner_activation: the activation between the two pointwise maps: `"relu"` (the
            paper's) or `None`. Configs saved with the older `use_inner_relu=True/False` still
            load (as `"relu"` / `None`).
        momentum: momentum of the BatchNorm moving statistics (MXNet's 0.9, the same convention
            as Keras: `moving = momentum * moving + (1 - momentum) * batch`).
        epsilon: BatchNorm epsilon (MXNet's 1e-5).
        synchronized: whether the two BatchNorms compute their batch statistics over the
            global batch of all replicas of a `tf.distribute` strategy (Keras's
            `BatchNormalization(synchronized=True)`) instead of each replica's own part. Only
            the TensorFlow backend has such replicas: under JAX's `keras.distribution` the batch
            is one sharded array and the statistics are always global, and with PyTorch's
            `DistributedDataParallel` they are always per process. The argument is accepted on
            every backend so that a model saved under one loads under the others.
        remat: whether training recomputes the gate's intermediates (the two pointwise maps,
            the normalized maps, the inner ReLU) in the backward pass instead of storing them
            (`keras.remat`: gradient checkpointing): less memory per unit, one more forward
            pass of the gate in time. Outputs, gradients and moving statistics are the same.
            Keras's own `keras.RematScope` cannot be used for this layer: it recomputes the
            BatchNorms' moving-statistics updates too. On JAX the recomputation is a
            `jax.custom_vjp` (see `_rematerialized`), so the rematerialized gate has
            reverse-mode derivatives only (`jax.grad`, `jax.vjp`; Keras's training uses these).
        kernel_initializer: initializer of both pointwise kernels. Defaults to MXNet's
            MSRAPrelu as in the official code:
            `VarianceScaling(scale=2 / 1.0625, mode="fan_avg", distribution="untruncated_normal")`.
        kernel_regularizer: optional regularizer of both pointwise kernels.
        kernel_constraint: optional constraint of both pointwise kernels.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((32, 32, 3)),
    ...     keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
    ...     keras.layers.BatchNormalization(),
    ...     keras_atac.layers.ATAC(),
    ... ])

    Reference:
        Yimian Dai, Stefan Oehmcke, Fabian Gieseke, Yiquan Wu, Kobus Barnard.
        "Attention as Activation". ICPR 2020. https://arxiv.org/abs/2007.07729
    """

    def __init__(
        self,
        reduction=2,
        context="local",
        inner_activation="relu",
        momentum=0.9,
        epsilon=1e-5,
        synchronized=False,
        remat=False,
        kernel_initializer=None,
        kernel_regularizer=None,
        kernel_constraint=None,
        data_format=None,
        use_inner_relu=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.reduction = checks.check_positive_number("reduction", reduction)
        self.context = checks.check_choice("context", context, CONTEXTS)
        self.inner_activation = inner_activation_argument(inner_activation, use_inner_relu)
        self.momentum = checks.check_number_in_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = checks.check_positive_number("epsilon", epsilon)
        self.synchronized = checks.check_bool("synchronized", synchronized)
        self.remat = checks.check_bool("remat", remat)
        layer_utils.set_weight_arguments(
            self,
            "kernel",
            kernel_initializer
            if kernel_initializer is not None
            else layer_utils.msra_prelu_initializer(),
            kernel_regularizer,
            kernel_constraint,
        )
        self.data_format = checks.standardize_data_format(data_format)

    def build(self, input_shape):
        channels = input_checks.check_channels(self, input_shape, self.data_format)
        inner_channels = int(channels // self.reduction)
        if inner_channels < 1:
            raise ValueError(
                f"`reduction` leaves no channel in the bottleneck of ATAC layer '{self.name}': "
                f"floor({channels} / reduction) must be at least 1, so reduction must be at most "
                f"{channels}. Received: reduction={self.reduction}"
            )
        axis = checks.channel_axis(self.data_format)
        self._spatial_axes = checks.spatial_axes(len(input_shape), self.data_format)
        gate_policy = self.build_gate_policy()

        gate_shape = list(input_shape)
        for spatial_axis in self._spatial_axes if self.context == "global" else ():
            gate_shape[spatial_axis] = 1
        reduced_shape = list(gate_shape)
        reduced_shape[axis] = inner_channels

        self.reduce_kernel = self._add_kernel("reduce_kernel", (channels, inner_channels))
        self.reduce_norm = self._batch_norm("reduce_norm", axis, gate_policy)
        self.reduce_norm.build(tuple(reduced_shape))
        self.expand_kernel = self._add_kernel("expand_kernel", (inner_channels, channels))
        self.expand_norm = self._batch_norm("expand_norm", axis, gate_policy)
        self.expand_norm.build(tuple(gate_shape))

    def _add_kernel(self, name, shape):
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            # Read at full precision: under mixed_float16 the gate is computed in float32.
            autocast=False,
        )

    def _batch_norm(self, name, axis, dtype):
        return keras.layers.BatchNormalization(
            axis=axis,
            momentum=self.momentum,
            epsilon=self.epsilon,
            # Keras rejects synchronized=True on the backends that have no replicas to sync.
            synchronized=self.synchronized and keras.backend.backend() == "tensorflow",
            dtype=dtype,
            name=name,
        )

    def gate_map(self, inputs, training=None):
        """The gate `sigmoid(L(inputs))`, in (0, 1), in the gate's compute dtype.

        It has the shape of `inputs` (for `context="global"`, size 1 on the spatial axes).
        With `training=True` the BatchNorms use, and update, batch statistics.
        """
        return self.gate_values(ops.cast(inputs, self._gate_dtype), training=training)

    def gate_values(self, x, training=None):
        """`sigmoid(L(x))`, from the layer's weights read as tensors.

        The BatchNorm sublayers hold the weights and moving statistics but are not called:
        `_batch_norm` computes what Keras's `BatchNormalization` computes, so that the gate is
        a pure function of `x` and the weights. That function is what `remat=True`
        recomputes (a BatchNorm layer called inside the recomputation would update its moving
        statistics again in the backward pass, and JAX would see the update leak out of its
        trace). It returns each BatchNorm's batch statistics, from which the moving statistics
        are updated here as Keras's layer updates them. Batch statistics are used where
        Keras's layer uses them: in training, for a BatchNorm that is not frozen.
        """
        norms = (self.reduce_norm, self.expand_norm)
        uses_batch_statistics = [bool(training) and norm.trainable for norm in norms]
        # A BatchNorm on moving statistics takes them as inputs; one on batch statistics does
        # not (PyTorch would see them updated in place before the backward pass).
        weights_per_norm = [
            (norm.gamma, norm.beta) + (() if batch else (norm.moving_mean, norm.moving_variance))
            for norm, batch in zip(norms, uses_batch_statistics)
        ]
        sizes = [len(weights) for weights in weights_per_norm]
        channels_last = self.data_format == "channels_last"

        def gate_and_statistics(x, reduce_kernel, expand_kernel, *norm_weights):
            reduce_weights, expand_weights = norm_weights[: sizes[0]], norm_weights[sizes[0] :]
            context = x
            if self.context == "global" and self._spatial_axes:
                context = ops.mean(x, axis=self._spatial_axes, keepdims=True)
            gate_shape = ops.shape(context)
            if channels_last and len(context.shape) > 2:
                # Both products and both BatchNorms on the map flattened to (positions,
                # channels): TensorFlow's XLA ran the training step of `cifar_resnet(20)` with
                # ATAC in 1.52x and 1.56x ReLU's time so, against 1.67x and 1.61x on the
                # rank-4 map (`docs/benchmarks.md`); JAX and PyTorch ran both alike.
                context = ops.reshape(context, (-1, gate_shape[-1]))
            channel_axis = -1 if channels_last else 1
            logits = layer_utils.pointwise(context, reduce_kernel, self.data_format)
            logits, *reduce_statistics = _batch_norm(
                norms[0], logits, channel_axis, uses_batch_statistics[0], *reduce_weights
            )
            if self.inner_activation == "relu":
                logits = ops.relu(logits)
            logits = layer_utils.pointwise(logits, expand_kernel, self.data_format)
            logits, *expand_statistics = _batch_norm(
                norms[1], logits, channel_axis, uses_batch_statistics[1], *expand_weights
            )
            gate = ops.reshape(ops.sigmoid(logits), gate_shape)
            return (gate, *reduce_statistics, *expand_statistics)

        tensors = [
            ops.cast(ops.convert_to_tensor(weight), self._gate_dtype)
            for weights in ([self.reduce_kernel, self.expand_kernel], *weights_per_norm)
            for weight in weights
        ]
        if self.remat and training:
            gate_and_statistics = _rematerialized(gate_and_statistics)
        gate, *statistics = gate_and_statistics(x, *tensors)
        for norm, batch, mean, variance in zip(
            norms, uses_batch_statistics, statistics[::2], statistics[1::2]
        ):
            if batch:
                _update_moving_statistics(norm, mean, variance)
        return gate

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reduction": self.reduction,
                "context": self.context,
                "inner_activation": self.inner_activation,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "synchronized": self.synchronized,
                "remat": self.remat,
                **layer_utils.weight_arguments_config(self, "kernel"),
                "data_format": self.data_format,
            }
        )
        return config


def _rematerialized(function):
    """`keras.remat(function)`: `function(x, *weights)`, whose intermediates the backward pass
    recomputes instead of keeping them.

    On JAX, `keras.remat` is `jax.checkpoint`, which keeps the recomputation apart from the
    forward pass with an optimization barrier; XLA's CPU compiler removes the barrier before it
    schedules, computes the recomputation as soon as `x` exists and keeps its results until the
    backward pass, so the training step of `cifar_resnet(20)` with ATAC took as much memory
    with `remat=True` as without (287 MiB; see `docs/benchmarks.md`). Here the backward pass
    recomputes from `x` tied to the upstream gradient (`recomputation.tied_to_upstream`), which
    XLA cannot compute before the gradient exists. TensorFlow (`tf.recompute_grad`) and
    PyTorch (`torch.utils.checkpoint`) recompute in the backward pass as they are.
    """
    if keras.backend.backend() != "jax":
        return keras.remat(function)
    import jax

    @jax.custom_vjp
    def rematerialized(x, *weights):
        return function(x, *weights)

    def forward(x, *weights):
        return function(x, *weights), (x, weights)

    def backward(residuals, upstream):
        x, weights = residuals
        # The first output is the gate, of the shape of `x` or broadcast against it.
        x = recomputation.tied_to_upstream(x, upstream[0])
        _, pullback = jax.vjp(function, x, *weights)
        return pullback(upstream)

    rematerialized.defvjp(forward, backward)
    return rematerialized


def _batch_norm(
    norm, x, axis, batch_statistics, gamma, beta, moving_mean=None, moving_variance=None
):
    """What the `BatchNormalization` layer `norm` computes for `x`, whose channels are on
    `axis`, from its weights given as tensors: with the batch statistics of `x` where
    `batch_statistics`, else with the moving ones. Also returns the statistics it used."""
    if batch_statistics:
        axis = axis % len(x.shape)
        axes = [other for other in range(len(x.shape)) if other != axis]
        mean, variance = ops.moments(x, axes=axes, synchronized=norm.synchronized)
    else:
        mean, variance = moving_mean, moving_variance
    outputs = ops.batch_normalization(
        x, mean, variance, axis=axis, offset=beta, scale=gamma, epsilon=norm.epsilon
    )
    return outputs, mean, variance


def _update_moving_statistics(norm, mean, variance):
    """Keras's `BatchNormalization` update of the moving statistics from batch statistics."""
    for moving, batch in ((norm.moving_mean, mean), (norm.moving_variance, variance)):
        batch = ops.stop_gradient(batch)
        moving_value = ops.cast(moving, batch.dtype)
        moving.assign(moving_value * norm.momentum + batch * (1.0 - norm.momentum))
