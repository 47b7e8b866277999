"""The one registry of cell operations: name -> `OpSpec` with its parsed parameters.

Every operation a genotype may name is defined here, once, with what it is
(`kind`), its kernel size, dilation and pooling kind, and how other code bases
spell it (`aliases`: TF-Slim, the TPU AmoebaNet specs, DARTS, NAS-Bench-201).
The Keras layers (`nasnet_app.ops.Operation`), the search spaces, the
converters of published cells and checkpoints, and the drawings all read
these records instead of parsing names. This module never imports TensorFlow.

To add an operation, append one `OpSpec` to `_SPECS` (never reorder: the
order of `OPS` is part of saved controller state, a softmax index `i` means
`OPS[i]`) and add its case to `tests/test_op_registry.py`. A new `kind` also
needs its layers in `nasnet_app.ops.Operation`.

Example:

>>> get_op("sep_conv_5x5").kernel_size
5
>>> get_op("max_pool_3x3").pool
'max'
>>> from_alias("slim", "separable_7x7_2")
'sep_conv_7x7'
"""

import dataclasses

# What an operation computes (see `nasnet_app.ops.Operation`):
KINDS = (
    "identity",  # the input (a 1x1 projection when stride or width differ)
    "none",  # zeros (the zero operation of DARTS-style spaces)
    "conv",  # ReLU -> k x k conv -> BN
    "factorized_conv",  # ReLU -> 1 x k conv -> k x 1 conv -> BN
    "dil_conv",  # ReLU -> dilated k x k separable conv -> BN
    "sep_conv",  # (ReLU -> k x k separable conv -> BN) twice
    "pool",  # k x k max or average pooling (a 1x1 projection when width differs)
)
POOL_KINDS = ("max", "avg")
# Code bases whose op names `aliases` may give.
CONVENTIONS = ("slim", "tpu", "darts", "nasbench201")


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """One cell operation.

    Args:
        name: the name genotypes use.
        kind: one of `KINDS`.
        kernel_size: the (square) kernel or window size; `None` for
            `identity` and `none`. For `factorized_conv` it is `k` of 1 x k
            then k x 1.
        dilation: the dilation rate of `dil_conv` (1 otherwise).
        pool: `"max"` or `"avg"` for `pool`, else `None`.
        aliases: `{convention: name}`, how other code bases spell this op.
    """

    name: str
    kind: str
    kernel_size: int | None = None
    dilation: int = 1
    pool: str | None = None
    aliases: dict = dataclasses.field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            _fail("kind", f"one of {', '.join(KINDS)}", self.kind)
        weightless = self.kind in ("identity", "none")
        if weightless != (self.kernel_size is None):
            _fail("kernel_size", "None exactly for identity and none", self.kernel_size)
        if self.kernel_size is not None and (self.kernel_size < 1 or self.kernel_size % 2 == 0):
            _fail("kernel_size", "an odd positive integer", self.kernel_size)
        if (self.pool is not None) != (self.kind == "pool") or self.pool not in (None, *POOL_KINDS):
            _fail("pool", "'max' or 'avg' exactly for kind='pool'", self.pool)
        if self.dilation != 1 and self.kind != "dil_conv":
            _fail("dilation", "1 except for dil_conv", self.dilation)
        unknown = set(self.aliases) - set(CONVENTIONS)
        if unknown:
            _fail("aliases", f"keyed by {', '.join(CONVENTIONS)}", self.aliases)

    @property
    def label(self):
        """A short human label for drawings, e.g. `sep 5x5`, `max 3x3`, `1x7+7x1`."""
        k = self.kernel_size
        return {
            "identity": "identity",
            "none": "zero",
            "conv": f"conv {k}x{k}",
            "factorized_conv": f"1x{k}+{k}x1",
            "dil_conv": f"dil {k}x{k}",
            "sep_conv": f"sep {k}x{k}",
            "pool": f"{self.pool} {k}x{k}",
        }[self.kind]


def _sep(k, darts=True):
    aliases = {"slim": f"separable_{k}x{k}_2", "tpu": f"separable_{k}x{k}_2"}
    if darts:
        aliases["darts"] = f"sep_conv_{k}x{k}"
    return OpSpec(f"sep_conv_{k}x{k}", "sep_conv", k, aliases=aliases)


def _pool(kind, k, **aliases):
    name = f"{kind}_pool_{k}x{k}"
    aliases = {"slim": name, "tpu": name, **aliases}
    return OpSpec(name, "pool", k, pool=kind, aliases=aliases)


# The one ordered list. Append new operations at the end.
_SPECS = (
    # TF-Slim and TPU call the identity `none`.
    OpSpec(
        "identity",
        "identity",
        aliases={
            "slim": "none",
            "tpu": "none",
            "darts": "skip_connect",
            "nasbench201": "skip_connect",
        },
    ),
    OpSpec("conv_1x3_3x1", "factorized_conv", 3),
    OpSpec("conv_1x7_7x1", "factorized_conv", 7, aliases={"tpu": "1x7_7x1"}),
    OpSpec("dil_conv_3x3", "dil_conv", 3, dilation=2, aliases={"darts": "dil_conv_3x3"}),
    _pool("avg", 3, darts="avg_pool_3x3", nasbench201="avg_pool_3x3"),
    _pool("max", 3, darts="max_pool_3x3"),
    _pool("max", 5),
    _pool("max", 7),
    OpSpec("conv_1x1", "conv", 1, aliases={"nasbench201": "nor_conv_1x1"}),
    OpSpec("conv_3x3", "conv", 3, aliases={"nasbench201": "nor_conv_3x3"}),
    _sep(3),
    _sep(5),
    _sep(7, darts=False),
    OpSpec("none", "none", aliases={"darts": "none", "nasbench201": "none"}),
)

REGISTRY = {spec.name: spec for spec in _SPECS}
OPS = tuple(REGISTRY)
# The 13 operations of the NASNet search space (Zoph et al., 2018, Sec. 3);
# `none` (the zero operation of DARTS-style spaces) is not among them.
NASNET_SEARCH_OPS = OPS[:13]


def get_op(name):
    """The `OpSpec` of an operation name; a clear error for unknown names."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        _fail("op", f"one of {', '.join(OPS)}", name)


def find_op(kind, kernel_size=None, pool=None):
    """The name of the operation of `kind` with this kernel size (and pool kind).

    Example:

    >>> find_op("sep_conv", 3)
    'sep_conv_3x3'
    """
    for spec in _SPECS:
        if (spec.kind, spec.kernel_size, spec.pool) == (kind, kernel_size, pool):
            return spec.name
    _fail("op", "a registered operation", {"kind": kind, "kernel_size": kernel_size, "pool": pool})


def alias_names(convention):
    """`{foreign name: our name}` for one convention of `CONVENTIONS`."""
    if convention not in CONVENTIONS:
        _fail("convention", f"one of {', '.join(CONVENTIONS)}", convention)
    return {s.aliases[convention]: s.name for s in _SPECS if convention in s.aliases}


def from_alias(convention, name):
    """Our name of an op that `convention` calls `name`; a clear error otherwise."""
    names = alias_names(convention)
    if name not in names:
        _fail(f"{convention} op", f"one of {', '.join(names)}", name)
    return names[name]
