"""Non-maximum suppression as the OD API's `multiclass_non_max_suppression` does it.

Per class: `tf.image.non_max_suppression` (hard NMS, IoU and score
thresholds, at most `max_size_per_class` boxes); then every class's survivors
are concatenated in class order, sorted by score (ties keep that order),
clipped to the window with boxes of zero area dropped, optionally expressed
relative to the window, and cut to `max_total_size`.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from nasnet_app.detection.anchors import clip_to_window


@dataclasses.dataclass
class NMSResult:
    """Kept boxes, most confident first: `boxes [K, 4]`, `scores [K]`, `classes [K]`
    (0-based), and `indices [K]`: the input row each box came from."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    indices: np.ndarray


def multiclass_nms(
    boxes,
    scores,
    score_threshold,
    iou_threshold,
    max_size_per_class,
    max_total_size,
    clip_window,
    change_coordinate_frame=False,
):
    """NMS over `[N, C or 1, 4]` boxes with `[N, C]` scores (see the module doc).

    Args:
        boxes: `[N, q, 4]`, q = 1 (boxes shared by every class) or C.
        scores: `[N, C]`.
        clip_window: `(ymin, xmin, ymax, xmax)` the kept boxes are clipped to.
        change_coordinate_frame: return boxes relative to `clip_window`
            (normalised to [0, 1] for the window of the whole image).

    Returns:
        An `NMSResult` of numpy arrays.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    count, num_classes = int(scores.shape[0]), int(scores.shape[1])
    kept = {"boxes": [], "scores": [], "classes": [], "indices": []}
    for c in range(num_classes):
        class_boxes = boxes[:, c if boxes.shape[1] > 1 else 0]
        selected = tf.image.non_max_suppression(
            class_boxes,
            scores[:, c],
            min(max_size_per_class, count),
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
        )
        kept["boxes"].append(tf.gather(class_boxes, selected))
        kept["scores"].append(tf.gather(scores[:, c], selected))
        kept["classes"].append(tf.fill(tf.shape(selected), c))
        kept["indices"].append(selected)
    merged = {k: tf.concat(v, axis=0) for k, v in kept.items()}
    order = tf.nn.top_k(merged["scores"], k=tf.size(merged["scores"]), sorted=True).indices
    merged = {k: tf.gather(v, order) for k, v in merged.items()}
    window = tf.constant(clip_window, tf.float32)
    clipped = clip_to_window(merged["boxes"], window)
    area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    nonzero = tf.where(area > 0.0)[:, 0]
    merged = {k: tf.gather(v, nonzero) for k, v in merged.items()}
    merged["boxes"] = tf.gather(clipped, nonzero)
    if change_coordinate_frame:
        merged["boxes"] = change_frame(merged["boxes"], window)
    merged = {k: v[:max_total_size].numpy() for k, v in merged.items()}
    return NMSResult(
        boxes=merged["boxes"].astype(np.float32),
        scores=merged["scores"].astype(np.float32),
        classes=merged["classes"].astype(np.int64),
        indices=merged["indices"].astype(np.int64),
    )


def change_frame(boxes, window):
    """Boxes relative to `window`: shifted to its corner and scaled by its size."""
    height, width = window[2] - window[0], window[3] - window[1]
    shifted = boxes - tf.stack([window[0], window[1], window[0], window[1]])
    return shifted * tf.stack([1.0 / height, 1.0 / width, 1.0 / height, 1.0 / width])


def box_iou(a, b):
    """IoU matrix `[len(a), len(b)]` of two numpy arrays of `(ymin, xmin, ymax, xmax)` boxes."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    top = np.maximum(a[:, None, 0], b[None, :, 0])
    left = np.maximum(a[:, None, 1], b[None, :, 1])
    bottom = np.minimum(a[:, None, 2], b[None, :, 2])
    right = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
