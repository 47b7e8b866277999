"""Tests of the operation registry: one record per op, read by layers, spaces and converters."""

import numpy as np
import pytest

from nasnet_app import op_registry
from nasnet_app.genotype import NASNET_SEARCH_OPS, OPS, SLIM_OP_NAMES
from nasnet_app.op_registry import OpSpec, alias_names, find_op, from_alias, get_op

# Saved controller states index this tuple: it must never change order.
SAVED_OPS_ORDER = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "none",
)

# op -> (kind, kernel_size, dilation, pool)
EXPECTED = {
    "identity": ("identity", None, 1, None),
    "conv_1x3_3x1": ("factorized_conv", 3, 1, None),
    "conv_1x7_7x1": ("factorized_conv", 7, 1, None),
    "dil_conv_3x3": ("dil_conv", 3, 2, None),
    "avg_pool_3x3": ("pool", 3, 1, "avg"),
    "max_pool_3x3": ("pool", 3, 1, "max"),
    "max_pool_5x5": ("pool", 5, 1, "max"),
    "max_pool_7x7": ("pool", 7, 1, "max"),
    "conv_1x1": ("conv", 1, 1, None),
    "conv_3x3": ("conv", 3, 1, None),
    "sep_conv_3x3": ("sep_conv", 3, 1, None),
    "sep_conv_5x5": ("sep_conv", 5, 1, None),
    "sep_conv_7x7": ("sep_conv", 7, 1, None),
    "none": ("none", None, 1, None),
}


def test_ops_order_is_the_saved_one():
    assert OPS == SAVED_OPS_ORDER
    assert op_registry.OPS is OPS
    assert NASNET_SEARCH_OPS == SAVED_OPS_ORDER[:13]


@pytest.mark.parametrize("name", SAVED_OPS_ORDER)
def test_every_op_has_its_parameters(name):
    spec = get_op(name)
    assert (spec.kind, spec.kernel_size, spec.dilation, spec.pool) == EXPECTED[name]
    assert spec.name == name


def test_aliases_are_the_converters_name_maps():
    assert SLIM_OP_NAMES == {
        "none": "identity",
        "avg_pool_3x3": "avg_pool_3x3",
        "max_pool_3x3": "max_pool_3x3",
        "max_pool_5x5": "max_pool_5x5",
        "max_pool_7x7": "max_pool_7x7",
        "separable_3x3_2": "sep_conv_3x3",
        "separable_5x5_2": "sep_conv_5x5",
        "separable_7x7_2": "sep_conv_7x7",
    }
    assert alias_names("tpu") == {**SLIM_OP_NAMES, "1x7_7x1": "conv_1x7_7x1"}
    assert alias_names("darts") == {
        "skip_connect": "identity",
        "sep_conv_3x3": "sep_conv_3x3",
        "sep_conv_5x5": "sep_conv_5x5",
        "dil_conv_3x3": "dil_conv_3x3",
        "max_pool_3x3": "max_pool_3x3",
        "avg_pool_3x3": "avg_pool_3x3",
        "none": "none",
    }
    nb201 = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert [from_alias("nasbench201", op) for op in nb201] == [
        "none",
        "identity",
        "conv_1x1",
        "conv_3x3",
        "avg_pool_3x3",
    ]


def test_find_op_and_errors():
    assert find_op("sep_conv", 5) == "sep_conv_5x5"
    assert find_op("pool", 3, "avg") == "avg_pool_3x3"
    with pytest.raises(ValueError, match="registered operation"):
        find_op("sep_conv", 9)
    with pytest.raises(ValueError, match=r"`op` must be one of identity.*Received: op='sep_9x9'"):
        get_op("sep_9x9")
    with pytest.raises(ValueError, match="slim op"):
        from_alias("slim", "skip_connect")
    with pytest.raises(ValueError, match="convention"):
        alias_names("pytorch")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "deconv", "kernel_size": 3}, "kind"),
        ({"kind": "conv"}, "kernel_size"),
        ({"kind": "identity", "kernel_size": 3}, "kernel_size"),
        ({"kind": "conv", "kernel_size": 4}, "kernel_size"),
        ({"kind": "pool", "kernel_size": 3}, "pool"),
        ({"kind": "conv", "kernel_size": 3, "pool": "max"}, "pool"),
        ({"kind": "conv", "kernel_size": 3, "dilation": 2}, "dilation"),
        ({"kind": "conv", "kernel_size": 3, "aliases": {"caffe": "c3"}}, "aliases"),
    ],
)
def test_bad_specs_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}` must be"):
        OpSpec("x", **kwargs)


@pytest.mark.parametrize("name", SAVED_OPS_ORDER)
def test_layer_kernels_come_from_the_registry(name):
    from nasnet_app.ops import Operation

    spec = get_op(name)
    layer = Operation(name, filters=4, in_channels=4)
    layer(np.zeros((1, 8, 8, 4), np.float32))
    kernels = [
        w.shape[:2] for w in layer.weights if "kernel" in w.path and "pointwise" not in w.path
    ]
    k = spec.kernel_size
    expected = {
        "identity": [],
        "none": [],
        "pool": [],
        "conv": [(k, k)],
        "factorized_conv": [(1, k), (k, 1)],
        "dil_conv": [(k, k)],
        "sep_conv": [(k, k), (k, k)],
    }[spec.kind]
    assert [tuple(s) for s in kernels] == expected
    if spec.kind == "pool":
        assert (layer.parts["pool"].kind, layer.parts["pool"].pool_size) == (spec.pool, k)
    if spec.kind == "dil_conv":
        assert layer.parts["dil"].dilation_rate == (spec.dilation, spec.dilation)


def test_a_new_op_is_one_registry_entry(monkeypatch):
    from nasnet_app.ops import Operation

    spec = OpSpec("avg_pool_5x5", "pool", 5, pool="avg", aliases={"slim": "avg_pool_5x5"})
    monkeypatch.setitem(op_registry.REGISTRY, spec.name, spec)
    layer = Operation("avg_pool_5x5", filters=3, in_channels=3, strides=2)
    x = np.arange(2 * 6 * 6 * 3, dtype=np.float32).reshape(2, 6, 6, 3)
    y = np.asarray(layer(x))
    assert y.shape == (2, 3, 3, 3)
    assert layer.parts["pool"].pool_size == 5
    # The centre window of a SAME 5x5 average at stride 2 over a 6x6 map.
    assert y[0, 1, 1, 0] == pytest.approx(x[0, 1:6, 1:6, 0].mean())


def test_search_spaces_take_their_ops_from_the_registry():
    from nasnet_app.search.spaces import NB201_OPS, NASNetCellSpace

    assert NASNetCellSpace().ops == NASNET_SEARCH_OPS
    assert all(from_alias("nasbench201", op) in OPS for op in NB201_OPS)
    with pytest.raises(ValueError, match="`ops` must be"):
        NASNetCellSpace(ops=("sep_conv_9x9",))
