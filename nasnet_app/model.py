"""`NASNet`: a `keras.Model` whose cells are generated from a genotype."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from nasnet_app.cells import NASCell, cell_output_channels
from nasnet_app.genotype import resolve_genotype
from nasnet_app.ops import STRIDED_POOL_PADDINGS, batch_norm

STEMS = ("imagenet", "cifar")
POOLINGS = (None, "avg", "max")


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


def _check_input_shape(input_shape):
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if len(shape) != 3:
        _fail("input_shape", "a tuple (height, width, channels)", input_shape)
    for size in shape[:2]:
        if size is not None and (not isinstance(size, (int, np.integer)) or size < 32):
            _fail("input_shape", "at least 32 pixels high and wide (or None)", input_shape)
    if not isinstance(shape[2], (int, np.integer)) or shape[2] < 1:
        _fail("input_shape", "a tuple with a known, positive channel count", input_shape)
    return tuple(None if s is None else int(s) for s in shape)


@keras.saving.register_keras_serializable(package="nasnet_app")
class AuxiliaryHead(layers.Layer):
    """TF-Slim's auxiliary classifier: used for the training loss only."""

    def __init__(self, classes, activation=None, bn_momentum=0.9997, bn_epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.activation = classes, activation
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        self.proj_conv = layers.Conv2D(128, 1, use_bias=False, name="proj_conv")
        self.proj_bn = batch_norm("proj_bn", bn_momentum, bn_epsilon)
        self.bn = batch_norm("bn", bn_momentum, bn_epsilon)
        self.dense = layers.Dense(classes, activation=activation, name="dense")
        self.conv = None

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        self.pooled = height is not None and width is not None and min(height, width) >= 5
        kernel = ((height - 5) // 3 + 1, (width - 5) // 3 + 1) if self.pooled else (1, 1)
        self.conv = layers.Conv2D(768, kernel, use_bias=False, name="conv")

    def call(self, x, training=None):
        x = tf.nn.relu(x)
        if self.pooled:
            x = tf.nn.avg_pool2d(x, 5, 3, "VALID")
        x = tf.nn.relu(self.proj_bn(self.proj_conv(x), training=training))
        x = tf.nn.relu(self.bn(self.conv(x), training=training))
        x = tf.reduce_mean(x, axis=[1, 2])
        return self.dense(x)

    def named_layers(self):
        return {
            "proj_conv": self.proj_conv,
            "proj_bn": self.proj_bn,
            "conv": self.conv,
            "bn": self.bn,
            "dense": self.dense,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            classes=self.classes,
            activation=keras.activations.serialize(keras.activations.get(self.activation)),
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config


@keras.saving.register_keras_serializable(package="nasnet_app")
class NASNet(keras.Model):
    """A NASNet network generated from a genotype (Zoph et al., 2018).

    Three stacks of `num_blocks` normal cells, with a reduction cell between
    stacks; filters double at each reduction. The stem is either the ImageNet
    stem (3x3/2 conv and two reduction cells) or the CIFAR stem (one 3x3 conv).

    Args:
        genotype: a `Genotype`, its dict, a catalogue name (`"nasnet_a"`) or a
            path to a genotype JSON file.
        num_blocks: normal cells per stack (N in "NASNet N @ P").
        penultimate_filters: channels of the last cell's output (P).
        stem: `"imagenet"` or `"cifar"`.
        stem_filters: filters of the stem convolution.
        filter_multiplier: filter growth at each reduction.
        skip_reduction: the first cell after a reduction takes as its previous
            input the cell before the reduction (NASNet-A Large).
        include_top: whether to end with the classification layer.
        input_shape: `(height, width, channels)`; height and width may be `None`.
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        classes: number of classes of the top layer.
        classifier_activation: activation of the top layer (`None` for logits).
        dropout: dropout rate before the top layer.
        drop_path_keep_prob: scheduled drop path keep probability of the last
            cell at the end of training (1.0 disables drop path).
        drop_path_total_steps: training steps over which drop path ramps up
            (TF-Slim's `total_training_steps`); `None`: no ramp.
        aux_head: add the auxiliary classifier (training loss only).
        aux_weight: weight of the auxiliary loss.
        bn_momentum, bn_epsilon: BatchNormalization settings.
        strided_pool_padding: `"same"` (TF-Slim) or `"zeros"`
            (keras.applications) border rule of stride-2 pools.
        seed: seed of the drop path noise.

    Example:

    >>> import numpy as np, nasnet_app
    >>> model = nasnet_app.NASNet(num_blocks=1, penultimate_filters=48,
    ...     stem="cifar", stem_filters=12, input_shape=(32, 32, 3), classes=10)
    >>> model.predict(np.zeros((1, 32, 32, 3)), verbose=0).shape
    (1, 10)
    """

    def __init__(
        self,
        genotype="nasnet_a",
        num_blocks=4,
        penultimate_filters=1056,
        stem="imagenet",
        stem_filters=32,
        filter_multiplier=2,
        skip_reduction=False,
        include_top=True,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        dropout=0.0,
        drop_path_keep_prob=1.0,
        drop_path_total_steps=None,
        aux_head=False,
        aux_weight=0.4,
        bn_momentum=0.9997,
        bn_epsilon=1e-3,
        strided_pool_padding="same",
        seed=None,
        name="nasnet",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.genotype = resolve_genotype(genotype)
        self._validate(
            num_blocks, stem, stem_filters, filter_multiplier, pooling, classes, dropout,
            drop_path_keep_prob, strided_pool_padding,
        )  # fmt: skip
        self.num_blocks, self.penultimate_filters = num_blocks, penultimate_filters
        self.stem, self.stem_filters = stem, stem_filters
        self.filter_multiplier, self.skip_reduction = filter_multiplier, skip_reduction
        self.include_top, self.pooling, self.classes = include_top, pooling, classes
        self.classifier_activation = classifier_activation
        self.dropout, self.aux_head, self.aux_weight = dropout, aux_head, aux_weight
        self.drop_path_keep_prob = drop_path_keep_prob
        self.drop_path_total_steps = drop_path_total_steps
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        self.strided_pool_padding, self.seed = strided_pool_padding, seed
        self.filters = self._base_filters()
        self._input_shape_arg = _check_input_shape(input_shape)
        self._make_layers()
        if self._input_shape_arg is not None:
            self.build((None,) + self._input_shape_arg)

    def build(self, input_shape):
        # Creates every variable by tracing `call` symbolically, as Keras does
        # for subclassed models, and records the shape for `.keras` loading.
        keras.src.backend.compute_output_spec(self.call, keras.KerasTensor(tuple(input_shape)))
        self._build_shapes_dict = {"input_shape": tuple(input_shape)}
        self.built = True

    def _validate(
        self, num_blocks, stem, stem_filters, multiplier, pooling, classes, dropout, keep, padding
    ):
        if not isinstance(num_blocks, int) or num_blocks < 1:
            _fail("num_blocks", "a positive integer", num_blocks)
        if stem not in STEMS:
            _fail("stem", "'imagenet' or 'cifar'", stem)
        if not isinstance(stem_filters, int) or stem_filters < 1:
            _fail("stem_filters", "a positive integer", stem_filters)
        if not isinstance(multiplier, int) or multiplier < 1:
            _fail("filter_multiplier", "a positive integer", multiplier)
        if pooling not in POOLINGS:
            _fail("pooling", "None, 'avg' or 'max'", pooling)
        if not isinstance(classes, int) or classes < 1:
            _fail("classes", "a positive integer", classes)
        if not 0.0 <= dropout < 1.0:
            _fail("dropout", "in [0, 1)", dropout)
        if not 0.0 < keep <= 1.0:
            _fail("drop_path_keep_prob", "in (0, 1]", keep)
        if padding not in STRIDED_POOL_PADDINGS:
            _fail("strided_pool_padding", "'same' or 'zeros'", padding)

    def _base_filters(self):
        per_filter = cell_output_channels(self.genotype.normal, 1) * self.filter_multiplier**2
        if self.penultimate_filters % per_filter or self.penultimate_filters < per_filter:
            _fail(
                "penultimate_filters",
                f"a positive multiple of {per_filter} for this genotype "
                f"(output states x filter_multiplier**2)",
                self.penultimate_filters,
            )
        return self.penultimate_filters // per_filter

    def _make_layers(self):
        stride = 2 if self.stem == "imagenet" else 1
        padding = "valid" if self.stem == "imagenet" else "same"
        self.stem_conv = layers.Conv2D(
            self.stem_filters, 3, strides=stride, padding=padding, use_bias=False,
            kernel_initializer="he_normal", name="stem_conv",
        )  # fmt: skip
        self.stem_bn = batch_norm("stem_bn", self.bn_momentum, self.bn_epsilon)
        self.cell_layers, self.plan = [], []
        self._plan_cells()
        self.aux = None
        if self.aux_head and self.include_top:
            self.aux = AuxiliaryHead(
                self.classes, self.classifier_activation, self.bn_momentum, self.bn_epsilon,
                name="aux",
            )  # fmt: skip
        self.head_dropout = layers.Dropout(self.dropout, name="head_dropout")
        self.head_dense = None
        if self.include_top:
            self.head_dense = layers.Dense(
                self.classes, activation=self.classifier_activation, name="head_dense"
            )

    def _plan_cells(self):
        """Lays out the cells: which earlier outputs each cell reads, and its width."""
        # Each entry of `states`: (channels, spatial level) of an output so far.
        states = [None, (self.stem_filters, 0)]
        total = 3 * self.num_blocks + 2 + (2 if self.stem == "imagenet" else 0)
        m, filters = self.filter_multiplier, self.filters
        if self.stem == "imagenet":
            for i, stem_filters in enumerate((filters // m**2, filters // m)):
                self._add_cell(states, f"stem_cell_{i}", True, stem_filters, len(states) - 2, total)
        reduction_at = {self.num_blocks: 0, 2 * self.num_blocks: 1}
        for i in range(3 * self.num_blocks):
            skip_prev = len(states) - 2
            if i in reduction_at:
                filters *= m
                name = f"reduction_cell_{reduction_at[i]}"
                self._add_cell(states, name, True, filters, len(states) - 2, total)
            prev = skip_prev if self.skip_reduction else len(states) - 2
            self._add_cell(states, f"cell_{i}", False, filters, prev, total)

    def _add_cell(self, states, name, reduction, filters, prev_index, total_cells):
        in_channels, level = states[-1]
        prev = states[prev_index] if prev_index >= 0 else None
        genotype_cell = self.genotype.reduction if reduction else self.genotype.normal
        depth_ratio = (len(self.cell_layers) + 1) / total_cells
        layer = NASCell(
            genotype_cell.to_dict(),
            filters,
            reduction,
            in_channels,
            prev_channels=None if prev is None else prev[0],
            prev_reduced=prev is not None and prev[1] < level,
            drop_path_rate=depth_ratio * (1.0 - self.drop_path_keep_prob),
            strided_pool_padding=self.strided_pool_padding,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            seed=None if self.seed is None else self.seed + len(self.cell_layers),
            name=name,
        )
        self.cell_layers.append(layer)
        self.plan.append((name, len(states) - 1, prev_index if prev is not None else None))
        states.append((cell_output_channels(genotype_cell, filters), level + int(reduction)))

    def _drop_path_progress(self, training):
        if not training or self.drop_path_total_steps is None or self.optimizer is None:
            return None
        step = tf.cast(self.optimizer.iterations, "float32")
        return tf.minimum(step / float(self.drop_path_total_steps), 1.0)

    def _forward(self, inputs, training=None, endpoints=None):
        x = self.stem_bn(self.stem_conv(inputs), training=training)
        outputs = [None, x]
        if endpoints is not None and self.stem == "cifar":
            endpoints["Stem"] = x
        progress = self._drop_path_progress(training)
        aux = None
        aux_after = f"cell_{2 * self.num_blocks - 1}"
        for layer, (name, x_index, prev_index) in zip(self.cell_layers, self.plan):
            prev = None if prev_index is None else outputs[prev_index]
            cell_inputs = [outputs[x_index]] if prev is None else [outputs[x_index], prev]
            x = layer(cell_inputs, training=training, drop_path_progress=progress)
            outputs.append(x)
            if endpoints is not None:
                endpoints[_endpoint_name(name, self.stem)] = x
            if self.aux is not None and name == aux_after and (training or not self.aux.built):
                aux = self.aux(x, training=training)
        x = tf.nn.relu(x)
        if self.include_top:
            pooled = tf.reduce_mean(x, axis=[1, 2])
            if endpoints is not None:
                endpoints["global_pool"] = pooled
            x = self.head_dense(self.head_dropout(pooled, training=training))
        elif self.pooling == "avg":
            x = tf.reduce_mean(x, axis=[1, 2])
        elif self.pooling == "max":
            x = tf.reduce_max(x, axis=[1, 2])
        return x, aux

    def call(self, inputs, training=None):
        return self._forward(inputs, training=training)[0]

    def endpoints(self, inputs, training=False):
        """Named intermediate outputs, with TF-Slim's end-point names.

        Keys: `Stem`, `cell_stem_0` (ImageNet stem), `Cell_i`,
        `Reduction_Cell_j`, `global_pool` and `Logits`/`Predictions` (top
        layer output, named after whether it is activated).
        """
        points = {}
        output, _ = self._forward(tf.convert_to_tensor(inputs), training=training, endpoints=points)
        points["Logits" if self.classifier_activation is None else "Predictions"] = output
        return points

    def _resolve_auto_jit_compile(self):
        # Keras' jit_compile="auto" turns XLA on whenever layers allow it; on
        # CPU, XLA made NASNet training about 10x slower in our measurements,
        # so "auto" means XLA only when a GPU is visible. (A hook rather than a
        # `compile` override, which would stop `.keras` files recompiling.)
        if not tf.config.list_logical_devices("GPU"):
            return False
        return super()._resolve_auto_jit_compile()

    def train_step(self, data):
        if self.aux is None:
            return super().train_step(data)
        return self._train_step_with_aux(data)

    def _train_step_with_aux(self, data):
        from keras.src import tree
        from keras.src.losses import loss as loss_module

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred, aux_pred = self._forward(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
            if self._compile_loss is not None:
                loss = loss + self.aux_weight * self._compile_loss(y, aux_pred, sample_weight)
            batch = tf.shape(next(t for t in tree.flatten(x) if t is not None))[0]
            self._loss_tracker.update_state(
                loss_module.unscale_loss_for_distribution(loss), sample_weight=batch
            )
            if self.optimizer is not None:
                loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def named_layers(self):
        """Every weighted layer under its stable key (see `weight_map`)."""
        named = {"stem/conv": self.stem_conv, "stem/bn": self.stem_bn}
        for layer in self.cell_layers:
            for key, sub in layer.named_layers().items():
                named[f"{layer.name}/{key}"] = sub
        if self.aux is not None:
            named.update({f"aux/{k}": sub for k, sub in self.aux.named_layers().items()})
        if self.head_dense is not None:
            named["head/dense"] = self.head_dense
        return named

    def weight_map(self):
        """Every variable under a stable key such as `cell_0/block0/left/sep_conv_5x5/sep1/depthwise_kernel`."""
        weights = {}
        for key, layer in self.named_layers().items():
            for variable in layer.weights:
                weights[f"{key}/{variable.name}"] = variable
        return weights

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "genotype": self.genotype.to_dict(),
            "input_shape": self._input_shape_arg,
        }
        for key in (
            "num_blocks", "penultimate_filters", "stem", "stem_filters", "filter_multiplier",
            "skip_reduction", "include_top", "pooling", "classes", "dropout",
            "drop_path_keep_prob", "drop_path_total_steps", "aux_head", "aux_weight",
            "bn_momentum", "bn_epsilon", "strided_pool_padding", "seed",
        ):  # fmt: skip
            config[key] = getattr(self, key)
        activation = keras.activations.get(self.classifier_activation)
        config["classifier_activation"] = keras.activations.serialize(activation)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("dtype", None)
        if isinstance(config.get("classifier_activation"), dict):
            activation = keras.activations.deserialize(config["classifier_activation"])
            config["classifier_activation"] = activation
        return cls(**config)


def _endpoint_name(cell_name, stem):
    """TF-Slim end-point names: `Cell_3`, `Reduction_Cell_0`, `Stem`, `cell_stem_0`."""
    if cell_name == "stem_cell_1":
        return "Stem"
    if cell_name == "stem_cell_0":
        return "cell_stem_0"
    if cell_name.startswith("reduction_cell_"):
        return "Reduction_Cell_" + cell_name.rsplit("_", 1)[1]
    return "Cell_" + cell_name.rsplit("_", 1)[1]


class DropPathSchedule(keras.callbacks.Callback):
    """Ramps scheduled drop path up over a whole `fit` (TF-Slim's schedule).

    Sets the model's `drop_path_total_steps` to `epochs * steps` at the start
    of training, so the drop probability of each cell grows linearly from 0 to
    its final value with `optimizer.iterations`.
    """

    def __init__(self, total_steps=None):
        super().__init__()
        self.total_steps = total_steps

    def on_train_begin(self, logs=None):
        total = self.total_steps
        if total is None:
            epochs, steps = self.params.get("epochs"), self.params.get("steps")
            if not epochs or not steps:
                raise ValueError(
                    "`total_steps` must be given when fit() does not know its steps per epoch. "
                    f"Received: total_steps=None with params={self.params}"
                )
            total = epochs * steps
        self.model.drop_path_total_steps = int(total)
