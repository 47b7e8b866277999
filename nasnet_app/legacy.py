"""Reading `.keras` files written by nasnet-app 0.1, whose `NASNet` was a subclassed model.

Those files store their weights under the attribute layout of that class, so
they are loaded into `LegacyNASNet` (the same layout, inference only) and
`upgrade` copies every weight by its stable key into today's `NASNet`.
`keras.models.load_model` does this by itself: `NASNet.from_config` hands old
configurations to this module, and the loaders of the package upgrade the
result (`nasnet_app.load_model`).
"""

import keras
import tensorflow as tf

from nasnet_app.backbone import _weight_map, make_cell, make_stem, plan_cells
from nasnet_app.genotype import resolve_genotype
from nasnet_app.image_classifier import AuxiliaryHead

ARCHITECTURE_KEYS = (
    "genotype", "num_blocks", "penultimate_filters", "stem", "stem_filters", "filter_multiplier",
    "skip_reduction", "include_top", "input_shape", "pooling", "classes", "classifier_activation",
    "dropout", "drop_path_keep_prob", "drop_path_total_steps", "aux_head", "aux_weight",
    "bn_momentum", "bn_epsilon", "strided_pool_padding", "seed", "name",
)  # fmt: skip


class LegacyNASNet(keras.Model):
    """The layout of nasnet-app 0.1's `NASNet` (same attribute names, so its weights load)."""

    def __init__(self, config):
        config = {key: config[key] for key in ARCHITECTURE_KEYS if key in config}
        super().__init__(name=config.get("name", "nasnet"))
        self.legacy_config = config
        genotype = resolve_genotype(config.get("genotype", "nasnet_a"))
        momentum, epsilon = config.get("bn_momentum", 0.9997), config.get("bn_epsilon", 1e-3)
        self.stem_conv, self.stem_bn = make_stem(
            config.get("stem", "imagenet"), config.get("stem_filters", 32), momentum, epsilon
        )
        self.cell_layers = []
        plans = plan_cells(
            genotype, config.get("num_blocks", 4), config.get("penultimate_filters", 1056),
            config.get("stem", "imagenet"), config.get("stem_filters", 32),
            config.get("filter_multiplier", 2), config.get("skip_reduction", False),
            config.get("drop_path_keep_prob", 1.0),
        )  # fmt: skip
        padding = config.get("strided_pool_padding", "same")
        for plan in plans:
            self.cell_layers.append(make_cell(plan, genotype, padding, momentum, epsilon))
        self.plans = plans
        include_top, classes = config.get("include_top", True), config.get("classes", 1000)
        activation = config.get("classifier_activation", "softmax")
        if isinstance(activation, dict):
            activation = keras.activations.deserialize(activation)
        self.aux = None
        if config.get("aux_head") and include_top:
            self.aux = AuxiliaryHead(classes, activation, momentum, epsilon, name="aux")
        self.head_dropout = keras.layers.Dropout(config.get("dropout", 0.0), name="head_dropout")
        self.head_dense = None
        if include_top:
            self.head_dense = keras.layers.Dense(classes, activation=activation, name="head_dense")
        shape = config.get("input_shape") or (None, None, 3)
        self.build((None, *shape))

    def build(self, input_shape):
        keras.src.backend.compute_output_spec(self.call, keras.KerasTensor(tuple(input_shape)))
        self.built = True

    def call(self, inputs, training=False):
        outputs = [None, self.stem_bn(self.stem_conv(inputs), training=False)]
        aux_after = f"cell_{2 * self.legacy_config.get('num_blocks', 4) - 1}"
        for cell, plan in zip(self.cell_layers, self.plans):
            prev = None if plan.prev_index is None else outputs[plan.prev_index]
            current = outputs[plan.input_index]
            outputs.append(cell([current] if prev is None else [current, prev], training=False))
            if self.aux is not None and plan.name == aux_after and not self.aux.built:
                self.aux(outputs[-1])
        x = tf.nn.relu(outputs[-1])
        if self.head_dense is not None:
            return self.head_dense(tf.reduce_mean(x, axis=[1, 2]))
        pooling = self.legacy_config.get("pooling")
        if pooling == "avg":
            return tf.reduce_mean(x, axis=[1, 2])
        return tf.reduce_max(x, axis=[1, 2]) if pooling == "max" else x

    def weight_map(self):
        named = {"stem/conv": self.stem_conv, "stem/bn": self.stem_bn}
        for cell in self.cell_layers:
            named.update({f"{cell.name}/{k}": sub for k, sub in cell.named_layers().items()})
        if self.aux is not None:
            named.update({f"aux/{k}": sub for k, sub in self.aux.named_layers().items()})
        if self.head_dense is not None:
            named["head/dense"] = self.head_dense
        return _weight_map(named)


def upgrade(legacy_model):
    """Today's `NASNet` with the weights of a `LegacyNASNet`."""
    from nasnet_app.model import NASNet

    model = NASNet(**legacy_model.legacy_config)
    source = legacy_model.weight_map()
    for key, variable in model.weight_map().items():
        variable.assign(source[key])
    return model
