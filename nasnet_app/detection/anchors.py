"""Grid anchors as the OD API's `GridAnchorGenerator` lays them out, clipped to the image.

Anchors are `(ymin, xmin, ymax, xmax)` in pixels, ordered location by
location (row-major over the feature map), and at each location aspect ratio
by aspect ratio, scale by scale within a ratio: the order of the RPN's
`[H, W, anchors * 4]` outputs once flattened. Computed in float32 with the
same operations, so they equal the original bit for bit.
"""

import tensorflow as tf


def grid_anchors(grid_height, grid_width, config):
    """`[grid_height * grid_width * config.num_anchors, 4]` anchors before clipping."""
    scales = tf.constant(config.scales, tf.float32)
    ratios = tf.constant(config.aspect_ratios, tf.float32)
    # Every (ratio, scale) pair, ratio-major.
    scale_grid = tf.reshape(tf.tile(scales[None, :], [len(config.aspect_ratios), 1]), [-1])
    ratio_grid = tf.reshape(tf.tile(ratios[:, None], [1, len(config.scales)]), [-1])
    ratio_sqrts = tf.sqrt(ratio_grid)
    heights = scale_grid / ratio_sqrts * float(config.height)
    widths = scale_grid * ratio_sqrts * float(config.width)
    y_centers = tf.range(grid_height, dtype=tf.float32) * float(config.height_stride)
    y_centers = y_centers + float(config.height_offset)
    x_centers = tf.range(grid_width, dtype=tf.float32) * float(config.width_stride)
    x_centers = x_centers + float(config.width_offset)
    count = len(config.scales) * len(config.aspect_ratios)
    shape = [grid_height, grid_width, count]
    y = tf.broadcast_to(y_centers[:, None, None], shape)
    x = tf.broadcast_to(x_centers[None, :, None], shape)
    h = tf.broadcast_to(heights[None, None, :], shape)
    w = tf.broadcast_to(widths[None, None, :], shape)
    centers = tf.reshape(tf.stack([y, x], axis=-1), [-1, 2])
    sizes = tf.reshape(tf.stack([h, w], axis=-1), [-1, 2])
    return tf.concat([centers - 0.5 * sizes, centers + 0.5 * sizes], axis=1)


def clip_to_window(boxes, window):
    """Clips `[N, 4]` boxes to `window = (ymin, xmin, ymax, xmax)` (OD API order of min/max)."""
    window = tf.cast(window, boxes.dtype)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    ymin = tf.maximum(tf.minimum(ymin, window[2]), window[0])
    ymax = tf.maximum(tf.minimum(ymax, window[2]), window[0])
    xmin = tf.maximum(tf.minimum(xmin, window[3]), window[1])
    xmax = tf.maximum(tf.minimum(xmax, window[3]), window[1])
    return tf.stack([ymin, xmin, ymax, xmax], axis=1)


def image_anchors(grid_height, grid_width, image_height, image_width, config):
    """The RPN anchors of an image: the grid, clipped to `[0, 0, height, width]`."""
    window = tf.constant([0.0, 0.0, float(image_height), float(image_width)])
    return clip_to_window(grid_anchors(grid_height, grid_width, config), window)
