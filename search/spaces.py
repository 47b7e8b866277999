"""Search spaces: sequences of categorical decisions decoded into architectures.

Three spaces implement the `SearchSpace` contract of `nasnet_app.search.base`:

* `NASNetCellSpace`: the NASNet space (Zoph et al., 2018). Each of the B
  blocks of the normal and the reduction cell takes 5 decisions (two inputs,
  two operations, a combine method), decoded into a `Genotype`.
* `NASBench201Space`: the NAS-Bench-201 cell, 6 edges x 5 operations, decoded
  into its arch string.
* `NASMacroSpace`: the CIFAR-10 space of Zoph & Le (2017): a stack of conv
  layers with predicted filter sizes, filter counts, optional strides and
  skip connections chosen by anchor-point attention, decoded into a
  `MacroArchitecture` (built into a Keras model by `nasnet_app.search.macro`).

`decisions()` lists `(decision_type, num_choices)` per decision. Decisions of a
type share one controller head whose width is the largest `num_choices` of
that type; a decision with fewer choices (a NASNet block input, which can only
pick earlier states) has the logits above its `num_choices` masked out.
`attention_keys()` marks the decisions made by anchor-point attention (the
macro space's skip connections) instead of a softmax head.

Every space also offers `random_actions(rng)` and `mutate(actions, rng)` for
random search and evolution, and `get_config()` / `space_from_config()`.

Example:

>>> import numpy as np
>>> space = NASBench201Space()
>>> arch = space.decode([3, 3, 4, 1, 3, 1])
>>> arch
'|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
>>> space.encode(arch)
[3, 3, 4, 1, 3, 1]
"""

import dataclasses
import hashlib
import json
import math

import numpy as np

from nasnet_app.genotype import COMBINES, Block, Cell, Genotype
from nasnet_app.op_registry import NASNET_SEARCH_OPS, OPS
from nasnet_app.search.base import SearchSpace


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class CategoricalSpace(SearchSpace):
    """Shared helpers: action validation, random sampling and mutation."""

    def attention_keys(self):
        """Per decision: `None` (a softmax head) or the index of the decision
        whose controller state is the attention key (anchor-point attention)."""
        return [None] * len(self.decisions())

    def num_choices(self):
        return [n for _, n in self.decisions()]

    def check_actions(self, actions):
        """Validates a list of integer actions; returns it as a list of ints."""
        choices = self.num_choices()
        if isinstance(actions, (str, bytes, dict)) or not hasattr(actions, "__len__"):
            _fail("actions", f"a list of {len(choices)} integers", actions)
        if len(actions) != len(choices):
            _fail("actions", f"a list of {len(choices)} integers for {self.name}", actions)
        for index, (action, num) in enumerate(zip(actions, choices)):
            if not _is_int(action) or not 0 <= action < num:
                _fail(f"actions[{index}]", f"an integer in 0..{num - 1}", action)
        return [int(a) for a in actions]

    def random_actions(self, rng):
        """A uniformly random action list (`rng`: a `numpy.random.Generator`)."""
        return [int(rng.integers(num)) for num in self.num_choices()]

    def mutate(self, actions, rng):
        """Changes one decision (with more than one choice) to another value."""
        actions = self.check_actions(actions)
        choices = self.num_choices()
        mutable = [i for i, num in enumerate(choices) if num > 1]
        index = mutable[int(rng.integers(len(mutable)))]
        offset = 1 + int(rng.integers(choices[index] - 1))
        actions[index] = (actions[index] + offset) % choices[index]
        return actions

    def size(self):
        """The number of distinct action sequences (an upper bound on archs)."""
        return math.prod(self.num_choices())


