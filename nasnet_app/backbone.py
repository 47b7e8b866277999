"""`NASNetBackbone`: a genotype's cells wired as a functional `keras.Model`, no head.

The layout follows TF-Slim's `nasnet.py`: a stem (ImageNet: a 3x3/2 conv and
two reduction cells; CIFAR: one 3x3 conv), then three stacks of `num_blocks`
normal cells with a reduction cell between stacks; filters double at each
reduction. `plan_cells` computes the wiring as plain data (which earlier
outputs each cell reads and how wide it is), so a detector that splits the
network (Faster R-CNN) or any other wiring reuses the same plan.
"""

import collections
import dataclasses

import keras
import numpy as np
from keras import layers

from nasnet_app.cells import NASCell, cell_output_channels
from nasnet_app.genotype import resolve_genotype
from nasnet_app.ops import STRIDED_POOL_PADDINGS, batch_norm

STEMS = ("imagenet", "cifar")


def fail(name, expectation, value):
    """Raises the project's argument error: "`name` must be .... Received: name=..."."""
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


def check_input_shape(input_shape):
    """`(height, width, channels)` with sizes >= 32 or None, as a tuple of ints/None."""
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if len(shape) != 3:
        fail("input_shape", "a tuple (height, width, channels)", input_shape)
    for size in shape[:2]:
        if size is not None and (not isinstance(size, (int, np.integer)) or size < 32):
            fail("input_shape", "at least 32 pixels high and wide (or None)", input_shape)
    if not isinstance(shape[2], (int, np.integer)) or shape[2] < 1:
        fail("input_shape", "a tuple with a known, positive channel count", input_shape)
    return tuple(None if s is None else int(s) for s in shape)


@dataclasses.dataclass(frozen=True)
class CellPlan:
    """One cell of a NASNet: its name, kind, width and the outputs it reads.

    `input_index` / `prev_index` index the list of outputs so far, where 0 is
    unused (no output before the stem) and 1 is the stem; `prev_index` is None
    for a cell without a previous input.
    """

    name: str
    endpoint: str
    reduction: bool
    filters: int
    input_index: int
    prev_index: int | None
    in_channels: int
    prev_channels: int | None
    prev_reduced: bool
    out_channels: int
    drop_path_rate: float


def _endpoint_name(cell_name):
    """TF-Slim end-point names: `Cell_3`, `Reduction_Cell_0`, `Stem`, `cell_stem_0`."""
    if cell_name == "stem_cell_1":
        return "Stem"
    if cell_name == "stem_cell_0":
        return "cell_stem_0"
    if cell_name.startswith("reduction_cell_"):
        return "Reduction_Cell_" + cell_name.rsplit("_", 1)[1]
    return "Cell_" + cell_name.rsplit("_", 1)[1]


def base_filters(genotype, penultimate_filters, filter_multiplier=2):
    """F, the first stack's filters, for a penultimate width P = F * outputs * multiplier**2."""
    per_filter = cell_output_channels(genotype.normal, 1) * filter_multiplier**2
    if penultimate_filters % per_filter or penultimate_filters < per_filter:
        fail(
            "penultimate_filters",
            f"a positive multiple of {per_filter} for this genotype "
            "(output states x filter_multiplier**2)",
            penultimate_filters,
        )
    return penultimate_filters // per_filter


