"""Published cells as `Genotype` data.

Every entry is written in this project's state numbering (0 = previous cell's
output, 1 = the one before, 2 + k = block k) and op names
(`nasnet_app.genotype.OPS`). Each entry cites the file and commit it was
translated from.

DARTS and ENAS number the two cell inputs the other way round (their 0 is the
output of cell k-2, their 1 the output of cell k-1), so their input indices 0
and 1 are swapped here; their intermediate nodes 2, 3, ... keep their numbers.

Example:

>>> from nasnet_app.catalogue import GENOTYPES
>>> GENOTYPES["darts_v2"].normal.output_indices()
(2, 3, 4, 5)
"""

from nasnet_app.genotype import NASNET_A, Block, Cell, Genotype
from nasnet_app.op_registry import alias_names

# tensorflow/tpu AmoebaNet specs use TF-Slim's names plus `1x7_7x1` (1x7 then
# 7x1 conv, which the TPU code wraps in a 1x1 bottleneck).
_TPU_OP_NAMES = alias_names("tpu")


def _from_tpu_spec(operations, hiddenstate_indices, used_hiddenstates):
    """A cell from the (operations, indices, used flags) lists of TF-Slim / TPU specs."""
    for op in operations:
        if op not in _TPU_OP_NAMES:
            raise ValueError(
                f"`operations` must use the names {', '.join(_TPU_OP_NAMES)}. "
                f"Received: operations={op!r}"
            )
    slim_ops = [_TPU_OP_NAMES[op] for op in operations]
    blocks = [
        Block(
            (hiddenstate_indices[i], hiddenstate_indices[i + 1]),
            (slim_ops[i], slim_ops[i + 1]),
        )
        for i in range(0, len(operations), 2)
    ]
    return Cell(blocks, [i for i, used in enumerate(used_hiddenstates) if not used])


def _swap_inputs(index):
    """Maps a DARTS / ENAS input index (0 = cell k-2) to ours (0 = cell k-1)."""
    return {0: 1, 1: 0}.get(index, index)


_DARTS_OP_NAMES = alias_names("darts")


def _from_darts(pairs, concat):
    """A cell from a DARTS genotype list `[(op, input), ...]`, two pairs per node."""
    blocks = []
    for i in range(0, len(pairs), 2):
        (op_left, in_left), (op_right, in_right) = pairs[i], pairs[i + 1]
        blocks.append(
            Block(
                (_swap_inputs(in_left), _swap_inputs(in_right)),
                (_DARTS_OP_NAMES[op_left], _DARTS_OP_NAMES[op_right]),
            )
        )
    return Cell(blocks, concat)


# ENAS micro op codes (micro_child.py `_fixed_layer`): 0 and 1 index
# f_sizes = [3, 5] for two stacked separable convs, 2 is a 3x3 average pool,
# 3 a 3x3 max pool, anything else the identity.
_ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")


def _from_enas(arc):
    """A cell from an ENAS micro arc `[x_id, x_op, y_id, y_op] * B`.

    ENAS concatenates every state no block consumes (`_fixed_combine`), which
    is this project's default, so the cell has no explicit `concat`.
    """
    blocks = [
        Block(
            (_swap_inputs(arc[i]), _swap_inputs(arc[i + 2])),
            (_ENAS_OPS[arc[i + 1]], _ENAS_OPS[arc[i + 3]]),
        )
        for i in range(0, len(arc), 4)
    ]
    return Cell(blocks)


# tensorflow/models research/slim/nets/nasnet/pnasnet.py, PNasNetNormalCell
# (commit 03cdc5fecfb6c7d30845e6990a6d346b3acbfeb8). PNASNet has no separate
# reduction cell: the same cell runs with stride 2.
_PNASNET_5_CELL = Cell.from_slim(
    [
        "separable_5x5_2",
        "max_pool_3x3",
        "separable_7x7_2",
        "max_pool_3x3",
        "separable_5x5_2",
        "separable_3x3_2",
        "separable_3x3_2",
        "max_pool_3x3",
        "separable_3x3_2",
        "none",
    ],
    [1, 1, 0, 0, 0, 0, 4, 0, 1, 0],
    [1, 1, 0, 0, 0, 0, 0],
)
PNASNET_5 = Genotype(normal=_PNASNET_5_CELL, reduction=_PNASNET_5_CELL, name="pnasnet_5")

# tensorflow/tpu models/official/amoeba_net/model_specs.py, cell name
# `amoeba_net_a` (alias `evol_net_g`), as imported by amoeba_net_model.py at
# commit 0390e44c2a4eabdf57e05efe4145b204d0ddcd7b; the cells are built by
# network_utils.BaseCell (same state numbering as TF-Slim).
AMOEBANET_A = Genotype(
    normal=_from_tpu_spec(
        [
            "avg_pool_3x3",
            "max_pool_3x3",
            "separable_3x3_2",
            "none",
            "none",
            "avg_pool_3x3",
            "separable_3x3_2",
            "separable_5x5_2",
            "avg_pool_3x3",
            "separable_3x3_2",
        ],
        [0, 0, 1, 1, 0, 1, 0, 2, 5, 0],
        [1, 0, 1, 0, 0, 1, 0],
    ),
    reduction=_from_tpu_spec(
        [
            "separable_3x3_2",
            "avg_pool_3x3",
            "max_pool_3x3",
            "separable_7x7_2",
            "max_pool_3x3",
            "max_pool_3x3",
            "separable_3x3_2",
            "1x7_7x1",
            "avg_pool_3x3",
            "separable_7x7_2",
        ],
        [1, 0, 0, 2, 1, 0, 4, 0, 1, 0],
        [1, 1, 0, 0, 0, 0, 0],
    ),
    name="amoebanet_a",
)

# melodyguan/enas scripts/cifar10_micro_final.sh `fixed_arc` (commit
# 014bae1855a6e3a4060131d632b80ec7e24defdd): the first 20 numbers are the
# normal cell, the next 20 the reduction cell (micro_child.py
# `connect_controller`, commit 00787a5f5162814ce8f62a603b76738d240df8df).
ENAS = Genotype(
    normal=_from_enas([0, 2, 0, 0, 0, 4, 0, 1, 0, 4, 1, 1, 1, 0, 0, 1, 0, 2, 1, 1]),
    reduction=_from_enas([1, 0, 1, 0, 0, 3, 0, 2, 1, 1, 3, 1, 1, 0, 0, 4, 0, 3, 1, 1]),
    name="enas",
)

# quark0/darts cnn/genotypes.py `DARTS_V2` (the `DARTS` of the final code).
# The index holds quark0/darts only at its first commit
# 8876e793763398e3ee62ac1823fa0a3c14e8c2c5, where `DARTS` is the later
# `DARTS_V1`; DARTS_V2 was read from the unmodified upstream copy in
# liamcli/darts (commit 17bd21d43a8088fbef4894bbdd306f4b9f407271).
DARTS_V2 = Genotype(
    normal=_from_darts(
        [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
        ],
        [2, 3, 4, 5],
    ),
    reduction=_from_darts(
        [
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
        ],
        [2, 3, 4, 5],
    ),
    name="darts_v2",
)

GENOTYPES = {
    "nasnet_a": NASNET_A,
    "pnasnet_5": PNASNET_5,
    "amoebanet_a": AMOEBANET_A,
    "enas": ENAS,
    "darts_v2": DARTS_V2,
}
