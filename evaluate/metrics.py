"""Classification metrics and measured latency.

Example:

>>> import numpy as np
>>> from nasnet_app.evaluate.metrics import top_k_accuracy, confusion_matrix
>>> probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
>>> labels = np.array([0, 1, 1])
>>> round(top_k_accuracy(probabilities, labels, 1), 3), top_k_accuracy(probabilities, labels, 2)
(0.333, 1.0)
>>> confusion_matrix(labels, probabilities.argmax(axis=1), 3).tolist()
[[1, 0, 0], [1, 0, 1], [0, 0, 0]]
"""

import numpy as np


def _check_scores(probabilities, labels):
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if probabilities.ndim != 2:
        raise ValueError(
            "`probabilities` must have shape (N, classes). "
            f"Received: probabilities.shape={probabilities.shape}"
        )
    if labels.shape != (probabilities.shape[0],):
        raise ValueError(
            f"`labels` must have shape ({probabilities.shape[0]},), one per row of "
            f"`probabilities`. Received: labels.shape={labels.shape}"
        )
    return probabilities, labels.astype(np.int64)


def top_k_accuracy(probabilities, labels, k):
    """Fraction of rows whose label is among the `k` highest scores (ties: lower index first)."""
    probabilities, labels = _check_scores(probabilities, labels)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive integer. Received: k={k!r}")
    if len(labels) == 0:
        return float("nan")
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(labels, predictions, num_classes):
    """`matrix[true, predicted]` counts, shape `(num_classes, num_classes)`."""
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(
            "`labels` and `predictions` must have the same shape. "
            f"Received: {labels.shape} and {predictions.shape}"
        )
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"`{name}` must lie in [0, {num_classes}). Received: {values}")
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def precision_recall(matrix):
    """Per-class `(precision, recall, support)` from a confusion matrix.

    A class never predicted has precision `None`; a class absent from the
    labels has recall `None` (both undefined rather than 0).
    """
    matrix = np.asarray(matrix)
    correct = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = [float(c / p) if p else None for c, p in zip(correct, predicted, strict=True)]
    recall = [float(c / s) if s else None for c, s in zip(correct, support, strict=True)]
    return precision, recall, [int(s) for s in support]


def classification_summary(probabilities, labels, class_names):
    """`top1`, `top5` (fractions in [0, 1]), per-class precision / recall and the confusion matrix.

    With fewer than five classes `top5` is top-`num_classes` accuracy (1.0);
    `top5_k` says which k was used.
    """
    probabilities, labels = _check_scores(probabilities, labels)
    num_classes = len(class_names)
    if probabilities.shape[1] != num_classes:
        raise ValueError(
            f"`probabilities` must have {num_classes} columns, one per class name. "
            f"Received: probabilities.shape={probabilities.shape}"
        )
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, num_classes)
    precision, recall, support = precision_recall(matrix)
    top5_k = min(5, num_classes)
    return {
        "examples": int(len(labels)),
        "top1": top_k_accuracy(probabilities, labels, 1),
        "top5": top_k_accuracy(probabilities, labels, top5_k),
        "top5_k": top5_k,
        "per_class": {
            name: {"precision": precision[i], "recall": recall[i], "support": support[i]}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": matrix.tolist(),
    }


def measure_latency(model, input_shape, batch_sizes=(1, 32), warmup=2, repeats=10, seed=0):
    """Measured inference time in milliseconds per image, per batch size (median of `repeats`).

    Each call runs `model(x, training=False)` inside one traced `tf.function`
    and waits for the result; the first `warmup` calls (tracing) are not timed.

    Args:
        model: a Keras model.
        input_shape: `(height, width, channels)` of one image.
        batch_sizes: batch sizes to time.
        warmup: untimed calls per batch size.
        repeats: timed calls per batch size.
        seed: seeds the random input.

    Returns:
        `{"batch_1": {"ms_per_image": ..., "ms_per_batch": ...}, "batch_32": {...}}`.

    Example:

    >>> import keras
    >>> from nasnet_app.evaluate.metrics import measure_latency
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2)])
    >>> sorted(measure_latency(model, (8, 8, 3), batch_sizes=(1,), repeats=2))
    ['batch_1']
    """
    import tensorflow as tf

    from nasnet_app.timing import time_per_batch

    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    rng = np.random.default_rng(seed)

    def make_input(batch):
        return tf.constant(rng.uniform(-1, 1, (batch, *input_shape)).astype(np.float32))

    return time_per_batch(
        lambda x: np.asarray(forward(x)), make_input, batch_sizes, warmup, repeats
    )
