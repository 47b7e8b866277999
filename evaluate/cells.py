"""Cell drawings: any `Cell` or `Genotype` as a left-to-right graph PNG (matplotlib only).

Nodes: the two cell inputs `h_{i}` (state 0, the previous cell's output) and
`h_{i-1}` (state 1), one node per block labelled with its combine method
(`add` / `concat`), and the output concatenation `h_{i+1}`. Edges into a block
carry the label of the operation applied on that side (`OpSpec.label`).

Example:

>>> import tempfile, os
>>> from nasnet_app.evaluate.cells import draw_genotype
>>> path = os.path.join(tempfile.mkdtemp(), "nasnet_a.png")
>>> draw_genotype("nasnet_a", path) == path
True
"""

import itertools
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nasnet_app.genotype import Cell, resolve_genotype
from nasnet_app.io_utils import atomic_path
from nasnet_app.op_registry import get_op

INPUT_LABELS = {0: "$h_{i}$", 1: "$h_{i-1}$"}
COLOURS = {"input": "#cfe2f3", "add": "#fff2cc", "concat": "#fce5cd", "output": "#d9ead3"}
LAYER_WIDTH = 2.6  # inches between layers
ROW_HEIGHT = 0.9  # inches between nodes of one layer
# An op label sits this far left of its block node, above (left op) or below
# (right op) it, so labels never pile up where many edges cross.
OP_LABEL_DX = 0.9
OP_LABEL_DY = 0.2
LANE_GAP = 0.15  # between edges routed around the nodes to the output
LANE_TURN_DX = 0.5
LANE_MARGIN = 0.45  # between the outermost node and the first lane


def _check_png_path(path):
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).lower().endswith(".png"):
        raise ValueError(f"`path` must be a file path ending in .png. Received: path={path!r}")
    return os.fspath(path)


def _as_cell(cell):
    if isinstance(cell, Cell):
        return cell
    if isinstance(cell, (dict, list, tuple)):
        return Cell.from_data(cell)
    raise ValueError(f"`cell` must be a Cell (or its dict / list form). Received: cell={cell!r}")


def _layers(cell):
    """Layer (column) of every hidden state: inputs 0, a block one past its inputs."""
    layer = {0: 0, 1: 0}
    for k, block in enumerate(cell.blocks):
        layer[2 + k] = 1 + max(layer[i] for i in block.inputs)
    return layer


def _positions(cell, layer):
    """(x, y) of each state and of the output node ("out"), in inches.

    Within a column, nodes are ordered by the mean height of their sources
    (one barycentre pass), which removes most edge crossings.
    """
    last = max(layer.values()) + 1
    columns = [[] for _ in range(last)]
    for state in sorted(layer):
        columns[layer[state]].append(state)
    height = max(len(column) for column in columns)
    pos = {}
    for x, column in enumerate(columns):
        if x > 0:
            column.sort(key=lambda s: (_mean_source_height(cell, s, pos), s))
        # Short columns spread out (up to two rows apart) to fan their edges out.
        gap = ROW_HEIGHT * min(2.0, (height - 1) / max(len(column) - 1, 1))
        for row, state in enumerate(column):
            pos[state] = (x * LAYER_WIDTH, ((len(column) - 1) / 2 - row) * gap)
    pos["out"] = (last * LAYER_WIDTH, 0.0)
    return pos


def _mean_source_height(cell, state, pos):
    inputs = cell.blocks[state - 2].inputs
    return -sum(pos[i][1] for i in inputs) / len(inputs)


def _lanes(cell, layer, pos):
    """Output edges that skip columns: `(state, lane height, rank)` each.

    They run round all nodes, below or above; the state nearest a side takes
    its innermost lane, so lanes never cross.
    """
    last = max(layer.values()) + 1
    ys = [y for _, y in pos.values()]
    sides = {-1: [], 1: []}
    for state in cell.output_indices():
        if last - layer[state] > 1:
            sides[-1 if pos[state][1] <= 0 else 1].append(state)
    lanes = []
    for sign, states in sides.items():
        edge = min(ys) if sign < 0 else max(ys)
        for rank, state in enumerate(sorted(states, key=lambda s: -sign * pos[s][1])):
            lanes.append((state, edge + sign * (LANE_MARGIN + rank * LANE_GAP), rank))
    return lanes


