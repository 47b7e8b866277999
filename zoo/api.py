"""`load`, `convert`, `download` and `load_classifier`: presets and weight files into models.

Weight files are recognised by their form, as the official sources ship them:

* `.h5` / `.hdf5`: keras.applications legacy HDF5 weights
  (`nasnet_app.weights.load_keras_h5`; the model pads stride-2 pools with zeros);
* a TF-Slim checkpoint prefix, a folder holding one, or the official `.tar.gz`
  archive (`nasnet_app.zoo.slim`; TF-Slim pool padding);
* `.weights.h5`: weights saved by Keras 3 `model.save_weights`;
* `.keras`: a whole saved model (`nasnet_app.load_model`, which also upgrades
  files of nasnet-app 0.1).

Every model built here carries its preset's image converter (`preprocessor`)
and class names, so both travel in its `.keras` file.

Example:

>>> from nasnet_app import zoo
>>> model = zoo.load("nasnet_a_mobile_imagenet", weights="imagenet")  # doctest: +SKIP
>>> model = zoo.load("nasnet_a_mobile_imagenet", weights="model.ckpt")  # doctest: +SKIP
"""

import os

from nasnet_app import download as downloads
from nasnet_app.io_utils import atomic_path
from nasnet_app.zoo import presets as registry
from nasnet_app.zoo.slim import ARCHIVE_SUFFIXES, load_slim_checkpoint

PRETRAINED = ("imagenet", "pretrained")


def detect_format(path):
    """`"keras"`, `"weights_h5"`, `"keras_h5"` or `"slim"` for a local weight file or folder."""
    path = os.fspath(path)
    if path.endswith(".keras"):
        return "keras"
    if path.endswith(".weights.h5"):
        return "weights_h5"
    if path.endswith((".h5", ".hdf5")):
        return "keras_h5"
    if path.endswith(ARCHIVE_SUFFIXES) or os.path.isdir(path):
        return "slim"
    stripped = path.removesuffix(".index").removesuffix(".meta")
    if os.path.exists(stripped + ".index") or ".data-0" in path:
        return "slim"
    raise ValueError(
        "`weights` must be None, 'imagenet', a URL, or a path to a .h5, .weights.h5, .keras "
        f"file, a TF-Slim checkpoint prefix or a .tar.gz archive. Received: weights={path!r}"
    )


def classification_preset(name):
    """The `Preset` for a name or record; a detector preset is refused by name."""
    preset = registry.get_preset(name)
    if preset.task != registry.CLASSIFICATION:
        raise ValueError(
            f"`preset` must be an image classification preset. Received: preset={preset.name!r} "
            f"(a {preset.task} preset: load it with nasnet_app.zoo.detection.load_detector)"
        )
    return preset


def fetch_weights(preset, source=None, include_top=True, progress=True):
    """Local path of a preset's weight file, downloading it into the cache if needed.

    Args:
        preset: a preset name or `Preset`.
        source: a key of `preset.weights` (`"keras"`, `"slim"`, ...); by
            default the preset's `default_weights`.
        include_top: pick the file with the classification layer, where the
            source ships both.
        progress: show a download progress bar.

    Returns:
        `(path, source)`.
    """
    preset = classification_preset(preset)
    source = source or preset.default_weights
    if not source:
        raise ValueError(
            f"`weights` must be None or a path for preset {preset.name!r}, "
            "which names no pretrained weights."
        )
    entry = preset.weight_file(source, include_top)
    if entry.path and os.path.exists(entry.path):
        _check_local_hash(entry)
        return entry.path, source
    if not entry.url:
        raise FileNotFoundError(f"Weights of preset {preset.name!r} not found at {entry.path}.")
    path = downloads.fetch(
        entry.url, entry.file_name or None, md5=entry.md5, sha256=entry.sha256, progress=progress
    )
    return path, source


def _check_local_hash(entry):
    if entry.sha256 and downloads.file_hash(entry.path) != entry.sha256:
        raise downloads.HashMismatchError(
            f"{entry.path} does not have the SHA-256 its manifest records ({entry.sha256}); "
            "the file is damaged or was replaced."
        )


def _resolve_weights(preset, weights, source, include_top, progress):
    """`(path, format, source)` for the `weights` argument, or `(None, None, None)`."""
    if weights is None:
        return None, None, None
    if isinstance(weights, str) and weights in PRETRAINED:
        path, source = fetch_weights(preset, source, include_top, progress)
        return path, preset.weights[source].format, source
    if isinstance(weights, str) and "://" in weights:
        path = downloads.fetch(weights, progress=progress)
        return path, detect_format(path), None
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"`weights` must be None, 'imagenet', a URL or a path. Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    fmt = detect_format(path)
    if fmt != "slim" and not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found: {path}")
    return path, fmt, None


def _check_classes(preset, weights, include_top, overrides):
    classes = overrides.get("classes", preset.classes)
    if weights is not None and include_top and classes != preset.classes:
        raise ValueError(
            f"`classes` must be {preset.classes} (the classes of the weights of "
            f"{preset.name!r}) when loading weights with include_top=True. "
            f"Received: classes={classes}"
        )


def _image_size(input_shape, preset):
    height, width = tuple(input_shape)[:2]
    return preset.input_size if height is None or width is None else (height, width)


