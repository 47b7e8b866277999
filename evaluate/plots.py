"""Report figures: confusion matrix, misclassified examples, training curves (PNG, Agg).

Every figure is drawn on its own `Figure` (no pyplot state) and written
atomically.

Example:

>>> import numpy as np
>>> from nasnet_app.evaluate.plots import plot_confusion_matrix
>>> plot_confusion_matrix([[3, 1], [0, 4]], ["cat", "dog"], "/tmp/confusion.png")
'/tmp/confusion.png'
"""

import numpy as np

from nasnet_app.figures import new_figure
from nasnet_app.figures import save_figure as _save
from nasnet_app.finetune import save_training_curves

plot_training_curves = save_training_curves


def plot_confusion_matrix(matrix, class_names, path, normalize=True, title=None):
    """Draws a confusion matrix (rows: true class, columns: predicted class).

    Args:
        matrix: counts `(classes, classes)`.
        class_names: axis labels.
        path: the PNG to write.
        normalize: colour by the fraction of each true class (counts are
            printed in the cells when there are at most 20 classes).
        title: figure title.

    Returns:
        `path`.
    """
    matrix = np.asarray(matrix, np.float64)
    count = len(class_names)
    if matrix.shape != (count, count):
        raise ValueError(
            f"`matrix` must have shape ({count}, {count}), one row and column per class. "
            f"Received: matrix.shape={matrix.shape}"
        )
    rows = matrix.sum(axis=1, keepdims=True)
    shown = (
        np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0) if normalize else matrix
    )
    side = min(4 + 0.45 * count, 24)
    figure = new_figure((side + 1.5, side))
    axis = figure.add_subplot()
    image = axis.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    ticks = np.arange(count)
    axis.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(ticks, class_names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if count <= 20:
        for (row, col), value in np.ndenumerate(matrix):
            colour = "white" if shown[row, col] > 0.6 * (shown.max() or 1) else "black"
            axis.text(col, row, f"{int(value)}", ha="center", va="center", fontsize=7, color=colour)
    axis.set_title(title or "confusion matrix" + (" (row-normalised)" if normalize else ""))
    figure.tight_layout()
    return _save(figure, path)


def plot_misclassified(images, true_names, predicted_names, confidences, path, columns=5):
    """A grid of misclassified images, each titled `true -> predicted (confidence)`.

    Args:
        images: uint8 `(N, H, W, 3)`.
        true_names, predicted_names: class names per image.
        confidences: probability of the predicted class per image.
        path: the PNG to write.
        columns: images per row.

    Returns:
        `path`.
    """
    count = len(true_names)
    if images is None or count == 0:
        figure = new_figure((4, 1.5))
        figure.text(0.5, 0.5, "no misclassified examples", ha="center", va="center")
        return _save(figure, path)
    images = np.asarray(images)
    if images.ndim != 4 or len(images) != count:
        raise ValueError(
            f"`images` must have shape ({count}, height, width, 3). Received: {images.shape}"
        )
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = new_figure((2.2 * columns, 2.4 * rows))
    for index in range(count):
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.imshow(images[index], interpolation="nearest")
        axis.set_title(
            f"{true_names[index]}\n-> {predicted_names[index]} ({confidences[index]:.2f})",
            fontsize=8,
        )
        axis.axis("off")
    figure.suptitle("misclassified: true -> predicted (confidence)", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)