def _plan(cell):
    """Positions, lanes and the drawing's extent (xmin, xmax, ymin, ymax) in inches."""
    layer = _layers(cell)
    pos = _positions(cell, layer)
    lanes = _lanes(cell, layer, pos)
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()] + [lane_y for _, lane_y, _ in lanes]
    extent = (min(xs) - 0.5, max(xs) + 0.6, min(ys) - 0.5, max(ys) + 0.45)
    return layer, pos, lanes, extent


def _node(ax, xy, text, kind):
    return ax.text(
        *xy,
        text,
        ha="center",
        va="center",
        fontsize=10,
        zorder=3,
        bbox={"boxstyle": "round,pad=0.4", "fc": COLOURS[kind], "ec": "#444444"},
    )


def _op_label(ax, xy, op, raw=False):
    return ax.text(
        *xy,
        op if raw else get_op(op).label,
        ha="center",
        va="center",
        fontsize=7.5,
        color="#1c4587",
        zorder=4,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#9fc5e8", "lw": 0.8},
    )


def _arrow(ax, source, target, head=True):
    """A straight line between text boxes or bare (x, y) points, clipped at the boxes."""

    def xy_and_patch(end):
        if hasattr(end, "get_bbox_patch"):
            return end.get_position(), end.get_bbox_patch()
        return end, None

    (target_xy, target_patch), (source_xy, source_patch) = map(xy_and_patch, (target, source))
    ax.annotate(
        "",
        xy=target_xy,
        xytext=source_xy,
        zorder=2,
        arrowprops={
            "arrowstyle": "-|>" if head else "-",
            "color": "#555555",
            "lw": 1.0,
            "shrinkA": 1 if source_patch else 0,
            "shrinkB": 1 if target_patch else 0,
            "patchA": source_patch,
            "patchB": target_patch,
        },
    )


def _lane_edge(ax, source, target, lane_y, rank):
    """Leaves the source sideways, turns in the gap before the next column's op
    labels (so it crosses no node), runs along its lane and enters the target."""
    (x0, y0), (x1, _) = source.get_position(), target.get_position()
    shift = rank * LANE_GAP / 1.5
    corners = [(x0 + LANE_TURN_DX + shift, y0), (x0 + LANE_TURN_DX + shift, lane_y)]
    corners.append((x1 - 0.6 + shift, lane_y))
    _arrow(ax, source, corners[0], head=False)
    for start, end in itertools.pairwise(corners):
        _arrow(ax, start, end, head=False)
    _arrow(ax, corners[-1], target)


def _draw_on(ax, cell, title):
    layer, pos, lanes, extent = _plan(cell)
    nodes = {i: _node(ax, pos[i], INPUT_LABELS[i], "input") for i in (0, 1)}
    for k, block in enumerate(cell.blocks):
        nodes[2 + k] = _node(ax, pos[2 + k], block.combine, block.combine)
    nodes["out"] = _node(ax, pos["out"], "concat\n$h_{i+1}$", "output")
    for k, block in enumerate(cell.blocks):
        x, y = pos[2 + k]
        ax.text(x, y - 0.2, f"block {k}", ha="center", va="top", fontsize=6.5, color="#777777")
        # Each edge into a block passes through its op label: left side above, right below.
        for source, op, dy in zip(
            block.inputs, block.ops, (OP_LABEL_DY, -OP_LABEL_DY), strict=True
        ):
            label_xy = (x - OP_LABEL_DX, y + dy)
            _arrow(ax, nodes[source], label_xy, head=False)
            _arrow(ax, _op_label(ax, label_xy, op), nodes[2 + k])
    laned = {state for state, _, _ in lanes}
    for state in cell.output_indices():
        if state not in laned:
            _arrow(ax, nodes[state], nodes["out"])
    for state, lane_y, rank in lanes:
        _lane_edge(ax, nodes[state], nodes["out"], lane_y, rank)
    ax.set_xlim(*extent[:2])
    ax.set_ylim(*extent[2:])
    ax.set_aspect("equal")  # positions are in inches; keep them undistorted
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=12)


