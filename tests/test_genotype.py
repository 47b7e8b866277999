"""Tests for nasnet_app.genotype: validation, JSON, canonical hash, immutability, files."""

import dataclasses
import json
import subprocess
import sys

import pytest

from nasnet_app import genotype as genotype_module
from nasnet_app.genotype import (
    NASNET_A,
    NASNET_SEARCH_OPS,
    OPS,
    Block,
    Cell,
    Genotype,
    resolve_genotype,
)

B = Block


def small_cell():
    return Cell([B((0, 1), ("sep_conv_3x3", "identity")), B((2, 0), ("avg_pool_3x3", "conv_1x1"))])


def small_genotype(name="small"):
    return Genotype(normal=small_cell(), reduction=small_cell(), name=name)


# --- op list ---------------------------------------------------------------


def test_op_list_has_the_13_search_ops_then_none():
    assert len(NASNET_SEARCH_OPS) == 13
    assert OPS[:13] == NASNET_SEARCH_OPS
    assert "none" in OPS and "none" not in NASNET_SEARCH_OPS
    assert len(set(OPS)) == len(OPS)


def test_genotype_module_does_not_import_tensorflow():
    # Loads genotype.py on its own: the `nasnet_app` package itself imports the model.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('g', {genotype_module.__file__!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "assert not {'tensorflow', 'keras'} & set(sys.modules), 'imports TensorFlow'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- construction and outputs ------------------------------------------------


def test_compact_list_and_dict_forms_build_the_same_block():
    compact = Block.from_data([0, "sep_conv_3x3", 1, "identity"])
    as_dict = Block.from_data({"inputs": [0, 1], "ops": ["sep_conv_3x3", "identity"]})
    assert compact == as_dict == B((0, 1), ("sep_conv_3x3", "identity"), "add")
    assert Block.from_data([0, "identity", 1, "identity", "concat"]).combine == "concat"


def test_default_output_is_every_unconsumed_state():
    cell = small_cell()
    assert cell.used_states() == [0, 1, 2]
    assert cell.output_indices() == (3,)
    assert cell.num_states == 4


def test_explicit_concat_overrides_the_default():
    cell = Cell(small_cell().blocks, concat=[1, 3])
    assert cell.output_indices() == (1, 3)


def test_from_slim_maps_names_and_used_flags():
    cell = Cell.from_slim(["separable_5x5_2", "none"], [0, 1], [1, 0, 0])
    assert cell.blocks == (B((0, 1), ("sep_conv_5x5", "identity")),)
    assert cell.output_indices() == (1, 2)
    assert Cell.from_slim(["separable_5x5_2", "none"], [0, 1]).concat is None


def test_nasnet_a_matches_tf_slim():
    normal, reduction = NASNET_A.normal, NASNET_A.reduction
    assert [b.inputs for b in normal.blocks] == [(0, 1), (1, 1), (0, 1), (1, 1), (0, 0)]
    assert normal.blocks[2].ops == ("avg_pool_3x3", "identity")
    assert reduction.blocks[3] == B((3, 2), ("identity", "avg_pool_3x3"))
    assert reduction.blocks[4] == B((2, 0), ("sep_conv_3x3", "max_pool_3x3"))
    assert normal.output_indices() == (1, 2, 3, 4, 5, 6)
    assert reduction.output_indices() == (3, 4, 5, 6)


# --- JSON -----------------------------------------------------------------------


def test_json_round_trip_keeps_everything():
    genotype = Genotype(
        normal=Cell(small_cell().blocks, concat=[1, 3]),
        reduction=Cell([B((1, 0), ("max_pool_5x5", "dil_conv_3x3"), "concat")]),
        name="mixed",
    )
    text = genotype.to_json(indent=2)
    again = Genotype.from_json(text)
    assert again == genotype
    assert again.name == "mixed"
    assert again.normal.concat == (1, 3)
    assert again.reduction.blocks[0].combine == "concat"
    assert json.loads(text)["format"] == "nasnet_app.genotype/1"


def test_from_dict_accepts_a_stored_hash_key():
    data = small_genotype().to_dict()
    data["hash"] = small_genotype().hash()
    assert Genotype.from_dict(data) == small_genotype()


def test_resolve_genotype_accepts_every_form(tmp_path):
    genotype = small_genotype()
    path = tmp_path / "g.json"
    genotype.save(path)
    assert resolve_genotype(genotype) is genotype
    assert resolve_genotype(genotype.to_dict()) == genotype
    assert resolve_genotype(genotype.to_json()) == genotype
    assert resolve_genotype(str(path)) == genotype
    assert resolve_genotype("nasnet_a") is NASNET_A


# --- hash -------------------------------------------------------------------------


def test_hash_is_16_hex_digits_and_ignores_the_name():
    digest = small_genotype("a").hash()
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert small_genotype("b").hash() == digest


