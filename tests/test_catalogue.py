"""Tests for nasnet_app.catalogue: every entry is valid, and spot checks against the sources."""

import pytest

from nasnet_app.catalogue import GENOTYPES
from nasnet_app.genotype import OPS, Block, Genotype, resolve_genotype

NAMES = sorted(GENOTYPES)


def test_catalogue_lists_the_published_cells():
    assert set(GENOTYPES) == {"nasnet_a", "pnasnet_5", "amoebanet_a", "enas", "darts_v2"}


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_a_valid_genotype_named_after_its_key(name):
    genotype = GENOTYPES[name]
    assert isinstance(genotype, Genotype)
    assert genotype.name == name
    for cell in (genotype.normal, genotype.reduction):
        for block in cell.blocks:
            assert set(block.ops) <= set(OPS)
            assert block.combine == "add"
        # Re-validating through the constructor must accept the entry as is.
        assert type(cell)(cell.blocks, cell.concat) == cell


@pytest.mark.parametrize("name", NAMES)
def test_entry_round_trips_json(name):
    genotype = GENOTYPES[name]
    again = Genotype.from_json(genotype.to_json())
    assert again == genotype
    assert again.hash() == genotype.hash()


@pytest.mark.parametrize("name", NAMES)
def test_entry_resolves_by_name(name):
    assert resolve_genotype(name) is GENOTYPES[name]


def test_hashes_are_distinct():
    hashes = {name: genotype.hash() for name, genotype in GENOTYPES.items()}
    assert len(set(hashes.values())) == len(hashes), hashes


def test_every_cell_has_five_blocks_except_darts():
    for name, genotype in GENOTYPES.items():
        expected = 4 if name == "darts_v2" else 5
        assert len(genotype.normal.blocks) == expected, name
        assert len(genotype.reduction.blocks) == expected, name


# --- NASNet-A (TF-Slim nasnet_utils.NasNetANormalCell / NasNetAReductionCell) ---


def test_nasnet_a_reduction_block_3():
    block = GENOTYPES["nasnet_a"].reduction.blocks[3]
    assert block == Block((3, 2), ("identity", "avg_pool_3x3"))


def test_nasnet_a_outputs():
    # Slim used_hiddenstates: normal [1,0,0,0,0,0,0], reduction [1,1,1,0,0,0,0].
    assert GENOTYPES["nasnet_a"].normal.output_indices() == (1, 2, 3, 4, 5, 6)
    assert GENOTYPES["nasnet_a"].reduction.output_indices() == (3, 4, 5, 6)


def test_nasnet_a_normal_first_block():
    block = GENOTYPES["nasnet_a"].normal.blocks[0]
    assert block == Block((0, 1), ("sep_conv_5x5", "sep_conv_3x3"))


# --- PNASNet-5 (TF-Slim pnasnet.PNasNetNormalCell) ---


def test_pnasnet_uses_one_cell_for_both_roles():
    genotype = GENOTYPES["pnasnet_5"]
    assert genotype.normal == genotype.reduction


def test_pnasnet_blocks():
    cell = GENOTYPES["pnasnet_5"].normal
    assert cell.blocks[0] == Block((1, 1), ("sep_conv_5x5", "max_pool_3x3"))
    assert cell.blocks[3] == Block((4, 0), ("sep_conv_3x3", "max_pool_3x3"))
    assert cell.blocks[4] == Block((1, 0), ("sep_conv_3x3", "identity"))
    # used_hiddenstates [1, 1, 0, 0, 0, 0, 0]: state 4 feeds block 3 and is still output.
    assert cell.output_indices() == (2, 3, 4, 5, 6)


# --- AmoebaNet-A (tensorflow/tpu amoeba_net model_specs, `amoeba_net_a`) ---


def test_amoebanet_a_normal():
    cell = GENOTYPES["amoebanet_a"].normal
    assert cell.blocks[0] == Block((0, 0), ("avg_pool_3x3", "max_pool_3x3"))
    assert cell.blocks[4] == Block((5, 0), ("avg_pool_3x3", "sep_conv_3x3"))
    # used_hiddenstates [1, 0, 1, 0, 0, 1, 0].
    assert cell.output_indices() == (1, 3, 4, 6)


def test_amoebanet_a_reduction():
    cell = GENOTYPES["amoebanet_a"].reduction
    assert cell.blocks[1] == Block((0, 2), ("max_pool_3x3", "sep_conv_7x7"))
    assert cell.blocks[3] == Block((4, 0), ("sep_conv_3x3", "conv_1x7_7x1"))
    assert cell.output_indices() == (2, 3, 4, 5, 6)


# --- ENAS (melodyguan/enas cifar10_micro_final.sh fixed_arc; ENAS 0 = cell k-2) ---


def test_enas_normal_swaps_the_two_inputs():
    cell = GENOTYPES["enas"].normal
    # ENAS "0 2 0 0": avg pool and sep 3x3, both on ENAS input 0 (cell k-2) = our 1.
    assert cell.blocks[0] == Block((1, 1), ("avg_pool_3x3", "sep_conv_3x3"))
    # ENAS "1 0 0 1": sep 3x3 on cell k-1 (our 0), sep 5x5 on cell k-2 (our 1).
    assert cell.blocks[3] == Block((0, 1), ("sep_conv_3x3", "sep_conv_5x5"))
    assert cell.output_indices() == (2, 3, 4, 5, 6)


def test_enas_reduction():
    cell = GENOTYPES["enas"].reduction
    # ENAS "1 1 3 1": sep 5x5 on cell k-1 and on node 3 (block 1).
    assert cell.blocks[2] == Block((0, 3), ("sep_conv_5x5", "sep_conv_5x5"))
    # ENAS "1 0 0 4": op 4 is the identity.
    assert cell.blocks[3] == Block((0, 1), ("sep_conv_3x3", "identity"))
    assert cell.output_indices() == (2, 4, 5, 6)
    assert cell.concat is None


# --- DARTS-V2 (quark0/darts cnn/genotypes.py; DARTS 0 = cell k-2) ---


def test_darts_v2_normal():
    cell = GENOTYPES["darts_v2"].normal
    assert cell.blocks[0] == Block((1, 0), ("sep_conv_3x3", "sep_conv_3x3"))
    # ("skip_connect", 0), ("dil_conv_3x3", 2): node 2 keeps its number.
    assert cell.blocks[3] == Block((1, 2), ("identity", "dil_conv_3x3"))
    assert cell.concat == (2, 3, 4, 5)


def test_darts_v2_reduction():
    cell = GENOTYPES["darts_v2"].reduction
    assert cell.blocks[1] == Block((2, 0), ("identity", "max_pool_3x3"))
    assert cell.blocks[2] == Block((1, 2), ("max_pool_3x3", "identity"))
    assert cell.output_indices() == (2, 3, 4, 5)