def plan_cells(
    genotype,
    num_blocks,
    penultimate_filters,
    stem="imagenet",
    stem_filters=32,
    filter_multiplier=2,
    skip_reduction=False,
    drop_path_keep_prob=1.0,
):
    """The cells of a NASNet as a list of `CellPlan`, in order.

    Example:

    >>> from nasnet_app.backbone import plan_cells
    >>> [p.name for p in plan_cells("nasnet_a", 1, 48, "cifar", 12)]
    ['cell_0', 'reduction_cell_0', 'cell_1', 'reduction_cell_1', 'cell_2']
    """
    genotype = resolve_genotype(genotype)
    filters, m = base_filters(genotype, penultimate_filters, filter_multiplier), filter_multiplier
    states = [None, (stem_filters, 0)]  # (channels, spatial level) of every output so far
    total = 3 * num_blocks + 2 + (2 if stem == "imagenet" else 0)
    plans = []

    def add(name, reduction, width, prev_index):
        in_channels, level = states[-1]
        prev = states[prev_index] if prev_index >= 0 else None
        cell = genotype.reduction if reduction else genotype.normal
        plans.append(
            CellPlan(
                name=name,
                endpoint=_endpoint_name(name),
                reduction=reduction,
                filters=width,
                input_index=len(states) - 1,
                prev_index=prev_index if prev is not None else None,
                in_channels=in_channels,
                prev_channels=None if prev is None else prev[0],
                prev_reduced=prev is not None and prev[1] < level,
                out_channels=cell_output_channels(cell, width),
                drop_path_rate=(len(plans) + 1) / total * (1.0 - drop_path_keep_prob),
            )
        )
        states.append((plans[-1].out_channels, level + int(reduction)))

    if stem == "imagenet":
        for i, width in enumerate((filters // m**2, filters // m)):
            add(f"stem_cell_{i}", True, width, len(states) - 2)
    reduction_at = {num_blocks: 0, 2 * num_blocks: 1}
    for i in range(3 * num_blocks):
        skip_prev = len(states) - 2
        if i in reduction_at:
            filters *= m
            add(f"reduction_cell_{reduction_at[i]}", True, filters, len(states) - 2)
        add(f"cell_{i}", False, filters, skip_prev if skip_reduction else len(states) - 2)
    return plans


def make_cell(plan, genotype, strided_pool_padding, bn_momentum, bn_epsilon, seed=None):
    """The `NASCell` layer of one `CellPlan`."""
    cell = genotype.reduction if plan.reduction else genotype.normal
    return NASCell(
        cell.to_dict(),
        plan.filters,
        plan.reduction,
        plan.in_channels,
        prev_channels=plan.prev_channels,
        prev_reduced=plan.prev_reduced,
        drop_path_rate=plan.drop_path_rate,
        strided_pool_padding=strided_pool_padding,
        bn_momentum=bn_momentum,
        bn_epsilon=bn_epsilon,
        seed=seed,
        name=plan.name,
    )


def make_stem(stem, stem_filters, bn_momentum, bn_epsilon):
    """The stem convolution and its batch norm (`stem_conv`, `stem_bn`)."""
    imagenet = stem == "imagenet"
    conv = layers.Conv2D(
        stem_filters, 3, strides=2 if imagenet else 1, padding="valid" if imagenet else "same",
        use_bias=False, kernel_initializer="he_normal", name="stem_conv",
    )  # fmt: skip
    return conv, batch_norm("stem_bn", bn_momentum, bn_epsilon)


def run_cells(x, cells, plans, outputs=None):
    """Applies `cells` (with their `plans`) to the stem output `x`; returns every output."""
    outputs = outputs if outputs is not None else [None, x]
    for cell, plan in zip(cells, plans):
        current = outputs[plan.input_index]
        prev = None if plan.prev_index is None else outputs[plan.prev_index]
        outputs.append(cell([current] if prev is None else [current, prev]))
    return outputs


@keras.saving.register_keras_serializable(package="nasnet_app")
class NASNetBackbone(keras.Model):
    """The cells of a NASNet generated from a genotype, as a functional model.

    The output is the last cell's output after ReLU (keras.applications'
    `include_top=False` output). Every cell is a layer named after its place
    (`stem_conv`, `stem_bn`, `stem_cell_0`, `cell_0`, `reduction_cell_0`,
    ...), so `backbone.get_layer("cell_7").output` is its feature map, and
    `feature_outputs` maps TF-Slim's end-point names (`Stem`, `Cell_7`,
    `Reduction_Cell_1`, ...) to those tensors.

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
        input_shape: `(height, width, channels)`; height and width may be `None`.
        drop_path_keep_prob: scheduled drop path keep probability of the last
            cell at the end of training (1.0 disables drop path).
        bn_momentum, bn_epsilon: BatchNormalization settings.
        strided_pool_padding: `"same"` (TF-Slim) or `"zeros"`
            (keras.applications) border rule of stride-2 pools.
        seed: seed of the drop path noise.

    Example:

    >>> import numpy as np
    >>> from nasnet_app import NASNetBackbone
    >>> backbone = NASNetBackbone("nasnet_a", num_blocks=1, penultimate_filters=48,
    ...     stem="cifar", stem_filters=12, input_shape=(32, 32, 3))
    >>> backbone.predict(np.zeros((1, 32, 32, 3)), verbose=0).shape
    (1, 8, 8, 48)
    >>> tuple(backbone.get_layer("cell_0").output.shape)
    (None, 32, 32, 24)
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
        input_shape=None,
        drop_path_keep_prob=1.0,
        bn_momentum=0.9997,
        bn_epsilon=1e-3,
        strided_pool_padding="same",
        seed=None,
        name="nasnet_backbone",
        **kwargs,
    ):
        genotype = resolve_genotype(genotype)
        _validate(num_blocks, stem, stem_filters, filter_multiplier, drop_path_keep_prob,
                  strided_pool_padding)  # fmt: skip
        shape = check_input_shape(input_shape)
        plans = plan_cells(
            genotype, num_blocks, penultimate_filters, stem, stem_filters, filter_multiplier,
            skip_reduction, drop_path_keep_prob,
        )  # fmt: skip
        inputs = keras.Input(shape=shape or (None, None, 3), name="images")
        stem_conv, stem_bn = make_stem(stem, stem_filters, bn_momentum, bn_epsilon)
        stem_output = stem_bn(stem_conv(inputs))
        cells = [
            make_cell(
                plan,
                genotype,
                strided_pool_padding,
                bn_momentum,
                bn_epsilon,
                None if seed is None else seed + i,
            )  # fmt: skip
            for i, plan in enumerate(plans)
        ]
        outputs = run_cells(stem_output, cells, plans)
        features = layers.ReLU(name="final_relu")(outputs[-1])
        super().__init__(inputs=inputs, outputs=features, name=name, **kwargs)

        self.genotype, self.plans, self.cells = genotype, plans, cells
        self.stem_conv, self.stem_bn = stem_conv, stem_bn
        self.num_blocks, self.penultimate_filters = num_blocks, penultimate_filters
        self.stem, self.stem_filters = stem, stem_filters
        self.filter_multiplier, self.skip_reduction = filter_multiplier, skip_reduction
        self.drop_path_keep_prob = drop_path_keep_prob
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        self.strided_pool_padding, self.seed = strided_pool_padding, seed
        self.input_shape_arg = shape
        self.filters = plans[-1].filters // filter_multiplier**2
        points = collections.OrderedDict()
        if stem == "cifar":
            points["Stem"] = stem_output
        for plan, output in zip(plans, outputs[2:]):
            points[plan.endpoint] = output
        self.feature_outputs = points

    @property
    def image_size(self):
        """`(height, width)` of a fixed-size input, else None."""
        shape = self.input_shape_arg
        if shape is None or shape[0] is None or shape[1] is None:
            return None
        return shape[0], shape[1]

    def set_drop_path_progress(self, progress):
        """Scales every cell's drop rate by `progress` (a scalar tensor, or None for 1)."""
        for cell in self.cells:
            cell.drop_path_progress = progress

    def named_layers(self):
        """Every weighted layer under its stable key (see `weight_map`)."""
        named = {"stem/conv": self.stem_conv, "stem/bn": self.stem_bn}
        for cell in self.cells:
            for key, sub in cell.named_layers().items():
                named[f"{cell.name}/{key}"] = sub
        return named

    def weight_map(self):
        """Every variable under a stable key, e.g. `cell_0/block0/left/sep_conv_5x5/sep1/depthwise_kernel`."""
        return _weight_map(self.named_layers())

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(self.architecture_config())
        return config

    def architecture_config(self):
        """The constructor arguments that define the network (no name)."""
        return {
            "genotype": self.genotype.to_dict(),
            "num_blocks": self.num_blocks,
            "penultimate_filters": self.penultimate_filters,
            "stem": self.stem,
            "stem_filters": self.stem_filters,
            "filter_multiplier": self.filter_multiplier,
            "skip_reduction": self.skip_reduction,
            "input_shape": self.input_shape_arg,
            "drop_path_keep_prob": self.drop_path_keep_prob,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "strided_pool_padding": self.strided_pool_padding,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("dtype", None)
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, **overrides):
        """A backbone with the architecture of a preset (a `nasnet_app.presets.ModelConfig`,
        `"mobile"`, `"large"`, `"cifar"`, or a zoo `Preset` record), with any argument
        overridden. Zoo presets by name (`"nasnet_a_mobile_imagenet"`) and their
        weights come from `nasnet_app.zoo` (`zoo.load`, `zoo.get_preset`), which the
        core never imports.

        Example:

        >>> from nasnet_app import NASNetBackbone
        >>> NASNetBackbone.from_preset("mobile").count_params()
        4269716
        """
        from nasnet_app.presets import get_architecture

        return cls(**{**get_architecture(preset).backbone_kwargs(), **overrides})


def _validate(num_blocks, stem, stem_filters, multiplier, keep, padding):
    if not isinstance(num_blocks, int) or num_blocks < 1:
        fail("num_blocks", "a positive integer", num_blocks)
    if stem not in STEMS:
        fail("stem", "'imagenet' or 'cifar'", stem)
    if not isinstance(stem_filters, int) or stem_filters < 1:
        fail("stem_filters", "a positive integer", stem_filters)
    if not isinstance(multiplier, int) or multiplier < 1:
        fail("filter_multiplier", "a positive integer", multiplier)
    if not 0.0 < keep <= 1.0:
        fail("drop_path_keep_prob", "in (0, 1]", keep)
    if padding not in STRIDED_POOL_PADDINGS:
        fail("strided_pool_padding", "'same' or 'zeros'", padding)


def _weight_map(named_layers):
    weights = {}
    for key, layer in named_layers.items():
        for variable in layer.weights:
            weights[f"{key}/{variable.name}"] = variable
    return weights
