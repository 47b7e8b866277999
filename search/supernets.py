"""Supernets: one network holding the weights of every candidate operation.

Weight sharing (ENAS: Pham et al., 2018): each architecture of a space is a
path through the supernet, so a child costs one minibatch, not a training run.
The architecture is an int tensor argument of `call(images, actions)` (the
space's action list); every choice is a `tf.switch_case`, which runs only the
chosen branch, so one `tf.function` trace serves every architecture at the
cost of the chosen child. The choice of an operation has a backward that
runs only the chosen operation (`switch_recomputed`): a separable
convolution from the intermediates its forward kept, the others rerun (a
plain `switch_case` gradient would keep every branch's intermediates). A
NASNet cell has one backward for all its blocks (`cell_blocks`), so the
choice of a block's inputs costs no zero gradients for the states not
read. All layers are built in the constructor (every branch runs once on a
dummy batch), before any trace.

BatchNorm in a supernet always normalises with the statistics of the batch
(`BatchStatNormalization`): moving averages would mix the statistics of all
the architectures that shared them.

* `NASBench201Supernet`: the NAS-Bench-201 skeleton (Dong & Yang, 2020): 3x3
  stem of C channels, three stages of N cells of C, 2C, 4C channels joined by
  residual reduction blocks, BN-ReLU, global pool, classifier; each cell's 6
  edges choose among the space's 5 operations.
* `NASNetMicroSupernet`: the ENAS micro space: cells of B blocks, each block
  adds two operations (default ENAS's five: sep 3x3, sep 5x5, avg 3x3,
  max 3x3, identity) applied to two chosen earlier states; the unused states
  are concatenated, and the layers that read them gather the kernel rows of
  the states present (`GatheredConv`), so a path costs what its child costs.

`build_nasbench201_child` builds one NAS-Bench-201 architecture as a plain
functional Keras model with the same layer names, so `copy_supernet_weights`
can give it the supernet's weights (the supernet's correctness check).

Example:

>>> import numpy as np
>>> net = NASBench201Supernet(channels=4, cells_per_stage=1, input_shape=(16, 16, 3))
>>> logits = net(np.zeros((2, 16, 16, 3), "float32"), np.array([3, 1, 2, 4, 0, 3]))
>>> tuple(logits.shape)
(2, 10)
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from nasnet_app.op_registry import get_op
from nasnet_app.search.spaces import NB201_EDGES, NB201_OPS, NASBench201Space, NASNetCellSpace

# ENAS micro's five operations (Pham et al., 2018), in our op names.
ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")
NB201_PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")
SUPPORTED_NASNET_OPS = ENAS_OPS + ("sep_conv_7x7", "max_pool_5x5", "max_pool_7x7", "conv_1x1")
BN_EPSILON = 1e-5


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _check_positive_int(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        _fail(field, "a positive integer", value)
    return int(value)


def _check_input_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if shape is None or len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < 8:
        _fail("input_shape", "(height, width, 3) with height and width >= 8", input_shape)
    return tuple(int(s) for s in shape)


class BatchStatNormalization(layers.Layer):
    """BatchNorm that always uses the batch's own mean and variance (no moving averages)."""

    def __init__(self, affine=True, epsilon=BN_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.affine, self.epsilon = bool(affine), float(epsilon)

    def build(self, input_shape):
        if self.affine:
            channels = (int(input_shape[-1]),)
            self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta")

    def call(self, x):
        if x.shape.rank == 4:
            channels = tf.shape(x)[-1:]
            scale = self.gamma if self.affine else tf.ones(channels, x.dtype)
            offset = self.beta if self.affine else tf.zeros(channels, x.dtype)
            return _batch_stat_norm(x, scale, offset, self.epsilon)
        mean, variance = tf.nn.moments(x, axes=list(range(x.shape.rank - 1)), keepdims=True)
        y = (x - mean) * tf.math.rsqrt(variance + self.epsilon)
        return y * self.gamma + self.beta if self.affine else y


def _batch_stat_norm(x, scale, offset, epsilon=BN_EPSILON):
    # The fused kernel (what Keras's BatchNormalization runs in training) is
    # several times faster on CPU than moments plus elementwise ops.
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, scale, offset, epsilon=epsilon, is_training=True)
    return y


def _conv(filters, kernel, name, strides=1):
    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=name
    )


class ReLUConvBN(layers.Layer):
    """ReLU -> k x k conv -> BN (NAS-Bench-201's `nor_conv_kxk`)."""

    def __init__(self, filters, kernel, strides=1, affine=True, **kwargs):
        super().__init__(**kwargs)
        self.conv = _conv(filters, kernel, f"{self.name}_conv", strides)
        self.bn = BatchStatNormalization(affine, name=f"{self.name}_bn")

    def call(self, x):
        return self.bn(self.conv(tf.nn.relu(x)))


