"""The published NASNet-A configurations with keras.applications' arguments.

`NASNetMobile` and `NASNetLarge` compute the same function as
`keras.applications.NASNetMobile` / `NASNetLarge` given the same weights
(stride-2 pools pad with zeros as keras.applications does; pass
`strided_pool_padding="same"` for TF-Slim checkpoints). Unlike
keras.applications they accept pretrained weights at any input size >= 32 px.
"""

import importlib
import os

from nasnet_app.model import NASNet
from nasnet_app.weights import WeightsError, load_keras_h5

# name -> callable(config_name, include_top) -> local file path. The zoo
# registers "imagenet" (download, hash check, cache) when it is imported.
WEIGHT_RESOLVERS = {}

CONFIGS = {
    "mobile": dict(
        num_blocks=4, penultimate_filters=1056, stem="imagenet", stem_filters=32,
        skip_reduction=False, default_size=224,
    ),
    "large": dict(
        num_blocks=6, penultimate_filters=4032, stem="imagenet", stem_filters=96,
        skip_reduction=True, default_size=331,
    ),
    "cifar": dict(
        num_blocks=6, penultimate_filters=768, stem="cifar", stem_filters=96,
        skip_reduction=False, default_size=32, drop_path_keep_prob=0.6, aux_head=True,
        bn_momentum=0.9, bn_epsilon=1e-5,
    ),
}  # fmt: skip


def register_weights_resolver(name, resolver):
    """Lets `weights=name` resolve to a local file (the zoo registers "imagenet")."""
    WEIGHT_RESOLVERS[name] = resolver


def _resolve_named_weights(name, config_name, include_top):
    if name not in WEIGHT_RESOLVERS:
        importlib.import_module("nasnet_app.zoo")  # registers its resolvers
    if name not in WEIGHT_RESOLVERS:
        raise ValueError(
            f"`weights` must be None, 'imagenet' or a path to a file. Received: weights={name!r}"
        )
    return WEIGHT_RESOLVERS[name](config_name, include_top)


def load_weights_file(model, path):
    """Loads `.h5` (keras.applications format) or `.weights.h5` (Keras 3) into `model`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"`weights` must be None, 'imagenet' or a path to a file. Received: weights={path!r} "
            "(no such file)"
        )
    if path.endswith(".weights.h5"):
        model.load_weights(path)
    elif path.endswith((".h5", ".hdf5")):
        load_keras_h5(model, path)
    else:
        raise WeightsError(
            f"Unsupported weights file {path}: expected a keras.applications `.h5` or a Keras "
            "`.weights.h5` file (use nasnet_app.zoo.load for TF-Slim checkpoints and `.keras`)"
        )


def _build(config_name, weights, include_top, input_shape, pooling, classes,
           classifier_activation, **kwargs):  # fmt: skip
    config = dict(CONFIGS[config_name])
    size = config.pop("default_size")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"`weights` must be None, 'imagenet' or a path to a file. Received: weights={weights!r}"
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "`classes` must be 1000 when loading 'imagenet' weights with the top layer. "
            f"Received: classes={classes}"
        )
    if config_name != "cifar":
        config.setdefault("strided_pool_padding", "zeros")
    config.update(kwargs)
    model = NASNet(
        "nasnet_a",
        include_top=include_top,
        input_shape=input_shape if input_shape is not None else (size, size, 3),
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=f"nasnet_{config_name}",
        **config,
    )
    if weights in WEIGHT_RESOLVERS or weights == "imagenet":
        weights = _resolve_named_weights(weights, config_name, include_top)
    if weights is not None:
        load_weights_file(model, weights)
    return model


def NASNetMobile(input_shape=None, include_top=True, weights=None, pooling=None, classes=1000,
                 classifier_activation="softmax", **kwargs):  # fmt: skip
    """NASNet-A Mobile (4 @ 1056), as `keras.applications.NASNetMobile`.

    Args:
        input_shape: `(height, width, 3)`, at least 32 px, `None` entries allowed;
            default `(224, 224, 3)`.
        include_top: whether to include the 1000-way classifier.
        weights: `None`, `"imagenet"` or a path to a keras.applications `.h5`
            or a Keras `.weights.h5` file.
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        classes: number of classes (1000 with ImageNet weights and a top).
        classifier_activation: `"softmax"` or `None` for logits.
        **kwargs: any other `nasnet_app.NASNet` argument (e.g. `dropout`).

    Example:

    >>> import nasnet_app
    >>> model = nasnet_app.NASNetMobile(include_top=False, pooling="avg")
    >>> model.count_params()
    4269716
    """
    return _build("mobile", weights, include_top, input_shape, pooling, classes,
                  classifier_activation, **kwargs)  # fmt: skip


def NASNetLarge(input_shape=None, include_top=True, weights=None, pooling=None, classes=1000,
                classifier_activation="softmax", **kwargs):  # fmt: skip
    """NASNet-A Large (6 @ 4032), as `keras.applications.NASNetLarge`.

    Args: as `NASNetMobile`; the default input is `(331, 331, 3)`.
    """
    return _build("large", weights, include_top, input_shape, pooling, classes,
                  classifier_activation, **kwargs)  # fmt: skip


def NASNetCIFAR(input_shape=None, include_top=True, weights=None, pooling=None, classes=10,
                classifier_activation="softmax", **kwargs):  # fmt: skip
    """NASNet-A CIFAR (6 @ 768) with the CIFAR stem, drop path 0.6 and the aux head.

    Args: as `NASNetMobile`; the default input is `(32, 32, 3)`, 10 classes,
    and weights may be a `.weights.h5` file.
    """
    return _build("cifar", weights, include_top, input_shape, pooling, classes,
                  classifier_activation, **kwargs)  # fmt: skip
