"""SSIA: self-supervised implicit attention (Wu, Gong and Zhang, 2022)."""

import inspect
import math

import keras
from keras import ops

from keras_atac.api_export import keras_atac_export
from keras_atac.models import backbones
from keras_atac.utils import checks

NORMALIZATIONS = ("l2", "softmax")
DISTANCES = ("mse", "kl")
INTERPOLATIONS = ("bilinear", "nearest")


@keras_atac_export("keras_atac.models.SSIA")
class SSIA(keras.Model):
    """Self-supervised implicit attention: higher layers guide lower ones, in training only.

    Wraps a functional `backbone`. Training adds a guidance loss in which the attention maps of
    higher ("teacher") layers are the targets of the maps of lower ("student") layers. The maps
    are parameter-free:

        A(F)  = N( mean_c |F|^p )                          one value per position
        T     = stop_gradient( N( resize( mean_c |F_h|^p ) ) )   at the student's resolution
        G     = sum over (student l, teacher h) pairs of D( A(F_l), T )
        loss  = task loss + guidance_weight * G

    `N` normalises a map over its positions (`"l2"`: unit Euclidean norm; `"softmax"`: a
    spatial softmax) and `D` is the mean squared error over positions and batch (`"mse"`) or
    the Kullback-Leibler divergence `KL(T || A)` summed over positions and averaged over the
    batch (`"kl"`, for softmax maps). The teacher map is resized before it is normalised, so
    both maps are normalised over the same positions.

    The term is added with `add_loss()` in `call(training=True)`, so `fit` trains with it on
    every backend, and is logged as `guidance_loss` (the unweighted `G`); `loss` includes
    `guidance_weight * G`. Evaluation and prediction call the backbone alone: the inference
    model *is* `self.backbone`, with no extra parameter, operation or memory. Evaluation does
    not compute `G`, so its `guidance_loss` reads NaN. Save or export `self.backbone` to deploy
    the network without the wrapper.

    What the paper leaves open (REFERENCE, section 4), and what is ours:

    - The operators of the paper are not public; this formulation (the attention maps of
      attention transfer and self-attention distillation) is the one REFERENCE prescribes,
      with each choice an argument.
    - Defaults: L2 normalisation and the MSE, as in attention transfer (Zagoruyko and
      Komodakis, 2017, whose code weights the sum of these MSEs by beta / 2 with
      beta = 1000), and `guidance_weight = 1000`. L2 maps are invariant to the scale of the
      features, and their MSE is `(2 - 2 cos) / positions`: at initialisation, on a batch of
      CIFAR-10, `cifar_resnet(8)`'s default pairs give 1.1e-4 (32x32) and 4.8e-4 (16x16), so
      the term starts near 0.6 against a task loss of 2.3. A softmax map depends on the scale
      of `|F|^p` like a temperature, and its MSE is tiny (REFERENCE: about 1e-6; 2e-5 and
      5e-4 in the same measurement), so with softmax maps choose the weight accordingly or
      use `distance="kl"`.
    - Bilinear resizing (half-pixel centres) and `p = 2`.
    - `warmup_epochs`: the term is switched off for that many first epochs (0 by default), as
      in self-attention distillation; the switch is a non-trainable 0/1 variable
      `guidance_active` that exists only when `warmup_epochs > 0` and that `fit` sets at
      every epoch (a callback added by `SSIA.fit`). Custom training loops set it themselves.

    Args:
        backbone: a built functional (or sequential) `keras.Model`.
        pairs: a sequence of `(student, teacher)` layer names of `backbone`: each layer outputs
            a 2-D feature map (rank 4 with the batch axis), and the teacher's map is the target
            of the student's. `None` takes `SSIA.default_pairs(backbone)`.
        guidance_weight: the weight `lambda` of the guidance term, a number >= 0.
        normalization: `"l2"` or `"softmax"`, the normalisation `N` of the maps.
        distance: `"mse"` or `"kl"` (which needs `normalization="softmax"`).
        p: the exponent in `mean_c |F|^p`, a positive number. For `p < 1` the gradient at
            exact zeros (infinite in theory) is taken as 0.
        interpolation: `"bilinear"` or `"nearest"`, how a teacher map is resized to its
            student's resolution.
        warmup_epochs: the number of first epochs without the guidance term, an integer >= 0.
        data_format: the data format of the feature maps, `"channels_last"` or
            `"channels_first"`; defaults to `keras.config.image_data_format()`.
        name: the model's name; defaults to `f"{backbone.name}_ssia"`.
        **kwargs: base model arguments (`trainable`, `dtype`).

    Example:

    >>> backbone = keras_atac.models.cifar_resnet(20)
    >>> model = keras_atac.models.SSIA(backbone)          # stage s guided by stage s + 1
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> model.fit(x, y)                                    # logs loss and guidance_loss
    >>> model.backbone.save("resnet20.keras")              # the plain network

    Reference:
        Jinyi Wu, Xun Gong, Zhemin Zhang. "Self-Supervised Implicit Attention: Guided Attention
        by The Model Itself". arXiv:2206.07434, 2022. https://arxiv.org/abs/2206.07434
    """

    def __init__(
        self,
        backbone,
        pairs=None,
        guidance_weight=1000.0,
        normalization="l2",
        distance="mse",
        p=2,
        interpolation="bilinear",
        warmup_epochs=0,
        data_format=None,
        name=None,
        **kwargs,
    ):
        backbones.check_backbone(backbone)
        pairs = _check_pairs(backbone, self.default_pairs(backbone) if pairs is None else pairs)
        _check_settings(guidance_weight, normalization, distance, p, interpolation, warmup_epochs)
        data_format = checks.standardize_data_format(data_format)

        super().__init__(name=name or f"{backbone.name}_ssia", **kwargs)
        self.backbone = backbone
        self.pairs = pairs
        self.guidance_weight = guidance_weight
        self.normalization = normalization
        self.distance = distance
        self.p = p
        self.interpolation = interpolation
        self.warmup_epochs = warmup_epochs
        self.data_format = data_format
        self._build_guidance()
        # The backbone is built, so is the wrapper: it has no weights of its own.
        self.built = True

    def _build_guidance(self):
        """Creates the model of the tapped feature maps, the metric and the warm-up switch."""
        tapped = list(dict.fromkeys(layer for pair in self.pairs for layer in pair))
        # The backbone's outputs and the tapped feature maps, from the backbone's own layers.
        self._taps = keras.Model(
            self.backbone.input,
            [
                self.backbone.output,
                {layer: self.backbone.get_layer(layer).output for layer in tapped},
            ],
            name=f"{self.backbone.name}_taps",
        )
        self.guidance_tracker = _TrainingOnlyMean(name="guidance_loss")
        if self.warmup_epochs:
            self.guidance_active = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="guidance_active"
            )
        # The value of G of the latest training call, for `compute_loss` to log.
        self._guidance = None

    @staticmethod
    def default_pairs(backbone):
        """The default pairs: the output of each stage guided by the next stage's output.

        A stage output is the last block output `f"stage{s}_block{b}_out"` of a stage of the
        package's ResNets (`cifar_resnet`: 3 stages, so 2 pairs; `resnet50_v1b`: 3 pairs).

        Raises:
            ValueError: if `backbone` has no such layers.
        """
        stages = {}
        for layer in backbone.layers:
            match = backbones.BLOCK_OUTPUT.fullmatch(layer.name)
            if match:
                stage, block = int(match[1]), int(match[2])
                if block > stages.get(stage, (0, ""))[0]:
                    stages[stage] = (block, layer.name)
        outputs = [stages[stage][1] for stage in sorted(stages)]
        if len(outputs) < 2:
            raise ValueError(
                "SSIA has default pairs only for networks with stage outputs named "
                "'stage{s}_block{b}_out' (keras_atac.models.cifar_resnet, resnet50_v1b); pass "
                f"`pairs` explicitly. Received: backbone '{backbone.name}'"
            )
        return tuple(zip(outputs[:-1], outputs[1:]))

    def call(self, inputs, training=None):
        if not training:
            return self.backbone(inputs, training=training)
        outputs, features = self._taps(inputs, training=True)
        self._guidance = self.guidance(features)
        weight = ops.convert_to_tensor(self.guidance_weight, "float32")
        if self.warmup_epochs:
            weight = weight * ops.convert_to_tensor(self.guidance_active)
        self.add_loss(weight * self._guidance)
        return outputs

    def guidance(self, features):
        """The guidance term `G` from a dict of feature maps by layer name (float32 scalar)."""
        total = ops.convert_to_tensor(0.0, "float32")
        for student, teacher in self.pairs:
            student_map = self._attention_logits(features[student])
            size = tuple(student_map.shape[1:3])
            if None in size:
                raise ValueError(
                    f"SSIA needs the spatial size of layer '{student}' when it runs. "
                    f"Received: feature shape {tuple(features[student].shape)}"
                )
            teacher_map = self._attention_logits(features[teacher])
            if tuple(teacher_map.shape[1:3]) != size:
                # The maps are (batch, height, width): resized as channels-last images of one
                # channel, whatever the global `image_data_format()` says.
                teacher_map = ops.image.resize(
                    teacher_map[..., None],
                    size,
                    interpolation=self.interpolation,
                    data_format="channels_last",
                )[..., 0]
            # Maps flattened over positions: (batch, height * width).
            student_map = ops.reshape(student_map, (-1, size[0] * size[1]))
            teacher_map = ops.stop_gradient(ops.reshape(teacher_map, (-1, size[0] * size[1])))
            total = total + self._distance(student_map, teacher_map)
        return total

    def _attention_logits(self, features):
        """mean_c |F|^p in float32, as (batch, height, width).

        The derivative `p |F|^(p-1)` is infinite at exact zeros for `p < 1` (and post-ReLU
        features are mostly zeros), so the power is taken of the nonzero values only: the
        value at 0 is still 0, and its gradient there is 0, a subgradient of `|F|^p`.
        """
        magnitude = ops.abs(ops.cast(features, "float32"))
        nonzero = magnitude > 0
        powered = ops.where(nonzero, ops.power(ops.where(nonzero, magnitude, 1.0), self.p), 0.0)
        return ops.mean(powered, axis=checks.channel_axis(self.data_format))

    def _normalize(self, maps):
        if self.normalization == "softmax":
            return ops.softmax(maps, axis=-1)
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(maps), axis=-1, keepdims=True), 1e-24))
        return maps / norm

    def _distance(self, student_map, teacher_map):
        if self.distance == "kl":
            target_log = ops.log_softmax(teacher_map, axis=-1)
            divergence = ops.exp(target_log) * (target_log - ops.log_softmax(student_map, -1))
            return ops.mean(ops.sum(divergence, axis=-1))
        return ops.mean(ops.square(self._normalize(student_map) - self._normalize(teacher_map)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The task loss plus `self.losses` (the weighted guidance term); logs `G` in training."""
        loss = super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        if training and self._guidance is not None:
            self.guidance_tracker.update_state(self._guidance)
        return loss

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, with the callback that ends the warm-up (when there is one)."""
        if not self.warmup_epochs:
            return super().fit(*args, **kwargs)
        arguments = inspect.signature(super().fit).bind(*args, **kwargs).arguments
        arguments["callbacks"] = [*(arguments.get("callbacks") or ()), _GuidanceWarmup()]
        return super().fit(**arguments)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "pairs": [list(pair) for pair in self.pairs],
                "guidance_weight": self.guidance_weight,
                "normalization": self.normalization,
                "distance": self.distance,
                "p": self.p,
                "interpolation": self.interpolation,
                "warmup_epochs": self.warmup_epochs,
                "data_format": self.data_format,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**backbones.revived_config(config))


class _TrainingOnlyMean(keras.metrics.Mean):
    """A `Mean` that reads NaN, not 0, when nothing was added (evaluation of a training term)."""

    def result(self):
        count = ops.convert_to_tensor(self.count)
        return ops.where(count > 0, super().result(), float("nan"))


class _GuidanceWarmup(keras.callbacks.Callback):
    """Switches an SSIA model's guidance term on from epoch `warmup_epochs` (0-based) on."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.guidance_active.assign(float(epoch >= self.model.warmup_epochs))


def _check_settings(guidance_weight, normalization, distance, p, interpolation, warmup_epochs):
    """Checks the arguments of `SSIA` that choose the guidance term."""
    checks.check_number_in_range("guidance_weight", guidance_weight, 0.0, math.inf)
    checks.check_choice("normalization", normalization, NORMALIZATIONS)
    checks.check_choice("distance", distance, DISTANCES)
    if distance == "kl" and normalization != "softmax":
        raise ValueError(
            "`distance='kl'` compares probability maps and needs normalization='softmax'. "
            f"Received: normalization={normalization!r}"
        )
    checks.check_positive_number("p", p)
    checks.check_choice("interpolation", interpolation, INTERPOLATIONS)
    checks.check_number_in_range("warmup_epochs", warmup_epochs, 0, math.inf, integer=True)


def _check_pairs(backbone, pairs):
    """Returns `pairs` as a tuple of (student, teacher) name tuples, checked: layers of
    `backbone` that output 2-D feature maps."""
    if isinstance(pairs, str) or not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError(
            "`pairs` must be a non-empty list of (student, teacher) layer names. "
            f"Received: pairs={pairs!r}"
        )
    checked = []
    for pair in pairs:
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(name, str) for name in pair)
            or pair[0] == pair[1]
        ):
            raise ValueError(
                "Every entry of `pairs` must be two different layer names (student, teacher). "
                f"Received: pairs={pairs!r}"
            )
        checked.append(tuple(pair))
    for name in dict.fromkeys(name for pair in checked for name in pair):
        _check_feature_map(backbone, name)
    return tuple(checked)


def _check_feature_map(backbone, name):
    """Checks that `backbone` has a layer `name` whose output is a batch of 2-D feature maps."""
    shape = backbones.tapped_output(backbone, name, "pairs").shape
    if len(shape) != 4:
        raise ValueError(
            f"SSIA compares 2-D attention maps, so layer '{name}' must output rank-4 feature "
            f"maps (batch axis included). Received: output shape {tuple(shape)}"
        )