class NASNetCellSpace(CategoricalSpace):
    """The NASNet search space: a normal and a reduction cell of B blocks.

    Per block, in the order the NASNet controller predicts them: the left and
    right input (hidden state `0..1+k` for block `k`), the left and right
    operation, the combine method. Normal-cell decisions come first.

    Args:
        num_blocks: B, blocks per cell (5 in NASNet).
        ops: the candidate operations, names from `nasnet_app.op_registry.OPS`
            (default: the 13 of the NASNet paper). Action `i` means `ops[i]`.
        combines: the candidate combine methods, from `("add", "concat")`.

    Example:

    >>> space = NASNetCellSpace(num_blocks=2)
    >>> genotype = space.decode([0, 1, 10, 0, 0] * 4)
    >>> space.encode(genotype) == [0, 1, 10, 0, 0] * 4
    True
    """

    name = "nasnet"
    CELLS = ("normal", "reduction")

    def __init__(self, num_blocks=5, ops=NASNET_SEARCH_OPS, combines=COMBINES):
        if not _is_int(num_blocks) or num_blocks < 1:
            _fail("num_blocks", "a positive integer", num_blocks)
        ops, combines = tuple(ops), tuple(combines)
        if not ops or len(set(ops)) != len(ops) or any(op not in OPS for op in ops):
            _fail("ops", f"a non-empty list of distinct names from {', '.join(OPS)}", ops)
        if not combines or len(set(combines)) != len(combines):
            _fail("combines", "a non-empty list of distinct combine methods", combines)
        if any(c not in COMBINES for c in combines):
            _fail("combines", f"names from {', '.join(COMBINES)}", combines)
        self.num_blocks = int(num_blocks)
        self.ops = ops
        self.combines = combines

    def decisions(self):
        decisions = []
        for _ in self.CELLS:
            for k in range(self.num_blocks):
                decisions += [("input", 2 + k), ("input", 2 + k)]
                decisions += [("op", len(self.ops)), ("op", len(self.ops))]
                decisions.append(("combine", len(self.combines)))
        return decisions

    def decode(self, actions):
        actions = self.check_actions(actions)
        per_cell = 5 * self.num_blocks
        cells = []
        for c in range(len(self.CELLS)):
            chunk = actions[c * per_cell : (c + 1) * per_cell]
            blocks = [
                Block(
                    (chunk[5 * k], chunk[5 * k + 1]),
                    (self.ops[chunk[5 * k + 2]], self.ops[chunk[5 * k + 3]]),
                    self.combines[chunk[5 * k + 4]],
                )
                for k in range(self.num_blocks)
            ]
            cells.append(Cell(blocks))
        return Genotype(normal=cells[0], reduction=cells[1])

    def encode(self, architecture):
        genotype = self.from_data(architecture)
        actions = []
        for cell_name in self.CELLS:
            cell = getattr(genotype, cell_name)
            if len(cell.blocks) != self.num_blocks:
                _fail(
                    f"{cell_name}.blocks",
                    f"a list of {self.num_blocks} blocks (the space's num_blocks)",
                    len(cell.blocks),
                )
            if cell.concat is not None:
                _fail(f"{cell_name}.concat", "None (the space cannot express it)", cell.concat)
            for k, block in enumerate(cell.blocks):
                for op in block.ops:
                    if op not in self.ops:
                        _fail(f"{cell_name}.blocks[{k}].ops", f"in {', '.join(self.ops)}", op)
                if block.combine not in self.combines:
                    _fail(
                        f"{cell_name}.blocks[{k}].combine",
                        f"in {', '.join(self.combines)}",
                        block.combine,
                    )
                actions += list(block.inputs)
                actions += [self.ops.index(op) for op in block.ops]
                actions.append(self.combines.index(block.combine))
        return actions

    def arch_key(self, architecture):
        return self.from_data(architecture).hash()

    def to_data(self, architecture):
        return self.from_data(architecture).to_dict()

    def from_data(self, data):
        if isinstance(data, Genotype):
            return data
        return Genotype.from_dict(data)

    def get_config(self):
        return {
            "name": self.name,
            "num_blocks": self.num_blocks,
            "ops": list(self.ops),
            "combines": list(self.combines),
        }