def build_model(preset, include_top=True, weights_format=None, **overrides):
    """An untrained `NASNet` with a preset's configuration, converter and class names.

    Args:
        preset: a preset name or `Preset`.
        include_top: keep the classification layer.
        weights_format: the weight format to be loaded (`"keras_h5"` or
            `"slim"`); it sets the matching stride-2 pool padding unless
            `strided_pool_padding` is given.
        **overrides: other `nasnet_app.NASNet` arguments; the preset's
            `preprocessor` follows an overridden `input_shape`, and its class
            names are left out when `classes` differs.
    """
    import nasnet_app

    preset = classification_preset(preset)
    kwargs = preset.model_kwargs(include_top)
    padding = registry.SOURCE_PADDING.get(weights_format)
    if padding is not None:
        kwargs["strided_pool_padding"] = padding
    kwargs.update(overrides)
    if "preprocessor" not in overrides:
        kwargs["preprocessor"] = preset.converter(_image_size(kwargs["input_shape"], preset))
    if "class_names" not in overrides:
        kwargs["class_names"] = preset.class_names(kwargs["classes"]) if include_top else None
    return nasnet_app.NASNet(**kwargs)


def load(
    name,
    weights=None,
    include_top=True,
    source=None,
    include_background=False,
    progress=True,
    **overrides,
):
    """Builds a preset's model and loads weights into it.

    Args:
        name: a preset name (see `list_presets()`) or a `Preset`.
        weights: `None` (random initialisation), `"imagenet"` (the preset's
            published weights, downloaded and cached), a URL, or a local file:
            `.h5` (keras.applications), TF-Slim checkpoint prefix / folder /
            `.tar.gz`, `.weights.h5`, or `.keras` (returned as saved; the
            preset's own `.keras` checkpoint gets the preset's class names if
            it has none).
        include_top: keep the classification layer.
        source: which published weights for `"imagenet"`: `"keras"` (default)
            or `"slim"`.
        include_background: with TF-Slim weights, keep the 1001-class head
            (index 0 = background) instead of dropping the background class.
        progress: show download progress.
        **overrides: other `nasnet_app.NASNet` arguments (`input_shape`,
            `pooling`, `classifier_activation`, `classes` without weights, ...).

    Returns:
        A `nasnet_app.NASNet` with the preset's `preprocessor` and
        `class_names` (or the saved model of a `.keras` file).

    Example:

    >>> from nasnet_app import zoo
    >>> model = zoo.load("nasnet_a_mobile_imagenet", weights="imagenet", source="slim")  # doctest: +SKIP
    """
    preset = classification_preset(name)
    path, fmt, source = _resolve_weights(preset, weights, source, include_top, progress)
    if fmt == "keras":
        return _load_keras_file(path, preset if source else None)
    if include_background:
        if fmt != "slim":
            raise ValueError(
                "`include_background` must be False unless TF-Slim weights are loaded. "
                f"Received: include_background=True with weights={weights!r}"
            )
        preset = preset.replace(classes=preset.classes + 1, labels=None)
    _check_classes(preset, weights, include_top, overrides)
    model = build_model(preset, include_top, fmt, **overrides)
    _load_into(model, path, fmt)
    return model


def _load_keras_file(path, preset=None):
    """A saved model; a preset's own checkpoint gets the preset's class names if it has none."""
    import nasnet_app

    model = nasnet_app.load_model(path)
    named = isinstance(model, nasnet_app.NASNetImageClassifier) and model.class_names is not None
    if preset is not None and not named and getattr(model, "include_top", False):
        model.class_names = preset.class_names(model.classes)
    return model


def _load_into(model, path, fmt):
    if fmt is None:
        return
    if fmt == "slim":
        load_slim_checkpoint(model, path)
    elif fmt == "keras_h5":
        from nasnet_app.weights import load_keras_h5

        load_keras_h5(model, path)
    else:
        model.load_weights(path)


def save_model(model, out):
    """Saves a model as a `.keras` file atomically and returns the path."""
    out = os.fspath(out)
    if not out.endswith(".keras"):
        raise ValueError(f"`out` must end in .keras. Received: out={out!r}")
    with atomic_path(out, suffix=".keras") as tmp:
        model.save(tmp)
    return out


def convert(name, weights, out, include_top=True, **kwargs):
    """Loads `weights` into the preset's model and saves it as a `.keras` file.

    Args:
        name: a preset name or `Preset`.
        weights: as in `load` (a file, URL or `"imagenet"`).
        out: the `.keras` file to write (atomically).
        include_top: keep the classification layer.
        **kwargs: passed to `load` (`source`, `include_background`, ...).

    Returns:
        The path written.

    Example:

    >>> convert("nasnet_a_mobile_imagenet", "NASNet-mobile.h5", "mobile.keras")  # doctest: +SKIP
    'mobile.keras'
    """
    if weights is None:
        raise ValueError("`weights` must name the weights to convert. Received: weights=None")
    return save_model(load(name, weights, include_top=include_top, **kwargs), out)


def load_classifier(name, weights="imagenet", model=None, batch_size=32, **kwargs):
    """An `ImageClassifier` for a preset (its preprocessing and labels).

    Args:
        name: a preset name or `Preset`.
        weights: as in `load` (ignored when `model` is given).
        model: an already loaded model to use instead.
        batch_size: images per model call.
        **kwargs: passed to `load`.
    """
    from nasnet_app.classifier import ImageClassifier

    preset = classification_preset(name)
    if model is None:
        model = load(preset, weights, **kwargs)
    if kwargs.get("include_background"):
        preset = preset.replace(label_offset=1)
    return ImageClassifier(model, preset, batch_size=batch_size)