class ResidualReduction(layers.Layer):
    """NAS-Bench-201's reduction block: two ReLU-conv-BN (the first of stride 2)
    plus a shortcut of 2x2 average pooling and a 1x1 conv."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv_a = ReLUConvBN(filters, 3, strides=2, name=f"{self.name}_a")
        self.conv_b = ReLUConvBN(filters, 3, name=f"{self.name}_b")
        self.shortcut = _conv(filters, 1, f"{self.name}_shortcut")

    def call(self, x):
        residual = self.shortcut(tf.nn.avg_pool2d(x, 2, 2, "VALID"))
        return residual + self.conv_b(self.conv_a(x))


def _pool(x, kind, size):
    pool = tf.nn.avg_pool2d if kind == "avg" else tf.nn.max_pool2d
    # TensorFlow's SAME average pooling counts only the valid pixels (as
    # NAS-Bench-201's count_include_pad=False).
    return pool(x, size, 1, "SAME")


class Supernet(keras.Model):
    """Shared machinery: building every branch, then one `tf.switch_case` per choice."""

    def __init__(self, space, input_shape, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        self.image_shape = _check_input_shape(input_shape)
        self.num_classes = _check_positive_int("num_classes", num_classes)
        self.num_decisions = len(space.decisions())
        self._building = False

    def _build_every_branch(self):
        """Runs every branch once, eagerly, so no layer is created inside a trace."""
        self._building = True
        try:
            dummy = np.zeros((2, *self.image_shape), np.float32)
            self(dummy, np.zeros(self.num_decisions, np.int32))
        finally:
            self._building = False

    def _choose_op(self, index, x, functions):
        """`functions[index](x)`; its gradient runs only the chosen branch (`switch_recomputed`)."""
        if self._building:
            outputs = [function(x) for function in functions]
            return outputs[0]
        return switch_recomputed(index, x, functions)


def switch_recomputed(index, x, functions):
    """`tf.switch_case(index, [f(x) for f in functions])` whose backward runs only the branch taken.

    The gradient of a plain `switch_case` makes its forward pass output every
    intermediate of every branch (zero tensors for those not taken), which on
    a block of five candidate ops costs more than running the chosen op
    twice. Here the backward is itself a `switch_case`: a plain function is
    rerun under a tape; a branch with `num_saved`, `forward_saving(x)` and
    `backward_saved(dy, saved)` (`SeparableConvOp`) hands its intermediates
    out of the forward `switch_case` and computes its gradients from them
    without rerunning. The variables of the branches not taken get zeros.
    """

    @tf.custom_gradient
    def run(x):
        y, saved = _forward_switch(index, x, functions)

        def grad(dy, variables=None):
            return _backward_switch(index, x, saved, dy, functions, list(variables or []))

        return y, grad

    return run(x)


def _forward_switch(index, x, functions):
    """`functions[index](x)` and what its backward needs (`switch_recomputed`)."""
    slots = max([getattr(f, "num_saved", 0) for f in functions])

    def forward(function):
        def branch():
            if hasattr(function, "forward_saving"):
                y, saved = function.forward_saving(x)
            else:
                y, saved = function(x), []
            # Slots a branch does not fill hold `x` itself: no copy, never read.
            return [y, *saved, *[x] * (slots - len(saved))]

        return branch

    y, *saved = tf.switch_case(index, [forward(f) for f in functions])
    return y, saved


def _backward_switch(index, x, saved, dy, functions, variables):
    """The gradients of `functions[index](x)` for `x` and `variables` (zeros
    for those the branch taken does not read), as (dx, [grads])."""
    keys = [_variable_key(v) for v in variables]

    def recomputed(function):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = function(x)
        return tape.gradient(out, [x, *variables], output_gradients=dy)

    def from_saved(function):
        dx, pairs = function.backward_saved(dy, saved[: function.num_saved])
        grads = [None] * len(variables)
        for variable, gradient in pairs:
            grads[keys.index(_variable_key(variable))] = gradient
        return [dx, *grads]

    def backward(function):
        def branch():
            saves = hasattr(function, "backward_saved")
            grads = from_saved(function) if saves else recomputed(function)
            return [
                tf.zeros_like(s) if g is None else tf.convert_to_tensor(g)
                for g, s in zip(grads, [x, *variables])
            ]

        return branch

    dx, *grads = tf.switch_case(index, [backward(f) for f in functions])
    return dx, grads


def cell_blocks(inputs, choices, functions, side_variables):
    """The states of a cell of add-blocks: `[*inputs, *block outputs]`.

    Block k reads two of the states before it, `states[i]`, applies one of
    its candidate functions to each and adds the results. Written as
    `switch_recomputed` calls, each state's gradient would be the sum of one
    term for every choice that could have read it, zero tensors for all the
    choices that did not (240 zero fills and their sums a step in the ENAS
    supernet). Here the whole cell has one backward: it walks the blocks in
    reverse and adds each chosen input's gradient to the one state it came
    from, as the standalone child does.

    Args:
        inputs: the cell's input states (the same shape as every block output).
        choices: per block side (2 a block, in order), `(input index, op
            index)` as int scalar tensors.
        functions: per block side, its candidate functions (as for
            `switch_recomputed`).
        side_variables: per block side, the variables its functions read.
    """
    num_inputs = len(inputs)
    side_keys = [[_variable_key(v) for v in side] for side in side_variables]

    @tf.custom_gradient
    def run(*inputs):
        # Identities so the cell's inputs are outputs too: their gradients
        # from outside seed the backward's sums (no zero fills).
        states = [tf.identity(s) for s in inputs]
        records = []
        for block in range(len(choices) // 2):
            outputs = []
            for side in (2 * block, 2 * block + 1):
                input_index, op_index = choices[side]
                x = tf.switch_case(input_index, [lambda s=s: s for s in states])
                y, saved = _forward_switch(op_index, x, functions[side])
                records.append((x, saved))
                outputs.append(y)
            states.append(outputs[0] + outputs[1])

        def grad(*upstream, variables=None):
            variables = list(variables or [])
            position = {_variable_key(v): i for i, v in enumerate(variables)}
            sums = [tf.zeros_like(s) if g is None else g for g, s in zip(upstream, states)]
            var_grads = [None] * len(variables)
            for side in reversed(range(len(choices))):
                input_index, op_index = choices[side]
                x, saved = records[side]
                output = num_inputs + side // 2  # this side's block; it reads only states before it
                dx, grads = _backward_switch(
                    op_index, x, saved, sums[output], functions[side], side_variables[side]
                )
                sums[:output] = _add_at(input_index, sums[:output], dx)
                for key, g in zip(side_keys[side], grads):
                    # Eagerly, only the branches taken read (and list) their variables.
                    i = position.get(key)
                    if i is not None:
                        var_grads[i] = g if var_grads[i] is None else var_grads[i] + g
            var_grads = [tf.zeros_like(v) if g is None else g for g, v in zip(var_grads, variables)]
            return sums[:num_inputs], var_grads

        return states, grad

    return run(*inputs)


def _add_at(index, tensors, value):
    """`tensors` with `value` added to `tensors[index]`; the others pass through uncopied."""

    def branch(j):
        return lambda: [t + value if i == j else t for i, t in enumerate(tensors)]

    return tf.switch_case(index, [branch(j) for j in range(len(tensors))])


def _variable_key(variable):
    """One key for a Keras variable, its `tf.Variable` and (under a distribution
    strategy) the distributed variable and each of its components."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    container = getattr(variable, "_distributed_container", None)
    if container is not None:
        variable = container()
    return id(variable)