# The benchmark's names; `nasnet_app.op_registry.from_alias("nasbench201", name)`
# gives the registry op (kind, kernel size) each one is.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (to_node, from_node) in the order the arch string lists them.
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class NASBench201Space(CategoricalSpace):
    """The NAS-Bench-201 cell: 4 nodes, 6 edges, each edge one of 5 operations.

    The architecture is the benchmark's arch string; its edges are listed node
    by node, `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` (node 1 from 0; node 2
    from 0, 1; node 3 from 0, 1, 2), which is also the action order. Every
    string is its own `arch_key`: the benchmark table holds a separately
    trained accuracy for each of the 15,625 strings, including the ones that
    compute the same function, so merging them would change the rewards.

    Args:
        ops: the operation names, in action order (default: the benchmark's
            `none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3`).

    Example:

    >>> NASBench201Space().decode([0] * 6)
    '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'
    """

    name = "nasbench201"

    def __init__(self, ops=NB201_OPS):
        ops = tuple(ops)
        if not ops or len(set(ops)) != len(ops) or not all(isinstance(o, str) for o in ops):
            _fail("ops", "a non-empty list of distinct operation names", ops)
        if any(("~" in op or "|" in op or "+" in op) for op in ops):
            _fail("ops", "names without '~', '|' or '+'", ops)
        self.ops = ops

    def decisions(self):
        return [("op", len(self.ops))] * len(NB201_EDGES)

    def decode(self, actions):
        actions = self.check_actions(actions)
        nodes = []
        position = 0
        for node in range(1, 4):
            edges = []
            for source in range(node):
                edges.append(f"{self.ops[actions[position]]}~{source}")
                position += 1
            nodes.append("|" + "|".join(edges) + "|")
        return "+".join(nodes)

    def encode(self, architecture):
        if not isinstance(architecture, str):
            _fail("architecture", "a NAS-Bench-201 arch string", architecture)
        nodes = architecture.split("+")
        actions = []
        if len(nodes) != 3:
            _fail("architecture", "an arch string with 3 nodes separated by '+'", architecture)
        for node, text in enumerate(nodes, start=1):
            if not (text.startswith("|") and text.endswith("|")):
                _fail("architecture", "nodes written as |op~i|...|", architecture)
            edges = text[1:-1].split("|")
            if len(edges) != node:
                _fail("architecture", f"node {node} with {node} edges", architecture)
            for source, edge in enumerate(edges):
                op, _, index = edge.partition("~")
                if index != str(source):
                    _fail("architecture", f"edge {edge!r} to come from node {source}", architecture)
                if op not in self.ops:
                    _fail("architecture", f"operations from {', '.join(self.ops)}", architecture)
                actions.append(self.ops.index(op))
        return actions

    def arch_key(self, architecture):
        return self.decode(self.encode(architecture))

    def to_data(self, architecture):
        return self.decode(self.encode(architecture))

    def from_data(self, data):
        return self.decode(self.encode(data))

    def get_config(self):
        return {"name": self.name, "ops": list(self.ops)}


MACRO_FORMAT = "nasnet_app.macro/1"


@dataclasses.dataclass(frozen=True)
class MacroLayer:
    """One conv layer of a macro architecture.

    Args:
        filter_height, filter_width: the kernel size.
        filters: the number of output channels.
        stride: the stride of the convolution (both axes).
        inputs: indices of the earlier layers concatenated as this layer's
            input; empty means the image.
    """

    filter_height: int
    filter_width: int
    filters: int
    stride: int = 1
    inputs: tuple = ()

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["inputs"] = list(self.inputs)
        return data


