"""Genotypes: NASNet cells described as plain, validated, immutable data.

This module never imports TensorFlow. A `Genotype` holds a normal and a
reduction `Cell`; each cell is a sequence of `Block`s. Hidden states are
numbered as in the TF-Slim NASNet code:

* `0`: the output of the previous cell (the cell's "current" input),
* `1`: the output of the cell before that (the "previous" input),
* `2 + k`: the output of block `k`.

A block applies one operation to each of its two inputs and combines the two
results (`"add"` or `"concat"`). Unless a cell names its output states
explicitly (`concat`), the cell output is the concatenation of every hidden
state that no block consumes, which is what NASNet does.

Example:

>>> from nasnet_app.genotype import Block, Cell, Genotype
>>> cell = Cell([Block((0, 1), ("sep_conv_3x3", "identity"))])
>>> Genotype(normal=cell, reduction=cell).normal.output_indices()
(1, 2)
"""

import dataclasses
import hashlib
import json
import numbers
import os

from nasnet_app.op_registry import NASNET_SEARCH_OPS, OPS, alias_names

# `OPS` (the ordered operation names, part of saved controller state) and
# every operation's parameters are defined once, in `nasnet_app.op_registry`.
__all__ = [
    "COMBINES",
    "FORMAT",
    "NASNET_A",
    "NASNET_SEARCH_OPS",
    "OPS",
    "SLIM_OP_NAMES",
    "Block",
    "Cell",
    "Genotype",
    "resolve_genotype",
]
COMBINES = ("add", "concat")

# TF-Slim spells operations differently; `none` there is the identity.
SLIM_OP_NAMES = alias_names("slim")

