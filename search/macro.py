"""Keras models from the macro architectures of Zoph & Le (2017).

Each layer concatenates its input layers in depth (the image when it has
none), then applies conv -> batch norm -> ReLU. Layer outputs that no later
layer consumes are concatenated before the classifier. Inputs of different
spatial sizes (strided layers) are brought to one size before concatenation:
the paper pads the smaller ones with zeros (`resize="pad"`, the default,
padding to the largest); `resize="pool"` instead average-pools the larger ones
down to the smallest.

Example:

>>> from nasnet_app.search.spaces import NASMacroSpace
>>> space = NASMacroSpace(num_layers=3)
>>> architecture = space.decode(space.encode({"layers": [
...     {"filter_height": 3, "filter_width": 3, "filters": 24},
...     {"filter_height": 1, "filter_width": 5, "filters": 36, "inputs": [0]},
...     {"filter_height": 7, "filter_width": 1, "filters": 24, "inputs": [0, 1]}]}))
>>> model = build_macro_model(architecture, input_shape=(16, 16, 3), classes=5)
>>> model.output_shape
(None, 5)
"""

import math

import keras

from nasnet_app.search.spaces import MacroArchitecture

RESIZE_MODES = ("pad", "pool")


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _resize(tensor, size, target, mode, name):
    """Brings a `size` (h, w) feature map to `target` (h, w)."""
    if size == target:
        return tensor
    if mode == "pool" and (size[0] > target[0] or size[1] > target[1]):
        pool = (max(1, math.ceil(size[0] / target[0])), max(1, math.ceil(size[1] / target[1])))
        tensor = keras.layers.AveragePooling2D(
            pool, strides=pool, padding="same", name=name + "_pool"
        )(tensor)
        size = (math.ceil(size[0] / pool[0]), math.ceil(size[1] / pool[1]))
    pad_h, pad_w = target[0] - size[0], target[1] - size[1]
    if pad_h or pad_w:
        padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
        tensor = keras.layers.ZeroPadding2D(padding, name=name + "_pad")(tensor)
    return tensor


def _merge(tensors, sizes, mode, name):
    """Concatenates feature maps of possibly different sizes; returns (tensor, size)."""
    pick = min if mode == "pool" else max
    target = (pick(s[0] for s in sizes), pick(s[1] for s in sizes))
    resized = [
        _resize(t, s, target, mode, f"{name}_in{k}") for k, (t, s) in enumerate(zip(tensors, sizes))
    ]
    if len(resized) == 1:
        return resized[0], target
    return keras.layers.Concatenate(axis=-1, name=name + "_concat")(resized), target


def build_macro_model(
    architecture,
    input_shape=(32, 32, 3),
    classes=10,
    classifier_activation="softmax",
    resize="pad",
    dropout=0.0,
    name="macro_net",
):
    """Builds a `keras.Model` for a `MacroArchitecture` (or its dict form).

    Args:
        architecture: a `MacroArchitecture` or `MacroArchitecture.to_dict()` data.
        input_shape: `(height, width, channels)`; height and width must be known.
        classes: number of output classes.
        classifier_activation: activation of the last layer (`None`: logits).
        resize: `"pad"` (the paper: zero-pad smaller maps) or `"pool"`.
        dropout: dropout rate before the classifier.
        name: the model name.

    Returns:
        A functional `keras.Model`; layer `i` is named `layer_<i>_conv`, `_bn`, `_relu`.
    """
    architecture = MacroArchitecture.from_dict(architecture)
    if resize not in RESIZE_MODES:
        _fail("resize", "'pad' or 'pool'", resize)
    shape = tuple(input_shape)
    if len(shape) != 3 or any(not isinstance(d, int) or d < 1 for d in shape):
        _fail("input_shape", "(height, width, channels) with known positive sizes", input_shape)
    if not 0 <= float(dropout) < 1:
        _fail("dropout", "a number in [0, 1)", dropout)
    image = keras.Input(shape)
    image_size = shape[:2]
    outputs, sizes = [], []
    for i, layer in enumerate(architecture.layers):
        if layer.inputs:
            x, size = _merge(
                [outputs[j] for j in layer.inputs],
                [sizes[j] for j in layer.inputs],
                resize,
                f"layer_{i}",
            )
        else:
            x, size = image, image_size
        x = keras.layers.Conv2D(
            layer.filters,
            (layer.filter_height, layer.filter_width),
            strides=layer.stride,
            padding="same",
            use_bias=False,
            name=f"layer_{i}_conv",
        )(x)
        x = keras.layers.BatchNormalization(name=f"layer_{i}_bn")(x)
        x = keras.layers.ReLU(name=f"layer_{i}_relu")(x)
        outputs.append(x)
        sizes.append((math.ceil(size[0] / layer.stride), math.ceil(size[1] / layer.stride)))
    last = architecture.output_layers()
    x, _ = _merge([outputs[j] for j in last], [sizes[j] for j in last], resize, "final")
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(image, x, name=name)