@dataclasses.dataclass(frozen=True)
class MacroArchitecture:
    """A Zoph & Le (2017) CIFAR-10 network: conv layers with skip inputs.

    Layers whose output no later layer consumes are concatenated before the
    classifier. Build it with `nasnet_app.search.macro.build_macro_model`.
    """

    layers: tuple

    def __post_init__(self):
        layers = []
        if isinstance(self.layers, (str, bytes, dict)) or not hasattr(self.layers, "__iter__"):
            _fail("layers", "a list of layers", self.layers)
        for i, layer in enumerate(self.layers):
            layers.append(_as_macro_layer(layer, i))
        if not layers:
            _fail("layers", "a non-empty list of layers", self.layers)
        object.__setattr__(self, "layers", tuple(layers))

    def output_layers(self):
        """Indices of the layers no later layer consumes (the network output)."""
        used = {j for layer in self.layers for j in layer.inputs}
        return [i for i in range(len(self.layers)) if i not in used]

    def to_dict(self):
        return {"format": MACRO_FORMAT, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data):
        if isinstance(data, MacroArchitecture):
            return data
        if not isinstance(data, dict) or "layers" not in data:
            _fail("architecture", "a dict with a `layers` list", data)
        if data.get("format", MACRO_FORMAT) != MACRO_FORMAT:
            _fail("format", repr(MACRO_FORMAT), data.get("format"))
        return cls(data["layers"])

    def hash(self):
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _as_macro_layer(layer, index):
    field = f"layers[{index}]"
    if isinstance(layer, dict):
        names = {f.name for f in dataclasses.fields(MacroLayer)}
        if set(layer) - names or not {"filter_height", "filter_width", "filters"} <= set(layer):
            _fail(field, f"a dict with keys {', '.join(sorted(names))}", layer)
        layer = MacroLayer(**{**layer, "inputs": tuple(layer.get("inputs", ()))})
    if not isinstance(layer, MacroLayer):
        _fail(field, "a MacroLayer or a dict", layer)
    for name in ("filter_height", "filter_width", "filters", "stride"):
        value = getattr(layer, name)
        if not _is_int(value) or value < 1:
            _fail(f"{field}.{name}", "a positive integer", value)
    inputs = tuple(layer.inputs)
    if len(set(inputs)) != len(inputs) or any(not _is_int(j) or not 0 <= j < index for j in inputs):
        _fail(f"{field}.inputs", f"distinct earlier layer indices in 0..{index - 1}", inputs)
    return dataclasses.replace(layer, inputs=tuple(sorted(int(j) for j in inputs)))