FORMAT = "nasnet_app.genotype/1"


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _as_pair(value, field):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        _fail(field, "a pair of two entries", value)
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of a cell: two (input, op) pairs and a combine method.

    Args:
        inputs: pair of hidden-state indices, `(left, right)`.
        ops: pair of operation names from `OPS`, `(left_op, right_op)`.
        combine: `"add"` (NASNet-A) or `"concat"`.
    """

    inputs: tuple
    ops: tuple
    combine: str = "add"

    def __post_init__(self):
        object.__setattr__(self, "inputs", _as_pair(self.inputs, "inputs"))
        object.__setattr__(self, "ops", _as_pair(self.ops, "ops"))
        for side, index in zip(("left", "right"), self.inputs):
            if isinstance(index, bool) or not isinstance(index, numbers.Integral):
                _fail(f"inputs ({side})", "an integer hidden-state index", index)
        object.__setattr__(self, "inputs", tuple(int(i) for i in self.inputs))
        for side, op in zip(("left", "right"), self.ops):
            if op not in OPS:
                _fail(f"ops ({side})", f"one of {', '.join(OPS)}", op)
        if self.combine not in COMBINES:
            _fail("combine", "'add' or 'concat'", self.combine)

    def to_dict(self):
        return {"inputs": list(self.inputs), "ops": list(self.ops), "combine": self.combine}

    @classmethod
    def from_data(cls, data, field="block"):
        """Builds a block from a dict or a compact list `[in_l, op_l, in_r, op_r(, combine)]`."""
        if isinstance(data, Block):
            return data
        if isinstance(data, dict):
            unknown = set(data) - {"inputs", "ops", "combine"}
            if unknown:
                _fail(field, "a dict with keys inputs, ops and combine", data)
            if "inputs" not in data or "ops" not in data:
                _fail(field, "a dict with keys inputs and ops", data)
            return cls(data["inputs"], data["ops"], data.get("combine", "add"))
        if isinstance(data, (list, tuple)) and len(data) in (4, 5):
            combine = data[4] if len(data) == 5 else "add"
            return cls((data[0], data[2]), (data[1], data[3]), combine)
        _fail(field, "a dict or a list [in_left, op_left, in_right, op_right]", data)


@dataclasses.dataclass(frozen=True)
class Cell:
    """A cell: B blocks, and optionally the hidden states that form its output.

    Args:
        blocks: sequence of `Block` (or their dict / compact-list forms).
        concat: hidden-state indices concatenated into the cell output. `None`
            (the default) means every state that no block consumes.
    """

    blocks: tuple
    concat: tuple | None = None

    def __post_init__(self):
        if isinstance(self.blocks, (str, bytes, dict)) or not hasattr(self.blocks, "__iter__"):
            _fail("blocks", "a list of blocks", self.blocks)
        blocks = tuple(Block.from_data(b, field=f"blocks[{i}]") for i, b in enumerate(self.blocks))
        if not blocks:
            _fail("blocks", "a non-empty list of blocks", list(self.blocks))
        object.__setattr__(self, "blocks", blocks)
        for k, block in enumerate(blocks):
            for side, index in zip(("left", "right"), block.inputs):
                if not 0 <= index < 2 + k:
                    _fail(
                        f"blocks[{k}].inputs ({side})",
                        f"an earlier hidden state, 0..{1 + k}",
                        index,
                    )
        if self.concat is not None:
            if not isinstance(self.concat, (list, tuple)):
                _fail("concat", "a list of state indices", self.concat)
            for index in self.concat:
                if isinstance(index, bool) or not isinstance(index, numbers.Integral):
                    _fail("concat", "a list of integer state indices", self.concat)
            concat = tuple(int(i) for i in self.concat)
            num_states = 2 + len(blocks)
            if not concat or len(set(concat)) != len(concat):
                _fail("concat", "a non-empty list of distinct state indices", self.concat)
            for index in concat:
                if not 0 <= index < num_states:
                    _fail("concat", f"state indices in 0..{num_states - 1}", self.concat)
            object.__setattr__(self, "concat", concat)

    @property
    def num_states(self):
        return 2 + len(self.blocks)

    def used_states(self):
        """Indices of the hidden states that some block consumes."""
        return sorted({i for block in self.blocks for i in block.inputs})

    def output_indices(self):
        """Hidden states concatenated into the cell output, in index order."""
        if self.concat is not None:
            return self.concat
        used = set(self.used_states())
        return tuple(i for i in range(self.num_states) if i not in used)

    def to_dict(self):
        data = {"blocks": [b.to_dict() for b in self.blocks]}
        data["concat"] = list(self.concat) if self.concat is not None else None
        return data

    @classmethod
    def from_data(cls, data, field="cell"):
        if isinstance(data, Cell):
            return data
        if isinstance(data, dict):
            if "blocks" not in data:
                _fail(field, "a dict with a `blocks` list", data)
            unknown = set(data) - {"blocks", "concat"}
            if unknown:
                _fail(field, "a dict with keys blocks and concat", data)
            return cls(data["blocks"], data.get("concat"))
        if isinstance(data, (list, tuple)):
            return cls(data)
        _fail(field, "a dict or a list of blocks", data)

    @classmethod
    def from_slim(cls, operations, hiddenstate_indices, used_hiddenstates=None):
        """Builds a cell from the TF-Slim `nasnet_utils` lists.

        TF-Slim stores `2B` op names and input indices (left, right per
        block). Its `used_hiddenstates` flags the states left out of the cell
        output (NASNet-A's normal cell consumes state 1 and still outputs it);
        without it, the output is every state no block consumes.
        """
        if len(operations) != len(hiddenstate_indices) or len(operations) % 2:
            _fail(
                "operations",
                "a list of even length, as long as hiddenstate_indices",
                operations,
            )
        for op in operations:
            if op not in SLIM_OP_NAMES:
                _fail("operations", f"TF-Slim op names ({', '.join(SLIM_OP_NAMES)})", op)
        ops = [SLIM_OP_NAMES[op] for op in operations]
        blocks = [
            Block((hiddenstate_indices[i], hiddenstate_indices[i + 1]), (ops[i], ops[i + 1]))
            for i in range(0, len(ops), 2)
        ]
        if used_hiddenstates is None:
            return cls(blocks)
        if len(used_hiddenstates) != 2 + len(blocks):
            _fail("used_hiddenstates", f"a list of {2 + len(blocks)} flags", used_hiddenstates)
        return cls(blocks, [i for i, used in enumerate(used_hiddenstates) if not used])

    def canonical(self):
        """A form that is equal for functionally equivalent cells.

        Each output state is written as an expression tree; the two sides of a
        block are sorted (add and concat are symmetric up to channel order),
        which also makes the numbering of blocks irrelevant.
        """
        memo = {}

        def expr(index):
            if index < 2:
                return f"h{index}"
            if index not in memo:
                block = self.blocks[index - 2]
                sides = sorted(f"{op}({expr(i)})" for i, op in zip(block.inputs, block.ops))
                memo[index] = f"{block.combine}[{','.join(sides)}]"
            return memo[index]

        return sorted(expr(i) for i in self.output_indices())


@dataclasses.dataclass(frozen=True)
class Genotype:
    """A NASNet architecture: a normal cell and a reduction cell.

    Args:
        normal: the normal `Cell` (stride 1).
        reduction: the reduction `Cell` (ops on the cell inputs use stride 2).
        name: an optional label; it does not enter `hash()`.

    Example:

    >>> from nasnet_app.genotype import NASNET_A, Genotype
    >>> Genotype.from_json(NASNET_A.to_json()) == NASNET_A
    True
    """

    normal: Cell
    reduction: Cell
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "normal", Cell.from_data(self.normal, "normal"))
        object.__setattr__(self, "reduction", Cell.from_data(self.reduction, "reduction"))
        if not isinstance(self.name, str):
            _fail("name", "a string", self.name)

    def to_dict(self):
        return {
            "format": FORMAT,
            "name": self.name,
            "normal": self.normal.to_dict(),
            "reduction": self.reduction.to_dict(),
        }

    def to_json(self, indent=None):
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data):
        if isinstance(data, Genotype):
            return data
        if not isinstance(data, dict):
            _fail("genotype", "a dict with `normal` and `reduction` cells", data)
        fmt = data.get("format", FORMAT)
        if fmt != FORMAT:
            _fail("format", repr(FORMAT), fmt)
        missing = [key for key in ("normal", "reduction") if key not in data]
        if missing:
            _fail("genotype", f"a dict with `normal` and `reduction` (missing {missing})", data)
        unknown = set(data) - {"format", "name", "normal", "reduction", "hash"}
        if unknown:
            _fail("genotype", f"a dict without unknown keys {sorted(unknown)}", sorted(data))
        return cls(
            Cell.from_data(data["normal"], "normal"),
            Cell.from_data(data["reduction"], "reduction"),
            data.get("name", ""),
        )

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"`genotype` must be valid JSON. Received an error: {error}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path):
        """Reads a genotype JSON file, naming the file in any error."""
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"Cannot read genotype file {path}: {error}") from None
        try:
            return cls.from_json(text)
        except ValueError as error:
            raise ValueError(f"Invalid genotype file {path}: {error}") from None

    def save(self, path):
        """Writes the genotype as JSON, atomically."""
        from nasnet_app.io_utils import atomic_write_text

        atomic_write_text(path, self.to_json(indent=2) + "\n")

    def hash(self):
        """A 16-hex-digit hash, equal for functionally equivalent genotypes."""
        key = json.dumps([self.normal.canonical(), self.reduction.canonical()])
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def resolve_genotype(value):
    """Accepts a `Genotype`, a catalogue name, a dict, JSON text or a JSON file path."""
    from nasnet_app import catalogue

    if isinstance(value, Genotype):
        return value
    if isinstance(value, dict):
        return Genotype.from_dict(value)
    if isinstance(value, os.PathLike):
        return Genotype.load(value)
    if isinstance(value, str):
        if value in catalogue.GENOTYPES:
            return catalogue.GENOTYPES[value]
        if value.lstrip().startswith("{"):
            return Genotype.from_json(value)
        if value.endswith(".json"):
            return Genotype.load(value)
    _fail(
        "genotype",
        f"a Genotype, a dict, a JSON file or one of {', '.join(catalogue.GENOTYPES)}",
        value,
    )


# NASNet-A exactly as TF-Slim `nasnet_utils.NasNetANormalCell` /
# `NasNetAReductionCell` define it.
NASNET_A = Genotype(
    normal=Cell.from_slim(
        [
            "separable_5x5_2",
            "separable_3x3_2",
            "separable_5x5_2",
            "separable_3x3_2",
            "avg_pool_3x3",
            "none",
            "avg_pool_3x3",
            "avg_pool_3x3",
            "separable_3x3_2",
            "none",
        ],
        [0, 1, 1, 1, 0, 1, 1, 1, 0, 0],
        [1, 0, 0, 0, 0, 0, 0],
    ),
    reduction=Cell.from_slim(
        [
            "separable_5x5_2",
            "separable_7x7_2",
            "max_pool_3x3",
            "separable_7x7_2",
            "avg_pool_3x3",
            "separable_5x5_2",
            "none",
            "avg_pool_3x3",
            "separable_3x3_2",
            "max_pool_3x3",
        ],
        [0, 1, 0, 1, 0, 1, 3, 2, 2, 0],
        [1, 1, 1, 0, 0, 0, 0],
    ),
    name="nasnet_a",
)