class NASBench201Supernet(Supernet):
    """The NAS-Bench-201 network with every edge holding all candidate operations.

    Args:
        channels: C, the stem and first stage's channels (NAS-Bench-201: 16).
        cells_per_stage: N, cells per stage (NAS-Bench-201: 5).
        num_classes: classifier outputs.
        input_shape: `(height, width, 3)`.
        space: a `NASBench201Space` (its ops must be NAS-Bench-201's names).

    `call(images, actions)`: `actions` is the space's int list of 6 op indices.
    """

    def __init__(
        self,
        channels=16,
        cells_per_stage=5,
        num_classes=10,
        input_shape=(32, 32, 3),
        space=None,
        **kwargs,
    ):
        space = NASBench201Space() if space is None else space
        if not isinstance(space, NASBench201Space) or set(space.ops) - set(NB201_OPS):
            _fail("space", f"a NASBench201Space with ops from {', '.join(NB201_OPS)}", space)
        super().__init__(space, input_shape, num_classes, **kwargs)
        self.channels = _check_positive_int("channels", channels)
        self.cells_per_stage = _check_positive_int("cells_per_stage", cells_per_stage)
        self.stem_conv = _conv(self.channels, 3, "stem_conv")
        self.stem_bn = BatchStatNormalization(name="stem_bn")
        self.cells, self.reductions = [], []
        for stage in range(3):
            filters = self.channels * 2**stage
            if stage:
                self.reductions.append(ResidualReduction(filters, name=f"reduction{stage}"))
            for c in range(self.cells_per_stage):
                self.cells.append(self._make_cell(filters, f"stage{stage}_cell{c}"))
        self.head_bn = BatchStatNormalization(name="head_bn")
        self.classifier = layers.Dense(self.num_classes, name="classifier")
        self._build_every_branch()

    def _make_cell(self, filters, prefix):
        edges = []
        for e in range(len(NB201_EDGES)):
            ops = {}
            for op in self.space.ops:
                if op not in NB201_PARAMETER_FREE:
                    kernel = 1 if op == "nor_conv_1x1" else 3
                    ops[op] = ReLUConvBN(
                        filters, kernel, affine=False, name=f"{prefix}_edge{e}_{op}"
                    )
            edges.append(ops)
        return edges

    def _edge(self, x, op, layer):
        if op == "none":
            return tf.zeros_like(x)
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return _pool(x, "avg", 3)
        return layer(x)

    def _cell(self, x, edges, actions):
        nodes = [x]
        for e, (to_node, from_node) in enumerate(NB201_EDGES):
            source = nodes[from_node]
            functions = [
                (lambda s, op=op, ops=edges[e]: self._edge(s, op, ops.get(op)))
                for op in self.space.ops
            ]
            value = self._choose_op(actions[e], source, functions)
            if to_node == len(nodes):
                nodes.append(value)
            else:
                nodes[to_node] = nodes[to_node] + value
        return nodes[-1]

    def call(self, images, actions):
        actions = tf.cast(actions, tf.int32)
        x = self.stem_bn(self.stem_conv(images))
        cells = iter(self.cells)
        for stage in range(3):
            if stage:
                x = self.reductions[stage - 1](x)
            for _ in range(self.cells_per_stage):
                x = self._cell(x, next(cells), actions)
        x = tf.reduce_mean(tf.nn.relu(self.head_bn(x)), axis=[1, 2])
        return self.classifier(x)

    def get_config(self):
        return {
            **super().get_config(),
            "kind": "nasbench201",
            "channels": self.channels,
            "cells_per_stage": self.cells_per_stage,
            "num_classes": self.num_classes,
        }