def _figure_size(cell):
    xmin, xmax, ymin, ymax = _plan(cell)[3]
    return xmax - xmin + 0.3, ymax - ymin + 0.6


def _save(fig, path):
    FigureCanvasAgg(fig)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path


def draw_cell(cell, path, title=None):
    """Draws one cell as a graph and writes it to a PNG file, atomically.

    Args:
        cell: a `Cell` (or its dict / list-of-blocks form).
        path: output file, ending in `.png`.
        title: optional figure title.

    Returns:
        The path written.

    Example:

    >>> import tempfile, os
    >>> from nasnet_app.genotype import NASNET_A
    >>> out = os.path.join(tempfile.mkdtemp(), "normal.png")
    >>> draw_cell(NASNET_A.normal, out, title="NASNet-A normal") == out
    True
    """
    cell = _as_cell(cell)
    path = _check_png_path(path)
    fig = Figure(figsize=_figure_size(cell))
    _draw_on(fig.add_subplot(1, 1, 1), cell, title)
    fig.tight_layout()
    return _save(fig, path)


def draw_genotype(genotype, path):
    """Draws the normal and reduction cells of a genotype, one above the other.

    Args:
        genotype: a `Genotype`, a catalogue name, a dict, JSON text or a JSON file.
        path: output file, ending in `.png`.

    Returns:
        The path written.
    """
    genotype = resolve_genotype(genotype)
    path = _check_png_path(path)
    sizes = [_figure_size(genotype.normal), _figure_size(genotype.reduction)]
    fig = Figure(figsize=(max(w for w, _ in sizes), sum(h for _, h in sizes) + 0.4))
    axes = fig.subplots(2, 1, height_ratios=[h for _, h in sizes])
    prefix = f"{genotype.name}: " if genotype.name else ""
    _draw_on(axes[0], genotype.normal, f"{prefix}normal cell")
    _draw_on(axes[1], genotype.reduction, f"{prefix}reduction cell")
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- NAS-Bench-201

NB201_POSITIONS = {0: (0.0, 0.0), 1: (1.0, 0.8), 2: (2.0, -0.8), 3: (3.0, 0.0)}


def nasbench201_edges(arch):
    """`[(source, target, op), ...]` of a NAS-Bench-201 arch string `|op~0|+|op~0|op~1|+...`."""
    nodes = arch.split("+") if isinstance(arch, str) else ()
    edges = []
    for target, text in enumerate(nodes, start=1):
        items = text[1:-1].split("|") if text.startswith("|") and text.endswith("|") else ()
        for source, item in enumerate(items):
            op, _, index = item.partition("~")
            if not op or index != str(source):
                break
            edges.append((source, target, op))
    if len(nodes) != 3 or len(edges) != 6:
        raise ValueError(
            "`arch` must be a NAS-Bench-201 arch string (3 nodes, |op~i| edges). "
            f"Received: arch={arch!r}"
        )
    return edges