class NASMacroSpace(CategoricalSpace):
    """The CIFAR-10 space of Zoph & Le (2017): conv layers and skip connections.

    Per layer `i`, in order: filter height, filter width, number of filters,
    the stride (only when `strides` is given), then one binary decision per
    earlier layer `j < i` ("is layer j an input of layer i"), which the
    controller takes by anchor-point attention:
    `sigmoid(v . tanh(W_prev h_j + W_curr h_i))`.

    Args:
        num_layers: the number of conv layers (the paper used 15 without
            strides).
        filter_sizes: the candidate filter heights and widths.
        filters: the candidate numbers of filters.
        strides: `None` (every stride 1) or the candidate strides.
        skip_connections: whether to search skip connections; without them
            every layer takes the previous one as its input.

    Example:

    >>> space = NASMacroSpace(num_layers=2)
    >>> [layer.inputs for layer in space.decode([1, 1, 0, 1, 1, 0, 1]).layers]
    [(), (0,)]
    """

    name = "macro"

    def __init__(
        self,
        num_layers=6,
        filter_sizes=(1, 3, 5, 7),
        filters=(24, 36, 48, 64),
        strides=None,
        skip_connections=True,
    ):
        if not _is_int(num_layers) or num_layers < 1:
            _fail("num_layers", "a positive integer", num_layers)
        self.num_layers = int(num_layers)
        self.filter_sizes = self._check_choices("filter_sizes", filter_sizes)
        self.filters = self._check_choices("filters", filters)
        self.strides = None if strides is None else self._check_choices("strides", strides)
        self.skip_connections = bool(skip_connections)

    @staticmethod
    def _check_choices(field, values):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            _fail(field, "a list of positive integers", values)
        values = tuple(values)
        if not values or len(set(values)) != len(values):
            _fail(field, "a non-empty list of distinct positive integers", values)
        if any(not _is_int(v) or v < 1 for v in values):
            _fail(field, "a list of positive integers", values)
        return tuple(int(v) for v in values)

    def _layer_decisions(self):
        decisions = [
            ("filter_height", len(self.filter_sizes)),
            ("filter_width", len(self.filter_sizes)),
            ("filters", len(self.filters)),
        ]
        if self.strides is not None:
            decisions.append(("stride", len(self.strides)))
        return decisions

    def decisions(self):
        decisions = []
        for i in range(self.num_layers):
            decisions += self._layer_decisions()
            if self.skip_connections:
                decisions += [("skip", 2)] * i
        return decisions

    def attention_keys(self):
        """Skip decision (i, j) attends to the anchor of layer j: the state
        after layer j's last softmax decision."""
        keys, anchors = [], []
        per_layer = len(self._layer_decisions())
        for i in range(self.num_layers):
            keys += [None] * per_layer
            anchors.append(len(keys) - 1)
            if self.skip_connections:
                keys += anchors[:i]
        return keys

    def decode(self, actions):
        actions = self.check_actions(actions)
        per_layer = len(self._layer_decisions())
        layers, position = [], 0
        for i in range(self.num_layers):
            values = actions[position : position + per_layer]
            position += per_layer
            stride = self.strides[values[3]] if self.strides is not None else 1
            if self.skip_connections:
                inputs = tuple(j for j in range(i) if actions[position + j] == 1)
                position += i
            else:
                inputs = (i - 1,) if i else ()
            layers.append(
                MacroLayer(
                    self.filter_sizes[values[0]],
                    self.filter_sizes[values[1]],
                    self.filters[values[2]],
                    stride,
                    inputs,
                )
            )
        return MacroArchitecture(layers)

    def encode(self, architecture):
        architecture = self.from_data(architecture)
        if len(architecture.layers) != self.num_layers:
            _fail("layers", f"a list of {self.num_layers} layers", len(architecture.layers))
        actions = []
        for i, layer in enumerate(architecture.layers):
            actions += [
                self._index(f"layers[{i}].filter_height", self.filter_sizes, layer.filter_height),
                self._index(f"layers[{i}].filter_width", self.filter_sizes, layer.filter_width),
                self._index(f"layers[{i}].filters", self.filters, layer.filters),
            ]
            if self.strides is not None:
                actions.append(self._index(f"layers[{i}].stride", self.strides, layer.stride))
            elif layer.stride != 1:
                _fail(f"layers[{i}].stride", "1 (the space searches no strides)", layer.stride)
            if self.skip_connections:
                actions += [int(j in layer.inputs) for j in range(i)]
            elif layer.inputs != ((i - 1,) if i else ()):
                _fail(f"layers[{i}].inputs", "the previous layer only", layer.inputs)
        return actions

    @staticmethod
    def _index(field, choices, value):
        if value not in choices:
            _fail(field, f"one of {', '.join(map(str, choices))}", value)
        return choices.index(value)

    def arch_key(self, architecture):
        return self.from_data(architecture).hash()

    def to_data(self, architecture):
        return self.from_data(architecture).to_dict()

    def from_data(self, data):
        return MacroArchitecture.from_dict(data)

    def get_config(self):
        return {
            "name": self.name,
            "num_layers": self.num_layers,
            "filter_sizes": list(self.filter_sizes),
            "filters": list(self.filters),
            "strides": None if self.strides is None else list(self.strides),
            "skip_connections": self.skip_connections,
        }


SPACES = {cls.name: cls for cls in (NASNetCellSpace, NASBench201Space, NASMacroSpace)}


def space_from_config(config):
    """Rebuilds a space from `get_config()` output (or a bare space name).

    Example:

    >>> space_from_config({"name": "nasnet", "num_blocks": 2}).num_blocks
    2
    """
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, dict) or config.get("name") not in SPACES:
        _fail("config", f"a space name or a dict with `name` in {', '.join(SPACES)}", config)
    kwargs = {k: v for k, v in config.items() if k != "name"}
    try:
        return SPACES[config["name"]](**kwargs)
    except TypeError as error:
        raise ValueError(f"`config` has unknown keys for {config['name']}: {error}") from None