def build_nasbench201_child(
    arch, channels=16, cells_per_stage=5, num_classes=10, input_shape=(32, 32, 3)
):
    """One NAS-Bench-201 architecture as a functional Keras model (batch-statistics BN).

    Layer names match `NASBench201Supernet`'s, so `copy_supernet_weights`
    gives it the supernet's weights for this architecture.

    Args:
        arch: the arch string (or the space's action list).
    """
    space = NASBench201Space()
    actions = space.encode(arch) if isinstance(arch, str) else space.check_actions(arch)
    inputs = keras.Input(_check_input_shape(input_shape))
    x = BatchStatNormalization(name="stem_bn")(_conv(channels, 3, "stem_conv")(inputs))
    for stage in range(3):
        filters = channels * 2**stage
        if stage:
            x = ResidualReduction(filters, name=f"reduction{stage}")(x)
        for c in range(cells_per_stage):
            x = _child_cell(x, [space.ops[a] for a in actions], filters, f"stage{stage}_cell{c}")
    x = layers.ReLU()(BatchStatNormalization(name="head_bn")(x))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(inputs, outputs, name="nasbench201_child")


def _child_cell(x, ops, filters, prefix):
    nodes, edge = [x], 0
    for node in range(1, 4):
        values = []
        for source in range(node):
            values.append(_child_edge(nodes[source], ops[edge], filters, f"{prefix}_edge{edge}"))
            edge += 1
        nodes.append(values[0] if len(values) == 1 else layers.Add()(values))
    return nodes[-1]


def _child_edge(x, op, filters, prefix):
    if op == "none":
        return layers.Lambda(tf.zeros_like)(x)
    if op == "skip_connect":
        return layers.Identity()(x)
    if op == "avg_pool_3x3":
        return layers.AveragePooling2D(3, 1, padding="same")(x)
    kernel = 1 if op == "nor_conv_1x1" else 3
    return ReLUConvBN(filters, kernel, affine=False, name=f"{prefix}_{op}")(x)


def _named_layers(model):
    return {layer.name: layer for layer in model._flatten_layers(include_self=False)}


def copy_supernet_weights(supernet, child):
    """Copies the supernet's weights into every `child` layer of the same name; returns the count."""
    source = _named_layers(supernet)
    copied = 0
    for name, layer in _named_layers(child).items():
        leaf = not list(layer._flatten_layers(include_self=False))
        if name in source and layer.weights and leaf:
            layer.set_weights(source[name].get_weights())
            copied += 1
    return copied