def draw_nasbench201(arch, path, title=None):
    """Draws a NAS-Bench-201 cell as its 4-node graph (one op per edge, `none` left out).

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "cell.png")
    >>> draw_nasbench201("|nor_conv_3x3~0|+|skip_connect~0|none~1|"
    ...                  "+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|", path) == path
    True
    """
    edges = nasbench201_edges(arch)
    path = _check_png_path(path)
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    nodes = {
        node: _node(ax, xy, f"node {node}", "input" if node == 0 else "add")
        for node, xy in NB201_POSITIONS.items()
    }
    for source, target, op in edges:
        if op == "none":
            continue
        (x0, y0), (x1, y1) = NB201_POSITIONS[source], NB201_POSITIONS[target]
        _arrow(ax, nodes[source], nodes[target])
        _op_label(ax, ((x0 + x1) / 2, (y0 + y1) / 2), op, raw=True)
    ax.set_xlim(-0.5, 3.5)
    ax.set_ylim(-1.3, 1.3)
    ax.set_axis_off()
    ax.set_title(title or "NAS-Bench-201 cell", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- macro networks


def _macro_layers(architecture):
    """Layer dicts of a macro architecture (a `MacroArchitecture`, or its dict form)."""
    layers = architecture.get("layers") if isinstance(architecture, dict) else None
    if layers is None:
        layers = getattr(architecture, "layers", None)
    if not layers:
        raise ValueError(
            "`architecture` must be a macro architecture with a `layers` list. "
            f"Received: architecture={architecture!r}"
        )
    return [layer if isinstance(layer, dict) else layer.to_dict() for layer in layers]


def _macro_label(layer):
    stride = layer.get("stride", 1)
    text = f"conv {layer['filter_height']}x{layer['filter_width']}\n{layer['filters']} filters"
    return text + (f", /{stride}" if stride != 1 else "")


def draw_macro(architecture, path, title=None):
    """Draws a macro network (Zoph & Le 2017) as its layer graph: conv layers, skip inputs.

    Each layer takes the concatenation of its `inputs` (the image when empty);
    an edge from the layer just before is straight, a skip arcs above the row.
    Layers no later layer consumes feed the classifier.

    Example:

    >>> import tempfile, os
    >>> layers = [{"filter_height": 3, "filter_width": 3, "filters": 24, "inputs": []},
    ...           {"filter_height": 5, "filter_width": 5, "filters": 36, "inputs": [0]},
    ...           {"filter_height": 3, "filter_width": 1, "filters": 24, "inputs": [0, 1]}]
    >>> out = os.path.join(tempfile.mkdtemp(), "macro.png")
    >>> draw_macro({"layers": layers}, out) == out
    True
    """
    layers = _macro_layers(architecture)
    path = _check_png_path(path)
    used = {j for layer in layers for j in layer.get("inputs", ())}
    count = len(layers)
    fig = Figure(figsize=(1.7 * (count + 2) + 0.5, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    nodes = {"image": _node(ax, (0.0, 0.0), "image", "input")}
    for i, layer in enumerate(layers):
        nodes[i] = _node(ax, (1.7 * (i + 1), 0.0), f"{i}: {_macro_label(layer)}", "add")
    nodes["out"] = _node(ax, (1.7 * (count + 1), 0.0), "concat\nclassifier", "output")
    for i, layer in enumerate(layers):
        for j in layer.get("inputs") or ["image"]:
            _curved_arrow(ax, nodes[j], nodes[i], span=i - (-1 if j == "image" else j))
    for i in range(count):
        if i not in used:
            _curved_arrow(ax, nodes[i], nodes["out"], span=count - i, below=True)
    ax.set_xlim(-0.8, 1.7 * (count + 1) + 0.8)
    ax.set_ylim(-1.6, 1.6)
    ax.set_axis_off()
    ax.set_title(title or f"macro network, {count} layers", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def _curved_arrow(ax, source, target, span, below=False):
    """A straight arrow between neighbours; longer ones arc, the longer the higher."""
    rad = 0.0 if span <= 1 else min(0.6, 0.15 + 0.08 * span) * (1 if below else -1)
    ax.annotate(
        "",
        xy=target.get_position(),
        xytext=source.get_position(),
        zorder=2,
        arrowprops={
            "arrowstyle": "-|>",
            "color": "#555555",
            "lw": 1.0,
            "connectionstyle": f"arc3,rad={rad}",
            "patchA": source.get_bbox_patch(),
            "patchB": target.get_bbox_patch(),
        },
    )
