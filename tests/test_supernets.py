"""Supernets: a fixed path equals its standalone child; one trace serves every architecture."""

import numpy as np
import pytest
import tensorflow as tf

from nasnet_app.search.spaces import NASBench201Space, NASNetCellSpace
from nasnet_app.search.supernets import (
    ENAS_OPS,
    BatchStatNormalization,
    GatheredConv,
    NASBench201Supernet,
    NASNetMicroSupernet,
    SeparableConvOp,
    _concat_present,
    _pool,
    build_nasbench201_child,
    build_supernet,
    cell_blocks,
    copy_supernet_weights,
    switch_recomputed,
)

SHAPE = (16, 16, 3)


def _images(n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *SHAPE)).astype("float32")


@pytest.fixture(scope="module")
def nb201():
    return NASBench201Supernet(channels=4, cells_per_stage=1, input_shape=SHAPE)


def _micro_supernet():
    space = NASNetCellSpace(num_blocks=2, ops=ENAS_OPS, combines=("add",))
    return NASNetMicroSupernet(space, filters=4, cells_per_stage=1, input_shape=SHAPE)


@pytest.fixture(scope="module")
def micro():
    return _micro_supernet()


@pytest.mark.parametrize(
    "arch",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
        "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ],
)
def test_nasbench201_path_equals_standalone_child(nb201, arch):
    child = build_nasbench201_child(arch, channels=4, cells_per_stage=1, input_shape=SHAPE)
    assert copy_supernet_weights(nb201, child) > 0
    x = _images()
    expected = child(x, training=True).numpy()
    got = nb201(x, np.array(NASBench201Space().encode(arch))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_nasbench201_architectures_differ(nb201):
    x = _images()
    a = nb201(x, np.array([3] * 6)).numpy()
    b = nb201(x, np.array([2] * 6)).numpy()
    assert not np.allclose(a, b)


def _one_trace_for_many(net, space, rng):
    calls = tf.function(lambda x, a: net(x, a))
    x = tf.constant(_images())
    outputs = [calls(x, tf.constant(space.random_actions(rng), tf.int32)) for _ in range(6)]
    assert calls.experimental_get_tracing_count() == 1
    assert all(o.shape == (4, 10) for o in outputs)


def test_one_trace_serves_every_nasbench201_architecture(nb201):
    _one_trace_for_many(nb201, NASBench201Space(), np.random.default_rng(0))


def test_one_trace_serves_every_nasnet_architecture(micro):
    _one_trace_for_many(micro, micro.space, np.random.default_rng(0))


def test_nasnet_unchosen_ops_do_not_change_the_output(micro):
    space = micro.space
    # Both blocks of both cells: inputs 0 and 1, sep_conv_3x3 and identity, add.
    actions = [0, 1, 0, 4, 0, 0, 1, 0, 4, 0] * 2
    x = _images()
    before = micro(x, np.array(actions)).numpy()
    unchosen = [
        layer
        for layer in micro._flatten_layers(include_self=False)
        if "sep_conv_5x5" in layer.name and layer.weights
    ]
    assert unchosen
    saved = [layer.get_weights() for layer in unchosen]
    for layer in unchosen:
        layer.set_weights([w + 1.0 for w in layer.get_weights()])
    after = micro(x, np.array(actions)).numpy()
    for layer, weights in zip(unchosen, saved):
        layer.set_weights(weights)
    np.testing.assert_allclose(before, after, rtol=1e-6)
    chosen = space.check_actions([0, 1, 1, 4, 0, 0, 1, 0, 4, 0] * 2)
    assert not np.allclose(before, micro(x, np.array(chosen)).numpy())


def test_every_layer_is_built_before_the_first_trace(micro, nb201):
    for net in (micro, nb201):
        assert all(layer.built for layer in net._flatten_layers(include_self=False))


def test_batch_statistics_bn_has_no_moving_averages(nb201):
    names = [w.path for w in nb201.weights]
    assert not [n for n in names if "moving" in n]


def test_build_supernet_checks_the_space():
    with pytest.raises(ValueError, match="`space` must be"):
        build_supernet("nasbench201")
    with pytest.raises(ValueError, match="combines"):
        NASNetMicroSupernet(NASNetCellSpace(num_blocks=1), filters=4, input_shape=SHAPE)
    with pytest.raises(ValueError, match="`space.ops` must be"):
        NASNetMicroSupernet(
            NASNetCellSpace(num_blocks=1, ops=("conv_1x3_3x1",), combines=("add",)),
            input_shape=SHAPE,
        )
    with pytest.raises(ValueError, match="`input_shape` must be"):
        NASBench201Supernet(channels=4, cells_per_stage=1, input_shape=(16, 16))


def _switch_gradients(x, functions, variables, loss):
    """A `tf.function` (index, recomputed) -> gradients of `loss(y)` for x and
    `variables`, through `switch_recomputed` or through a plain `switch_case`."""

    @tf.function
    def gradients(index, recomputed):
        with tf.GradientTape() as tape:
            tape.watch(x)
            if recomputed:
                y = switch_recomputed(index, x, functions)
            else:
                y = tf.switch_case(index, [lambda f=f: f(x) for f in functions])
            value = loss(y)
        grads = tape.gradient(value, [x, *variables])
        return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, [x, *variables])]

    return gradients


