"""The published NASNet-A configurations with keras.applications' arguments.

`NASNetMobile` and `NASNetLarge` compute the same function as
`keras.applications.NASNetMobile` / `NASNetLarge` given the same weights
(stride-2 pools pad with zeros as keras.applications does; pass
`strided_pool_padding="same"` for TF-Slim checkpoints). Unlike
keras.applications they accept pretrained weights at any input size >= 32 px.
The architectures come from `nasnet_app.presets`; `weights="imagenet"`
fetches the official keras-applications file listed there (MD5-checked,
cached, see `nasnet_app.download`).
"""

import os

from nasnet_app import download
from nasnet_app.model import NASNet
from nasnet_app.presets import ARCHITECTURES, IMAGENET_PREPROCESSING, KERAS_WEIGHT_FILES
from nasnet_app.weights import WeightsError, load_keras_h5

WEIGHTS_EXPECTATION = "None, 'imagenet' or a path to a file"


def _weights_error(weights, detail=""):
    return ValueError(
        f"`weights` must be {WEIGHTS_EXPECTATION}. Received: weights={weights!r}{detail}"
    )


def imagenet_weights_path(config_name, include_top, progress=True):
    """Local path of the official keras-applications `.h5` file (downloaded on first use)."""
    if config_name not in KERAS_WEIGHT_FILES:
        raise ValueError(
            "`weights` must be None or a path to a file for this network: 'imagenet' weights "
            f"exist for NASNetMobile and NASNetLarge. Received: weights='imagenet' for "
            f"{config_name!r}"
        )
    entry = KERAS_WEIGHT_FILES[config_name]["top" if include_top else "no_top"]
    return download.fetch(entry.url, entry.file_name, md5=entry.md5, progress=progress)


def load_weights_file(model, path):
    """Loads `.h5` (keras.applications format) or `.weights.h5` (Keras 3) into `model`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _weights_error(path, " (no such file)")
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
    architecture = ARCHITECTURES[config_name]
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise _weights_error(weights)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "`classes` must be 1000 when loading 'imagenet' weights with the top layer. "
            f"Received: classes={classes}"
        )
    config = architecture.model_kwargs()
    if config_name != "cifar":
        config["strided_pool_padding"] = "zeros"
    if input_shape is not None:
        config["input_shape"] = input_shape
    size = architecture.default_size
    if config_name != "cifar" and "preprocessor" not in kwargs:
        kwargs["preprocessor"] = IMAGENET_PREPROCESSING.converter((size, size))
    config.update(kwargs)
    model = NASNet(
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=f"nasnet_{config_name}",
        **config,
    )
    if weights == "imagenet":
        weights = imagenet_weights_path(config_name, include_top)
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
