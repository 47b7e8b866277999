import csv

import numpy as np
import pytest

from nasnet_app.genotype import NASNET_SEARCH_OPS, Block, Cell, Genotype
from nasnet_app.search.spaces import (
    MacroArchitecture,
    NASBench201Space,
    NASMacroSpace,
    NASNetCellSpace,
    space_from_config,
)
from tests.reference_data import requires, shared_data_path

TABLE = shared_data_path("nasbench201/cifar10.csv")
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(params=["nasnet", "nasbench201", "macro", "macro_strides"])
def space(request):
    return {
        "nasnet": lambda: NASNetCellSpace(),
        "nasbench201": lambda: NASBench201Space(),
        "macro": lambda: NASMacroSpace(num_layers=5),
        "macro_strides": lambda: NASMacroSpace(num_layers=4, strides=(1, 2)),
    }[request.param]()


def test_random_actions_round_trip_through_decode_encode_and_data(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        actions = space.random_actions(rng)
        architecture = space.decode(actions)
        assert space.encode(architecture) == actions
        data = space.to_data(architecture)
        assert space.encode(space.from_data(data)) == actions
        assert space.arch_key(space.from_data(data)) == space.arch_key(architecture)


def test_mutate_changes_exactly_one_decision_within_range(space):
    rng = np.random.default_rng(1)
    choices = [n for _, n in space.decisions()]
    for _ in range(50):
        actions = space.random_actions(rng)
        child = space.mutate(actions, rng)
        assert sum(a != b for a, b in zip(actions, child)) == 1
        assert all(0 <= a < n for a, n in zip(child, choices))


def test_config_round_trip(space):
    rebuilt = space_from_config(space.get_config())
    assert type(rebuilt) is type(space)
    assert rebuilt.get_config() == space.get_config()
    assert rebuilt.decisions() == space.decisions()


def test_nasnet_decisions_mask_inputs_by_block():
    space = NASNetCellSpace(num_blocks=5)
    decisions = space.decisions()
    assert len(decisions) == 2 * 5 * 5
    inputs = [n for kind, n in decisions[:25] if kind == "input"]
    assert inputs == [2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    assert decisions[2] == ("op", 13) and decisions[4] == ("combine", 2)
    assert space.decisions()[25:] == decisions[:25]


def test_nasnet_decode_builds_blocks_in_order():
    space = NASNetCellSpace(num_blocks=2)
    ops = NASNET_SEARCH_OPS
    actions = [0, 1, 10, 0, 0, 2, 1, 11, 4, 1] + [1, 1, 5, 5, 0, 0, 2, 12, 3, 1]
    genotype = space.decode(actions)
    assert genotype.normal.blocks[0] == Block((0, 1), (ops[10], ops[0]), "add")
    assert genotype.normal.blocks[1] == Block((2, 1), (ops[11], ops[4]), "concat")
    assert genotype.reduction.blocks[1] == Block((0, 2), (ops[12], ops[3]), "concat")


def test_nasnet_arch_key_equal_for_swapped_sides():
    space = NASNetCellSpace(num_blocks=1)
    first = space.decode([0, 1, 10, 0, 0, 0, 1, 0, 4, 0])
    swapped = space.decode([1, 0, 0, 10, 0, 1, 0, 4, 0, 0])
    other = space.decode([1, 0, 0, 11, 0, 1, 0, 4, 0, 0])
    assert space.arch_key(first) == space.arch_key(swapped) == first.hash()
    assert space.arch_key(first) != space.arch_key(other)


def test_nasnet_invalid_actions_name_the_field():
    space = NASNetCellSpace(num_blocks=2)
    actions = [0] * 20
    actions[0] = 2  # block 0 can only take states 0 and 1
    with pytest.raises(ValueError, match=r"`actions\[0\]` must be an integer in 0..1"):
        space.decode(actions)
    with pytest.raises(ValueError, match="`actions` must be a list of 20 integers"):
        space.decode([0] * 19)
    with pytest.raises(ValueError, match=r"actions\[2\]"):
        space.decode([0, 0, True] + [0] * 17)


def test_nasnet_encode_rejects_what_the_space_cannot_express():
    space = NASNetCellSpace(num_blocks=1, ops=("sep_conv_3x3", "identity"), combines=("add",))
    cell = Cell([Block((0, 1), ("sep_conv_3x3", "max_pool_3x3"))])
    with pytest.raises(ValueError, match=r"normal.blocks\[0\].ops"):
        space.encode(Genotype(cell, cell))
    with pytest.raises(ValueError, match="normal.blocks"):
        NASNetCellSpace(num_blocks=2).encode(Genotype(cell, cell))


def test_nasnet_constructor_errors():
    with pytest.raises(ValueError, match="`num_blocks`"):
        NASNetCellSpace(num_blocks=0)
    with pytest.raises(ValueError, match="`ops`"):
        NASNetCellSpace(ops=("sep_conv_3x3", "conv_9x9"))
    with pytest.raises(ValueError, match="`combines`"):
        NASNetCellSpace(combines=("mul",))


def test_nasbench201_decode_example_and_edge_order():
    space = NASBench201Space()
    assert space.decode([3, 3, 4, 1, 3, 1]) == EXAMPLE
    assert space.encode(EXAMPLE) == [3, 3, 4, 1, 3, 1]
    assert space.arch_key(EXAMPLE) == EXAMPLE


@requires("nasbench201/cifar10.csv")
def test_nasbench201_every_table_row_round_trips():
    space = NASBench201Space()
    with open(TABLE, newline="") as handle:
        archs = [row["arch"] for row in csv.DictReader(handle)]
    actions = {tuple(space.encode(arch)) for arch in archs}
    assert len(actions) == len(archs) == space.size() == 15625
    assert all(space.decode(space.encode(arch)) == arch for arch in archs[:500])


@pytest.mark.parametrize(
    "bad",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",
        "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|",
        "|conv_9x9~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|",
        42,
    ],
)
def test_nasbench201_bad_arch_strings_raise(bad):
    with pytest.raises(ValueError, match="`architecture`"):
        NASBench201Space().encode(bad)


def test_macro_decisions_and_attention_keys():
    space = NASMacroSpace(num_layers=3)
    kinds = [kind for kind, _ in space.decisions()]
    assert kinds == ["filter_height", "filter_width", "filters"] * 1 + [
        "filter_height",
        "filter_width",
        "filters",
        "skip",
        "filter_height",
        "filter_width",
        "filters",
        "skip",
        "skip",
    ]
    # Skip (i, j) attends to the anchor of layer j: its last softmax decision.
    assert space.attention_keys() == [None] * 6 + [2] + [None] * 3 + [2, 5]


def test_macro_decode_values_and_output_layers():
    space = NASMacroSpace(num_layers=3, strides=(1, 2))
    architecture = space.decode([0, 3, 1, 1] + [2, 2, 3, 0, 1] + [1, 1, 0, 0, 0, 1])
    first, second, third = architecture.layers
    assert (first.filter_height, first.filter_width, first.filters, first.stride) == (1, 7, 36, 2)
    assert second.inputs == (0,) and second.filters == 64
    assert third.inputs == (1,)
    assert architecture.output_layers() == [2]


def test_macro_without_skips_chains_layers():
    space = NASMacroSpace(num_layers=3, skip_connections=False)
    assert len(space.decisions()) == 9
    layers = space.decode([1] * 9).layers
    assert [layer.inputs for layer in layers] == [(), (0,), (1,)]


def test_macro_architecture_validation_names_fields():
    with pytest.raises(ValueError, match=r"layers\[1\].inputs"):
        MacroArchitecture(
            [
                {"filter_height": 3, "filter_width": 3, "filters": 24},
                {"filter_height": 3, "filter_width": 3, "filters": 24, "inputs": [1]},
            ]
        )
    with pytest.raises(ValueError, match=r"layers\[0\].filters"):
        NASMacroSpace(num_layers=1).encode(
            {"layers": [{"filter_height": 3, "filter_width": 3, "filters": 25}]}
        )
    with pytest.raises(ValueError, match=r"layers\[0\].stride"):
        NASMacroSpace(num_layers=1).encode(
            {"layers": [{"filter_height": 3, "filter_width": 3, "filters": 24, "stride": 2}]}
        )


def test_space_from_config_errors():
    with pytest.raises(ValueError, match="`config`"):
        space_from_config({"name": "darts"})
    with pytest.raises(ValueError, match="unknown keys"):
        space_from_config({"name": "nasbench201", "edges": 7})