def test_switch_recomputed_has_the_gradients_of_a_plain_switch():
    layers = [tf.keras.layers.Dense(3, name=f"branch{i}") for i in range(3)]
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 5)).astype("float32"))
    for layer in layers:
        layer.build(x.shape)
    variables = [v for layer in layers for v in layer.trainable_variables]
    functions = [lambda x, layer=layer: tf.nn.relu(layer(x)) ** 2 for layer in layers]
    gradients = _switch_gradients(
        x, functions, variables, lambda y: tf.reduce_sum(y * tf.range(1.0, 4.0))
    )

    for index in range(3):
        expected = gradients(tf.constant(index), False)
        got = gradients(tf.constant(index), True)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-6, atol=1e-6)
        # Only the chosen branch's variables get gradients.
        nonzero = [float(tf.reduce_sum(tf.abs(g))) > 0 for g in got[1:]]
        assert nonzero == [i // 2 == index for i in range(6)]


def test_saved_branches_have_the_gradients_of_a_plain_switch():
    """Branches that keep their intermediates (no rerun in the backward) give
    the gradients autodiff gives, beside a plain rerun function."""
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 8, 8, 6)).astype("float32"))
    separable = [SeparableConvOp(6, k, name=f"sep{k}") for k in (3, 5)]
    for op in separable:
        op(x)
    pools = [lambda x, kind=kind: _pool(x, kind, 3) for kind in ("avg", "max")]
    functions = [*separable, *pools, tf.identity, tf.nn.relu]
    variables = [v for op in separable for v in op.trainable_variables]
    gradients = _switch_gradients(
        x,
        functions,
        variables,
        lambda y: tf.reduce_sum(y * tf.range(1.0, 7.0)) + tf.reduce_sum(y**2),
    )

    for index in range(len(functions)):
        expected = gradients(tf.constant(index), False)
        got = gradients(tf.constant(index), True)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-5)
        assert float(tf.reduce_sum(tf.abs(got[0]))) > 0
        nonzero = [float(tf.reduce_sum(tf.abs(g))) > 0 for g in got[1:]]
        assert nonzero == [i // 8 == index for i in range(16)]


def test_gathered_conv_equals_a_conv_over_the_zero_masked_concatenation():
    states, width, filters = 4, 3, 5
    conv = GatheredConv(filters, states, width)
    rng = np.random.default_rng(0)
    pieces = [rng.normal(size=(2, 6, 6, width)).astype("float32") for _ in range(states)]
    present = np.array([1, 0, 1, 1], np.int32)
    x = _concat_present([tf.constant(p) for p in pieces], tf.constant(present))
    indices = tf.constant(np.flatnonzero(present), tf.int32)
    conv.build(x.shape)
    got = conv(x, indices).numpy()
    full = np.concatenate([p * f for p, f in zip(pieces, present)], axis=-1)
    kernel = conv.kernel.numpy().reshape(1, 1, states * width, filters)
    expected = tf.nn.conv2d(full, kernel, 1, "SAME").numpy()
    assert x.shape[-1] == 3 * width
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_statistics_bn_normalises_with_the_batch_moments(affine):
    x = np.random.default_rng(0).normal(2.0, 3.0, (4, 5, 5, 7)).astype("float32")
    bn = BatchStatNormalization(affine)
    bn.build(x.shape)
    if affine:
        bn.gamma.assign(np.linspace(0.5, 2.0, 7))
        bn.beta.assign(np.linspace(-1.0, 1.0, 7))
    mean, variance = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = (x - mean) / np.sqrt(variance + bn.epsilon)
    if affine:
        expected = expected * bn.gamma.numpy() + bn.beta.numpy()
    np.testing.assert_allclose(bn(tf.constant(x)).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_per_input_weights_train_only_the_slice_of_the_chosen_input():
    space = NASNetCellSpace(num_blocks=2, ops=ENAS_OPS, combines=("add",))
    net = NASNetMicroSupernet(
        space, filters=4, cells_per_stage=1, input_shape=SHAPE, per_input_weights=True
    )
    assert net.get_config()["per_input_weights"] is True
    actions = np.zeros(len(space.decisions()), np.int32)
    actions[5:7] = (2, 1)  # block 1 reads states 2 and 1, both through sep_conv_3x3
    images = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(net(images, actions) ** 2)
    variables = net.trainable_variables
    grads = dict(zip((v.path for v in variables), tape.gradient(loss, variables)))
    left = tf.convert_to_tensor(grads[f"{net.name}/cell0_normal_block1_left_sep_conv_3x3/dw0"])
    right = tf.convert_to_tensor(grads[f"{net.name}/cell0_normal_block1_right_sep_conv_3x3/dw0"])
    assert _slices_touched(left) == [False, False, True]
    assert _slices_touched(right) == [False, True, False]


def _slices_touched(gradient):
    return [bool(np.abs(g).max() > 0) for g in gradient.numpy()]


def test_nasnet_classifier_input_is_normalised_on_every_path():
    net = _micro_supernet()  # not the shared fixture: its head is wrapped below
    seen = []
    normalise = net.head_bn.call

    def recorded(x):
        seen.append(normalise(x))
        return seen[-1]

    net.head_bn.call = recorded
    rng = np.random.default_rng(1)
    images = rng.normal(size=(4, *SHAPE)).astype("float32")
    for _ in range(3):
        net(images, np.asarray(net.space.random_actions(rng), np.int32))
    assert len(seen) == 3
    for x in seen:
        np.testing.assert_allclose(x.numpy().mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
        np.testing.assert_allclose(x.numpy().var(axis=(0, 1, 2)), 1.0, atol=2e-2)


def _plain_cell_blocks(inputs, choices, functions, side_variables):
    """`cell_blocks` written with plain `switch_case`s and autodiff: the reference."""
    states = list(inputs)
    for block in range(len(choices) // 2):
        outputs = []
        for side in (2 * block, 2 * block + 1):
            input_index, op_index = choices[side]
            x = tf.switch_case(input_index, [lambda s=s: s for s in states])
            candidates = functions[side]
            outputs.append(tf.switch_case(op_index, [lambda f=f, x=x: f(x) for f in candidates]))
        states.append(outputs[0] + outputs[1])
    return states


def test_cell_backward_has_the_gradients_of_plain_switches():
    """The whole-cell backward of `cell_blocks` gives the cell's inputs and
    every candidate's variables the gradients autodiff gives through plain
    `switch_case`s, for any choice of inputs and operations."""
    rng = np.random.default_rng(0)
    inputs = [tf.constant(rng.normal(size=(4, 8, 8, 6)).astype("float32")) for _ in range(2)]
    num_blocks = 3
    functions, side_variables = [], []
    for side in range(2 * num_blocks):
        separable = [SeparableConvOp(6, k, name=f"side{side}_sep{k}") for k in (3, 5)]
        for op in separable:
            op(inputs[0])
        pools = [lambda x, kind=kind: _pool(x, kind, 3) for kind in ("avg", "max")]
        functions.append([*separable, *pools, tf.identity])
        side_variables.append([v for op in separable for v in op.trainable_variables])
    variables = [v for side in side_variables for v in side]

    def gradient_function(blocks):
        @tf.function
        def gradients(actions):
            choices = [(actions[2 * side], actions[2 * side + 1]) for side in range(6)]
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                states = blocks(inputs, choices, functions, side_variables)
                weights = tf.range(1.0, 1.0 + len(states))
                loss = sum(
                    w * tf.reduce_sum(s * s[..., :1]) for w, s in zip(tf.unstack(weights), states)
                )
            grads = tape.gradient(loss, [*inputs, *variables])
            return [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(grads, [*inputs, *variables])
            ]

        return gradients

    fast, plain = gradient_function(cell_blocks), gradient_function(_plain_cell_blocks)
    for _ in range(8):
        actions = []
        for side in range(2 * num_blocks):
            actions += [rng.integers(0, 2 + side // 2), rng.integers(0, 5)]
        actions = tf.constant(actions, tf.int32)
        got, expected = fast(actions), plain(actions)
        for g, e in zip(got, expected):
            # Sums of thousands taken in another order: float32 noise scales with the tensor.
            scale = float(np.max(np.abs(e.numpy()))) + 1.0
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-4, atol=1e-5 * scale)
        assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in got[:2])
