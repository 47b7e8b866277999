"""The one figure helper: a pyplot-free matplotlib `Figure` and its atomic PNG write.

Example:

>>> from nasnet_app.figures import new_figure, save_figure
>>> figure = new_figure((3, 2))
>>> _ = figure.add_subplot().plot([0, 1], [1, 0])
>>> save_figure(figure, "/tmp/line.png")
'/tmp/line.png'
"""

import os

from nasnet_app.io_utils import atomic_path


def new_figure(figsize, dpi=100):
    """A `Figure` on the Agg canvas (no global pyplot state, safe in any thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path, dpi=100, make_folder=True):
    """Writes `figure` as a PNG atomically (temporary file + rename); returns the path."""
    path = os.fspath(path)
    if make_folder:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path