def test_hash_equal_when_the_sides_of_a_block_are_swapped():
    swapped = Cell(
        [B((1, 0), ("identity", "sep_conv_3x3")), B((0, 2), ("conv_1x1", "avg_pool_3x3"))]
    )
    assert swapped != small_cell()
    assert Genotype(swapped, swapped).hash() == small_genotype().hash()


def test_hash_equal_when_independent_blocks_are_renumbered():
    first = Cell([B((0, 0), ("sep_conv_3x3", "identity")), B((1, 1), ("max_pool_3x3", "identity"))])
    second = Cell(
        [B((1, 1), ("max_pool_3x3", "identity")), B((0, 0), ("sep_conv_3x3", "identity"))]
    )
    assert Genotype(first, first).hash() == Genotype(second, second).hash()


def test_hash_equal_for_renumbered_blocks_with_a_consumer():
    # Block 2 uses block 0; moving the independent block changes every index.
    first = Cell(
        [
            B((0, 1), ("sep_conv_5x5", "identity")),
            B((1, 1), ("avg_pool_3x3", "identity")),
            B((2, 0), ("identity", "max_pool_3x3")),
        ]
    )
    second = Cell(
        [
            B((1, 1), ("avg_pool_3x3", "identity")),
            B((0, 1), ("sep_conv_5x5", "identity")),
            B((0, 3), ("max_pool_3x3", "identity")),
        ]
    )
    assert Genotype(first, first).hash() == Genotype(second, second).hash()


def test_hash_equal_for_explicit_default_concat():
    explicit = Cell(small_cell().blocks, concat=[3])
    assert Genotype(explicit, explicit).hash() == small_genotype().hash()


@pytest.mark.parametrize(
    "changed",
    [
        Cell([B((0, 1), ("sep_conv_5x5", "identity")), B((2, 0), ("avg_pool_3x3", "conv_1x1"))]),
        Cell([B((0, 0), ("sep_conv_3x3", "identity")), B((2, 0), ("avg_pool_3x3", "conv_1x1"))]),
        Cell([B((0, 1), ("sep_conv_3x3", "identity")), B((2, 1), ("avg_pool_3x3", "conv_1x1"))]),
        Cell(
            [
                B((0, 1), ("sep_conv_3x3", "identity")),
                B((2, 0), ("avg_pool_3x3", "conv_1x1"), "concat"),
            ]
        ),
        Cell(small_cell().blocks, concat=[2, 3]),
    ],
    ids=["op", "input", "input-of-later-block", "combine", "concat"],
)
def test_hash_differs_for_different_cells(changed):
    base = small_genotype()
    assert Genotype(changed, small_cell()).hash() != base.hash()
    assert Genotype(small_cell(), changed).hash() != base.hash()


def test_hash_tells_normal_from_reduction():
    other = Cell([B((0, 0), ("identity", "identity"))])
    assert Genotype(small_cell(), other).hash() != Genotype(other, small_cell()).hash()


# --- invalid input: ValueError naming the field and the value ------------------------


def expect_error(build, *fragments):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_op_names_field_and_value():
    expect_error(lambda: B((0, 1), ("sep_conv_3x3", "conv_9x9")), "`ops (right)`", "'conv_9x9'")
    expect_error(lambda: B((0, 1), ("sepconv", "identity")), "`ops (left)`", "'sepconv'")


def test_forward_input_index_names_block_and_value():
    blocks = [B((0, 1), ("identity", "identity")), B((3, 0), ("identity", "identity"))]
    expect_error(lambda: Cell(blocks), "`blocks[1].inputs (left)`", "0..2", "=3")


def test_out_of_range_input_index():
    expect_error(lambda: Cell([B((0, -1), ("identity", "identity"))]), "inputs (right)", "-1")
    expect_error(lambda: Cell([B((2, 0), ("identity", "identity"))]), "inputs (left)", "=2")


@pytest.mark.parametrize("bad", ["0", 0.0, None, True])
def test_non_integer_input_index(bad):
    expect_error(lambda: B((bad, 0), ("identity", "identity")), "inputs (left)", repr(bad))


@pytest.mark.parametrize("bad", [(0,), (0, 1, 2), "01", 5])
def test_inputs_must_be_a_pair(bad):
    expect_error(lambda: B(bad, ("identity", "identity")), "`inputs`", repr(bad))


def test_ops_must_be_a_pair():
    expect_error(lambda: B((0, 1), "identity"), "`ops`", "'identity'")


def test_bad_combine():
    expect_error(lambda: B((0, 1), ("identity", "identity"), "mul"), "`combine`", "'mul'")


def test_empty_cell_is_a_wrong_block_count():
    expect_error(lambda: Cell([]), "`blocks`", "[]")
    expect_error(lambda: Genotype.from_dict({"normal": [], "reduction": []}), "`blocks`")


