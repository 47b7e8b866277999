"""Cell drawings: any `Cell` or `Genotype` as a left-to-right graph PNG (matplotlib only).

Nodes: the two cell inputs `h_{i}` (state 0, the previous cell's output) and
`h_{i-1}` (state 1), one node per block labelled with its combine method
(`add` / `concat`), and the output concatenation `h_{i+1}`. Edges into a block
carry the name of the operation applied on that side.

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


def _op_label(ax, xy, op):
    return ax.text(
        *xy,
        op,
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