class SeparableConvOp(layers.Layer):
    """(ReLU -> depthwise k x k -> pointwise 1x1 -> BN) twice (ENAS / NASNet `sep_conv_kxk`).

    `forward_saving` and `backward_saved` let `switch_recomputed` keep the
    intermediates of the forward pass instead of rerunning it in the
    backward: per half the ReLU output, the depthwise output, the pointwise
    output and the fused BN's saved statistics.
    """

    num_saved = 12

    def __init__(self, filters, kernel, **kwargs):
        super().__init__(**kwargs)
        self.parts = []
        for i in range(2):
            self.parts.append(
                (
                    layers.DepthwiseConv2D(
                        kernel, padding="same", use_bias=False, name=f"{self.name}_dw{i}"
                    ),
                    _conv(filters, 1, f"{self.name}_pw{i}"),
                    BatchStatNormalization(name=f"{self.name}_bn{i}"),
                )
            )

    def call(self, x):
        for depthwise, pointwise, bn in self.parts:
            x = bn(pointwise(depthwise(tf.nn.relu(x))))
        return x

    def forward_saving(self, x):
        """`call(x)` and the 12 tensors `backward_saved` needs."""
        saved = []
        for depthwise, pointwise, bn in self.parts:
            relu = tf.nn.relu(x)
            spatial = tf.nn.depthwise_conv2d(relu, depthwise.kernel, [1, 1, 1, 1], "SAME")
            mixed = tf.nn.conv2d(spatial, pointwise.kernel, 1, "SAME")
            empty = tf.constant([], x.dtype)
            x, _, _, *reserves = tf.raw_ops.FusedBatchNormV3(
                x=mixed,
                scale=bn.gamma,
                offset=bn.beta,
                mean=empty,
                variance=empty,
                epsilon=bn.epsilon,
                is_training=True,
            )
            saved += [relu, spatial, mixed, *reserves]
        return x, saved

    def backward_saved(self, dy, saved):
        """The gradient of `call` from `forward_saving`'s tensors: (dx, [(variable, grad)])."""
        pairs = []
        for i in (1, 0):
            depthwise, pointwise, bn = self.parts[i]
            relu, spatial, mixed, *reserves = saved[6 * i : 6 * i + 6]
            dmixed, dgamma, dbeta, _, _ = tf.raw_ops.FusedBatchNormGradV3(
                y_backprop=dy,
                x=mixed,
                scale=bn.gamma,
                reserve_space_1=reserves[0],
                reserve_space_2=reserves[1],
                reserve_space_3=reserves[2],
                epsilon=bn.epsilon,
                is_training=True,
            )
            kernel = tf.convert_to_tensor(pointwise.kernel)
            dspatial = tf.compat.v1.nn.conv2d_backprop_input(
                tf.shape(spatial), kernel, dmixed, [1, 1, 1, 1], "SAME"
            )
            dpointwise = tf.compat.v1.nn.conv2d_backprop_filter(
                spatial, tf.shape(kernel), dmixed, [1, 1, 1, 1], "SAME"
            )
            kernel = tf.convert_to_tensor(depthwise.kernel)
            drelu = tf.nn.depthwise_conv2d_backprop_input(
                tf.shape(relu), kernel, dspatial, [1, 1, 1, 1], "SAME"
            )
            ddepthwise = tf.nn.depthwise_conv2d_backprop_filter(
                relu, tf.shape(kernel), dspatial, [1, 1, 1, 1], "SAME"
            )
            # relu > 0 exactly where its input is: the ReLU's gradient from its output.
            dy = tf.raw_ops.ReluGrad(gradients=drelu, features=relu)
            pairs += [
                (bn.gamma, dgamma),
                (bn.beta, dbeta),
                (pointwise.kernel, dpointwise),
                (depthwise.kernel, ddepthwise),
            ]
        return dy, pairs


def _stacked(initializer, copies):
    """An initializer of `copies` independent draws of `initializer`, stacked on a new axis 0."""
    initializer = keras.initializers.get(initializer)

    def initialize(shape, dtype=None):
        return tf.stack([initializer(shape[1:], dtype=dtype) for _ in range(copies)])

    return initialize