@pytest.mark.parametrize(
    "concat, fragment",
    [([], "non-empty"), ([2, 2], "distinct"), ([4], "0..3"), ([-1], "0..3"), (["2"], "integer")],
)
def test_bad_concat(concat, fragment):
    expect_error(lambda: Cell(small_cell().blocks, concat=concat), "`concat`", fragment)


@pytest.mark.parametrize("concat", [3, [[2]]])
def test_non_list_concat_is_a_value_error(concat):
    expect_error(lambda: Cell(small_cell().blocks, concat=concat), "`concat`")


@pytest.mark.parametrize(
    "data, fragment",
    [
        ("not a block", "`blocks[0]`"),
        ({"inputs": [0, 1]}, "`blocks[0]`"),
        ({"inputs": [0, 1], "ops": ["identity"] * 2, "extra": 1}, "`blocks[0]`"),
        ([0, "identity", 1], "`blocks[0]`"),
    ],
)
def test_malformed_block_data(data, fragment):
    expect_error(lambda: Cell([data]), fragment)


def test_malformed_cell_and_genotype_data():
    expect_error(lambda: Genotype.from_dict([]), "`genotype`")
    expect_error(lambda: Genotype.from_dict({"normal": []}), "missing ['reduction']")
    expect_error(lambda: Genotype.from_dict({**small_genotype().to_dict(), "colour": 1}), "colour")
    expect_error(lambda: Genotype.from_dict({**small_genotype().to_dict(), "format": "v0"}), "'v0'")
    expect_error(lambda: Genotype(normal=3, reduction=small_cell()), "`normal`", "3")
    expect_error(lambda: Genotype(small_cell(), small_cell(), name=7), "`name`", "7")
    expect_error(lambda: Cell.from_data({"block": []}, "reduction"), "`reduction`")
    expect_error(lambda: Cell("blocks"), "`blocks`", "'blocks'")


@pytest.mark.parametrize("text", ["{", "", "{'normal': []}", "[1,", None])
def test_malformed_json(text):
    expect_error(lambda: Genotype.from_json(text), "`genotype` must be valid JSON")


def test_json_of_the_wrong_shape():
    expect_error(lambda: Genotype.from_json("[1, 2]"), "`genotype`", "[1, 2]")
    bad_op = small_genotype().to_json().replace("conv_1x1", "conv_2x2")
    expect_error(lambda: Genotype.from_json(bad_op), "'conv_2x2'")


def test_from_slim_errors():
    expect_error(lambda: Cell.from_slim(["none"], [0]), "`operations`")
    expect_error(lambda: Cell.from_slim(["none", "none"], [0]), "`operations`")
    expect_error(lambda: Cell.from_slim(["none", "conv_7x7"], [0, 1]), "'conv_7x7'")
    expect_error(lambda: Cell.from_slim(["none", "none"], [0, 1], [1, 1]), "`used_hiddenstates`")


def test_resolve_genotype_rejects_unknown_names():
    expect_error(lambda: resolve_genotype("nasnet_b"), "`genotype`", "'nasnet_b'", "nasnet_a")


# --- immutability ----------------------------------------------------------------------


def test_objects_are_frozen():
    genotype = small_genotype()
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.normal = small_cell()
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.normal.blocks = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.normal.blocks[0].ops = ("identity", "identity")
    with pytest.raises(TypeError):
        genotype.normal.blocks[0].inputs[0] = 1


def test_mutating_the_input_lists_does_not_change_the_cell():
    inputs, ops = [0, 1], ["identity", "identity"]
    blocks = [Block(inputs, ops)]
    concat = [1, 2]
    cell = Cell(blocks, concat)
    inputs[0], ops[0] = 1, "conv_3x3"
    blocks.append(Block((0, 0), ("identity", "identity")))
    concat.append(0)
    assert cell.blocks == (B((0, 1), ("identity", "identity")),)
    assert cell.concat == (1, 2)


def test_equal_objects_hash_alike_in_sets():
    assert len({small_genotype(), small_genotype(), NASNET_A}) == 2


# --- files ----------------------------------------------------------------------------------


def test_save_and_load(tmp_path):
    path = tmp_path / "sub" / "genotype.json"
    small_genotype().save(path)
    assert Genotype.load(path) == small_genotype()
    assert path.read_text().endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["genotype.json"]


def test_load_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.json"
    expect_error(lambda: Genotype.load(path), str(path), "Cannot read")


def test_load_broken_file_names_the_path_and_the_problem(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"normal": [[0, "identity", 1')
    expect_error(lambda: Genotype.load(path), str(path), "valid JSON")
    path.write_text(small_genotype().to_json().replace("identity", "identiti"))
    expect_error(lambda: Genotype.load(path), str(path), "'identiti'")


def test_load_non_utf8_file_names_the_path(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00\x01")
    # UnicodeDecodeError is a ValueError, so only the message shows the problem.
    expect_error(lambda: Genotype.load(path), str(path))
