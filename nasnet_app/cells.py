"""The one generic cell layer: any `nasnet_app.genotype.Cell` becomes a Keras layer.

The wiring follows TF-Slim's `nasnet_utils.NasNetABaseCell`:

1. state 0: ReLU -> 1x1 conv -> BN of the current input (`base/...`);
2. state 1: the previous input, adjusted to the current one (`adjust/...`):
   a factorized reduction when a reduction cell lies between them, a 1x1
   projection when only the width differs, else unchanged;
3. each block applies its two operations (stride 2 on the cell inputs of a
   reduction cell), applies scheduled drop path while training, and combines;
4. the output concatenates the output states, after bringing any state of
   another size or width to the shape of the last block (`output/state<i>`).
"""

import keras
import tensorflow as tf
from keras import layers

from nasnet_app.genotype import Cell as CellGenotype
from nasnet_app.op_registry import get_op
from nasnet_app.ops import FactorizedReduction, Operation, batch_norm, build_sequence, conv


def cell_output_channels(cell, filters):
    """Channels of a cell's output: every output state is brought to the last block's width."""
    last = cell.blocks[-1]
    last_channels = 2 * filters if last.combine == "concat" else filters
    return len(cell.output_indices()) * last_channels


@keras.saving.register_keras_serializable(package="nasnet_app")
class NASCell(layers.Layer):
    """A normal or reduction cell generated from genotype data.

    Args:
        cell: a `nasnet_app.genotype.Cell` or its dict form.
        filters: channels of every operation output.
        reduction: whether ops on the cell inputs use stride 2.
        in_channels: channels of the current input (state 0 before `base`).
        prev_channels: channels of the previous input, or `None` when there is
            none (the first cell then uses its current input as state 1).
        prev_reduced: whether the previous input has twice the spatial size of
            the current one.
        drop_path_rate: `(1 - keep_prob) * depth_ratio`: the drop probability
            of each operation output at the end of training.
        strided_pool_padding, bn_momentum, bn_epsilon: see `Operation`.
    """

    def __init__(
        self,
        cell,
        filters,
        reduction,
        in_channels,
        prev_channels=None,
        prev_reduced=False,
        drop_path_rate=0.0,
        strided_pool_padding="same",
        bn_momentum=0.9997,
        bn_epsilon=1e-3,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = CellGenotype.from_data(cell)
        self.filters, self.reduction = filters, reduction
        self.in_channels, self.prev_channels, self.prev_reduced = (
            in_channels,
            prev_channels,
            prev_reduced,
        )
        self.drop_path_rate = drop_path_rate
        self.strided_pool_padding = strided_pool_padding
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Set by the task around a training step (see NASNetBackbone.set_drop_path_progress):
        # a functional graph cannot pass it as a call argument.
        self.drop_path_progress = None
        self._make_layers()

    def _bn(self, name):
        return batch_norm(name, self.bn_momentum, self.bn_epsilon)

    def _make_layers(self):
        filters = self.filters
        self.base = {"conv": conv(filters, 1, "base_conv"), "bn": self._bn("base_bn")}
        state1_channels = self._make_adjust()
        channels = [filters, state1_channels]
        self.blocks = []
        for b, block in enumerate(self.cell.blocks):
            sides = {}
            for side, index, op in zip(("left", "right"), block.inputs, block.ops):
                strides = 2 if self.reduction and index < 2 else 1
                sides[side] = Operation(
                    op,
                    filters,
                    channels[index],
                    strides,
                    self.strided_pool_padding,
                    self.bn_momentum,
                    self.bn_epsilon,
                    name=f"block{b}_{side}_{op}",
                )
            self.blocks.append(sides)
            channels.append(2 * filters if block.combine == "concat" else filters)
        self._make_output_adjust(channels)

    def _make_adjust(self):
        if self.prev_channels is None:
            self.adjust = None
            return self.in_channels
        if self.prev_reduced:
            self.adjust = FactorizedReduction(
                self.filters, 2, True, self.bn_momentum, self.bn_epsilon, name="adjust"
            )
        elif self.prev_channels != self.filters:
            self.adjust = FactorizedReduction(
                self.filters, 1, True, self.bn_momentum, self.bn_epsilon, name="adjust"
            )
        else:
            self.adjust = None
            return self.prev_channels
        return self.filters

    def _make_output_adjust(self, channels):
        reference = channels[-1]
        self.output_adjust = {}
        for index in self.cell.output_indices():
            smaller = self.reduction and index < 2
            if smaller or channels[index] != reference:
                self.output_adjust[f"state{index}"] = FactorizedReduction(
                    reference,
                    2 if smaller else 1,
                    False,
                    self.bn_momentum,
                    self.bn_epsilon,
                    name=f"output_state{index}",
                )

    def build(self, input_shape):
        # Every sub-layer's shape follows from the genotype: build them directly
        # rather than by tracing `call` (which made building NASNets slow).
        shapes = list(input_shape) if isinstance(input_shape[0], (list, tuple)) else [input_shape]
        x_shape = tuple(shapes[0])
        h0 = build_sequence([self.base["conv"], self.base["bn"]], x_shape)
        h1 = tuple(shapes[1]) if len(shapes) > 1 else x_shape
        if self.adjust is not None:
            self.adjust.build(h1)
            h1 = tuple(self.adjust.compute_output_shape(h1))
        states = [h0, h1]
        for block, sides in zip(self.cell.blocks, self.blocks):
            outputs = []
            for side, index in zip(("left", "right"), block.inputs):
                sides[side].build(states[index])
                outputs.append(tuple(sides[side].compute_output_shape(states[index])))
            if block.combine == "add":
                states.append(outputs[0])
            else:
                states.append((*outputs[0][:3], outputs[0][3] + outputs[1][3]))
        for index in self.cell.output_indices():
            adjust = self.output_adjust.get(f"state{index}")
            if adjust is not None:
                adjust.build(states[index])
        self._output_shape = (*states[-1][:3], cell_output_channels(self.cell, self.filters))
        self.built = True

    def compute_output_shape(self, input_shape):
        if not self.built:
            self.build(input_shape)
        shapes = list(input_shape) if isinstance(input_shape[0], (list, tuple)) else [input_shape]
        return (shapes[0][0], *self._output_shape[1:])

    def call(self, inputs, training=None, drop_path_progress=None):
        if drop_path_progress is None:
            drop_path_progress = self.drop_path_progress
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        x, prev = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        h0 = self.base["bn"](self.base["conv"](tf.nn.relu(x)), training=training)
        h1 = x if prev is None else prev
        if self.adjust is not None:
            h1 = self.adjust(h1, training=training)
        states = [h0, h1]
        for block, sides in zip(self.cell.blocks, self.blocks):
            outputs = []
            for side, index, op in zip(("left", "right"), block.inputs, block.ops):
                y = sides[side](states[index], training=training)
                if get_op(op).kind != "identity":
                    y = self._drop_path(y, training, drop_path_progress)
                outputs.append(y)
            if block.combine == "add":
                states.append(outputs[0] + outputs[1])
            else:
                states.append(tf.concat(outputs, axis=-1))
        selected = []
        for index in self.cell.output_indices():
            state = states[index]
            adjust = self.output_adjust.get(f"state{index}")
            selected.append(state if adjust is None else adjust(state, training=training))
        return tf.concat(selected, axis=-1)

    def _drop_path(self, x, training, progress):
        if not training or self.drop_path_rate <= 0.0:
            return x
        rate = self.drop_path_rate * (1.0 if progress is None else progress)
        keep = 1.0 - tf.cast(rate, x.dtype)
        shape = tf.stack([tf.shape(x)[0], 1, 1, 1])
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype)
        mask = tf.floor(keep + noise)
        return x / keep * mask

    def named_layers(self):
        """Weighted sub-layers by stable key (relative to this cell)."""
        named = {f"base/{k}": layer for k, layer in self.base.items()}
        if self.adjust is not None:
            named.update({f"adjust/{k}": layer for k, layer in self.adjust.parts.items()})
        for b, (block, sides) in enumerate(zip(self.cell.blocks, self.blocks)):
            for side, op in zip(("left", "right"), block.ops):
                for key, layer in sides[side].parts.items():
                    if key != "pool":
                        named[f"block{b}/{side}/{op}/{key}"] = layer
        for state, adjust in self.output_adjust.items():
            named.update({f"output/{state}/{k}": layer for k, layer in adjust.parts.items()})
        return named

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=self.cell.to_dict(),
            filters=self.filters,
            reduction=self.reduction,
            in_channels=self.in_channels,
            prev_channels=self.prev_channels,
            prev_reduced=self.prev_reduced,
            drop_path_rate=self.drop_path_rate,
            strided_pool_padding=self.strided_pool_padding,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            seed=self.seed,
        )
        return config