class InputIndexedSeparableConv(layers.Layer):
    """`SeparableConvOp` with its own weights for each state its block may read.

    ENAS's `micro_child` indexes every weight of a block's separable conv by
    the chosen input (`w[prev_cell]`): the op never sees two different
    inputs through one set of weights. `call(x, index)` gathers the slices of
    state `index` (of `num_inputs`); the cost is the plain op's.
    """

    def __init__(self, filters, kernel, num_inputs, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel = int(filters), int(kernel)
        self.num_inputs = _check_positive_int("num_inputs", num_inputs)

    def build(self, input_shape):
        n, k = self.num_inputs, self.kernel
        self.stacks = []
        channels = int(input_shape[-1])
        for i in range(2):
            depthwise = self.add_weight(
                shape=(n, k, k, channels, 1),
                initializer=_stacked("glorot_uniform", n),
                name=f"dw{i}",
            )
            pointwise = self.add_weight(
                shape=(n, 1, 1, channels, self.filters),
                initializer=_stacked("glorot_uniform", n),
                name=f"pw{i}",
            )
            gamma = self.add_weight(shape=(n, self.filters), initializer="ones", name=f"gamma{i}")
            beta = self.add_weight(shape=(n, self.filters), initializer="zeros", name=f"beta{i}")
            self.stacks.append((depthwise, pointwise, gamma, beta))
            channels = self.filters

    def call(self, x, index):
        for depthwise, pointwise, gamma, beta in self.stacks:
            x = tf.nn.depthwise_conv2d(
                tf.nn.relu(x), tf.gather(depthwise, index), [1, 1, 1, 1], "SAME"
            )
            x = tf.nn.conv2d(x, tf.gather(pointwise, index), 1, "SAME")
            x = _batch_stat_norm(x, tf.gather(gamma, index), tf.gather(beta, index))
        return x


class FactorizedReduce(layers.Layer):
    """ReLU and two shifted strided 1x1 convs, concatenated, then BN (halves H and W)."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.path1 = _conv(filters // 2, 1, f"{self.name}_path1", strides=2)
        self.path2 = _conv(filters - filters // 2, 1, f"{self.name}_path2", strides=2)
        self.bn = BatchStatNormalization(name=f"{self.name}_bn")

    def call(self, x):
        x = tf.nn.relu(x)
        return self.bn(tf.concat([self.path1(x), self.path2(_shift(x))], axis=-1))


def _shift(x):
    """The image moved one pixel up and left (the second path of a factorized reduction)."""
    return tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1:, 1:, :]


class _GatheredKernel(layers.Layer):
    """A kernel with rows for each of `num_states` states of `width` channels, of which a
    call uses only the rows of the states present (`indices`, ascending)."""

    def __init__(self, units, num_states, width, **kwargs):
        super().__init__(**kwargs)
        self.units, self.num_states, self.width = units, num_states, width

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.num_states, self.width, self.units),
            initializer="glorot_uniform",
            name="kernel",
        )

    def rows(self, indices):
        return tf.reshape(tf.gather(self.kernel, indices), [-1, self.units])


class GatheredConv(_GatheredKernel):
    """A 1x1 conv over the concatenation of some of `num_states` states of `width` channels.

    Which states are present is known only at run time (`indices`, ascending),
    so the kernel holds rows for all of them and the call gathers the rows of
    the present ones (as ENAS's `micro_child` does): the conv costs what it
    costs in the standalone child, whose cell output concatenates only its
    unused states.
    """

    def __init__(self, filters, num_states, width, strides=1, **kwargs):
        super().__init__(filters, num_states, width, **kwargs)
        self.strides = strides

    def call(self, x, indices):
        kernel = tf.reshape(self.rows(indices), [1, 1, -1, self.units])
        return tf.nn.conv2d(x, kernel, self.strides, "SAME")


class Calibration(layers.Layer):
    """ReLU -> 1x1 conv (`GatheredConv`) -> BN, or with `reduce` the factorized
    reduction (two shifted stride-2 paths): a cell input brought to `filters`
    channels from the present states of the previous cell's output."""

    def __init__(self, filters, num_states, width, reduce=False, **kwargs):
        super().__init__(**kwargs)
        self.reduce = bool(reduce)
        if self.reduce:
            self.paths = [
                GatheredConv(f, num_states, width, 2, name=f"{self.name}_path{i + 1}")
                for i, f in enumerate((filters // 2, filters - filters // 2))
            ]
        else:
            self.paths = [GatheredConv(filters, num_states, width, name=f"{self.name}_conv")]
        self.bn = BatchStatNormalization(name=f"{self.name}_bn")

    def call(self, x, indices):
        x = tf.nn.relu(x)
        if not self.reduce:
            return self.bn(self.paths[0](x, indices))
        first, second = self.paths
        return self.bn(tf.concat([first(x, indices), second(_shift(x), indices)], axis=-1))


class GatheredDense(_GatheredKernel):
    """The classifier over the pooled present states (rows gathered as in `GatheredConv`)."""

    def build(self, input_shape):
        super().build(input_shape)
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, x, indices):
        return tf.matmul(x, self.rows(indices)) + self.bias


def _concat_present(states, present):
    """The states whose `present` flag is 1, concatenated on channels in order.

    A slice of width 0 drops a state, so only the present ones are copied
    (no stacking of all of them) and the order matches the kernels' rows.
    """
    pieces = []
    for state, flag in zip(states, tf.unstack(present)):
        width = tf.shape(state)[-1] * flag
        pieces.append(state[..., :width])
    return tf.concat(pieces, axis=-1)


class NASNetMicroSupernet(Supernet):
    """The ENAS micro search space as one supernet (Pham et al., 2018).

    Stem (3x3 conv of 3F channels, BN); then N normal cells, a reduction
    cell, N normal cells, a reduction cell, N normal cells; a
    batch-statistics normalisation of the last cell's output (no affine:
    its width depends on the path), ReLU, global pool, classifier. Filters
    double at each reduction. Each cell calibrates its two inputs (the
    previous two cell outputs) to F channels (1x1 conv, or a factorized
    reduction when the older one is larger); a reduction cell then halves
    both with factorized reductions, as ENAS does, so every block
    operation runs at stride 1. Block k picks two of the 2 + k states
    (`tf.switch_case`), applies one operation to each and adds them. The
    cell output concatenates the states no block used, so its width depends
    on the architecture: each consumer (the next calibrations, the
    classifier) gathers the kernel rows of the present states (ENAS
    `micro_child`), and costs what it costs in the standalone child.

    Args:
        space: a `NASNetCellSpace` whose ops are from `SUPPORTED_NASNET_OPS`
            and whose combines are `("add",)` (default: B = 5 and `ENAS_OPS`).
        filters: F of the first stage (ENAS: 20).
        cells_per_stage: N (ENAS micro search: 2).
        per_input_weights: give each block's separable convs a separate set
            of weights for each state they may read
            (`InputIndexedSeparableConv`, as ENAS's `micro_child`) instead of
            one set shared by all inputs.
        num_classes, input_shape: of the classifier and the images.
    """

    def __init__(
        self,
        space=None,
        filters=20,
        cells_per_stage=2,
        num_classes=10,
        input_shape=(32, 32, 3),
        per_input_weights=False,
        **kwargs,
    ):
        space = (
            NASNetCellSpace(num_blocks=5, ops=ENAS_OPS, combines=("add",))
            if space is None
            else space
        )
        if not isinstance(space, NASNetCellSpace) or tuple(space.combines) != ("add",):
            _fail("space", "a NASNetCellSpace with combines=('add',)", space)
        unknown = [op for op in space.ops if op not in SUPPORTED_NASNET_OPS]
        if unknown:
            _fail("space.ops", f"names from {', '.join(SUPPORTED_NASNET_OPS)}", unknown)
        super().__init__(space, input_shape, num_classes, **kwargs)
        self.filters = _check_positive_int("filters", filters)
        self.cells_per_stage = _check_positive_int("cells_per_stage", cells_per_stage)
        self.per_input_weights = bool(per_input_weights)
        self.num_blocks = space.num_blocks
        self.stem_conv = _conv(3 * self.filters, 3, "stem_conv")
        self.stem_bn = BatchStatNormalization(name="stem_bn")
        self.cell_kinds = []
        for stage in range(3):
            if stage:
                self.cell_kinds.append("reduction")
            self.cell_kinds += ["normal"] * self.cells_per_stage
        self.cells = self._make_cells()
        # The last cell's states differ with every path (unnormalised sums of
        # identities, pools and convs); without a normalisation each path
        # hands the shared classifier its own class offset, and a supernet
        # trained on fresh paths stays at chance (README, "NASNet space").
        self.head_bn = BatchStatNormalization(affine=False, name="head_bn")
        self.classifier = GatheredDense(
            self.num_classes, self.output_states, self.output_width, name="classifier"
        )
        self._build_every_branch()

    def _make_cells(self):
        cells = []
        filters, size = self.filters, self.image_shape[0]
        # (states, width of each, height) of the two inputs of the next cell
        inputs = [(1, 3 * self.filters, size), (1, 3 * self.filters, size)]
        for index, kind in enumerate(self.cell_kinds):
            if kind == "reduction":
                filters *= 2
            prefix = f"cell{index}_{kind}"
            (older_states, older_width, older_size), (newer_states, newer_width, newer_size) = (
                inputs[-2:]
            )
            cell = {"kind": kind, "filters": filters}
            calibrated = filters // 2 if kind == "reduction" else filters
            cell["newer"] = Calibration(
                calibrated, newer_states, newer_width, name=f"{prefix}_newer"
            )
            cell["older"] = Calibration(
                calibrated,
                older_states,
                older_width,
                reduce=older_size > newer_size,
                name=f"{prefix}_older",
            )
            if kind == "reduction":
                cell["reduce"] = [
                    FactorizedReduce(filters, name=f"{prefix}_reduce{i}") for i in (0, 1)
                ]
                size //= 2
            cell["ops"] = [
                [
                    self._make_ops(filters, f"{prefix}_block{k}_{side}", 2 + k)
                    for side in ("left", "right")
                ]
                for k in range(self.num_blocks)
            ]
            cells.append(cell)
            inputs.append((2 + self.num_blocks, filters, size))
        self.output_states, self.output_width = inputs[-1][:2]
        return cells

    def _make_ops(self, filters, prefix, num_inputs):
        ops = {}
        for op in self.space.ops:
            spec = get_op(op)
            if spec.kind == "sep_conv" and self.per_input_weights:
                ops[op] = InputIndexedSeparableConv(
                    filters, spec.kernel_size, num_inputs, name=f"{prefix}_{op}"
                )
            elif spec.kind == "sep_conv":
                ops[op] = SeparableConvOp(filters, spec.kernel_size, name=f"{prefix}_{op}")
            elif spec.kind == "conv" and spec.kernel_size == 1:
                ops[op] = ReLUConvBN(filters, 1, name=f"{prefix}_{op}")
        return ops

    def _op_function(self, op, layer, input_index):
        """The branch of `op` for `switch_recomputed` (a `SeparableConvOp`
        keeps what its backward needs; the others are rerun in the backward:
        a pooling's gradient is fastest beside its own forward, whose
        workspace oneDNN reuses)."""
        spec = get_op(op)
        if spec.kind == "identity":
            return lambda x: x
        if spec.kind == "pool":
            return lambda x: _pool(x, spec.pool, spec.kernel_size)
        if isinstance(layer, InputIndexedSeparableConv):
            return lambda x: layer(x, input_index)
        return layer

    def _cell(self, cell, older, newer, actions):
        """`older` and `newer` are (tensor, indices of its present states); so is the result."""
        states = [cell["newer"](*newer), cell["older"](*older)]
        if cell["kind"] == "reduction":
            states = [reduce(s) for reduce, s in zip(cell["reduce"], states)]
        choices, functions, side_variables = [], [], []
        for k, sides in enumerate(cell["ops"]):
            for side, ops in enumerate(sides):
                input_index = actions[5 * k + side]
                choices.append((input_index, actions[5 * k + 2 + side]))
                functions.append(
                    [self._op_function(op, ops.get(op), input_index) for op in self.space.ops]
                )
                side_variables.append([v for op in ops.values() for v in op.trainable_variables])
        if self._building:
            states = self._build_blocks(states, choices, functions)
        else:
            states = cell_blocks(states, choices, functions, side_variables)
        used = [input_index for input_index, _ in choices]
        used = tf.reduce_max(tf.one_hot(tf.stack(used), len(states)), axis=0)
        unused = tf.cast(used < 0.5, tf.int32)
        return _concat_present(states, unused), tf.cast(tf.where(unused > 0)[:, 0], tf.int32)

    def _build_blocks(self, states, choices, functions):
        """Every candidate of every block side, run once (eagerly) to build its layers."""
        states = list(states)
        for left, right in zip(functions[::2], functions[1::2]):
            outputs = [[function(states[0]) for function in side] for side in (left, right)]
            states.append(outputs[0][0] + outputs[1][0])
        return states

    def call(self, images, actions):
        actions = tf.cast(actions, tf.int32)
        per_cell = 5 * self.num_blocks
        stem = self.stem_bn(self.stem_conv(images))
        older = newer = (stem, tf.zeros([1], tf.int32))
        for cell in self.cells:
            offset = per_cell if cell["kind"] == "reduction" else 0
            out = self._cell(cell, older, newer, actions[offset : offset + per_cell])
            older, newer = newer, out
        x, present = newer
        x = tf.reduce_mean(tf.nn.relu(self.head_bn(x)), axis=[1, 2])
        return self.classifier(x, present)

    def get_config(self):
        return {
            **super().get_config(),
            "kind": "nasnet",
            "filters": self.filters,
            "cells_per_stage": self.cells_per_stage,
            "num_classes": self.num_classes,
            "per_input_weights": self.per_input_weights,
        }


def build_supernet(space, input_shape=(32, 32, 3), num_classes=10, **kwargs):
    """The supernet of a space: `NASBench201Supernet` or `NASNetMicroSupernet`.

    Args:
        space: a `NASBench201Space` or a `NASNetCellSpace` (add only).
        kwargs: `channels` (NAS-Bench-201) or `filters` (NASNet), and
            `cells_per_stage`.
    """
    if isinstance(space, NASBench201Space):
        return NASBench201Supernet(
            space=space, input_shape=input_shape, num_classes=num_classes, **kwargs
        )
    if isinstance(space, NASNetCellSpace):
        return NASNetMicroSupernet(
            space=space, input_shape=input_shape, num_classes=num_classes, **kwargs
        )
    _fail("space", "a NASBench201Space or a NASNetCellSpace", space)
