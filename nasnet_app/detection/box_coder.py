"""The Faster R-CNN box coder (`FasterRcnnBoxCoder`): boxes as scaled centre/size offsets.

An encoding `(ty, tx, th, tw)` of a box relative to an anchor is
`(10 (y - ya) / ha, 10 (x - xa) / wa, 5 log(h / ha), 5 log(w / wa))` with the
default scales `(y_scale, x_scale, height_scale, width_scale) = (10, 10, 5, 5)`.
"""

import tensorflow as tf


def _centers_and_sizes(boxes):
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    height, width = ymax - ymin, xmax - xmin
    return ymin + height / 2.0, xmin + width / 2.0, height, width


def decode(encodings, anchors, scales=(10.0, 10.0, 5.0, 5.0)):
    """Boxes `[..., 4]` (ymin, xmin, ymax, xmax) from encodings relative to `anchors`."""
    ya, xa, ha, wa = _centers_and_sizes(anchors)
    ty, tx, th, tw = tf.unstack(encodings, axis=-1)
    ty, tx, th, tw = ty / scales[0], tx / scales[1], th / scales[2], tw / scales[3]
    w = tf.exp(tw) * wa
    h = tf.exp(th) * ha
    y = ty * ha + ya
    x = tx * wa + xa
    return tf.stack([y - h / 2.0, x - w / 2.0, y + h / 2.0, x + w / 2.0], axis=-1)


def encode(boxes, anchors, scales=(10.0, 10.0, 5.0, 5.0)):
    """The inverse of `decode` (sizes are floored at 1e-8 as in the OD API)."""
    ya, xa, ha, wa = _centers_and_sizes(anchors)
    y, x, h, w = _centers_and_sizes(boxes)
    epsilon = 1e-8
    ha, wa, h, w = ha + epsilon, wa + epsilon, h + epsilon, w + epsilon
    ty, tx = (y - ya) / ha * scales[0], (x - xa) / wa * scales[1]
    th, tw = tf.math.log(h / ha) * scales[2], tf.math.log(w / wa) * scales[3]
    return tf.stack([ty, tx, th, tw], axis=-1)
