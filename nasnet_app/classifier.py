"""`ImageClassifier`: a model, its image converter and its labels, from arrays or image files.

The images are prepared by the model's own `NASNetImageConverter`
(`model.preprocessor`, saved in its `.keras` file); for any other Keras model
a converter is made from the preset's `preprocessing` (a
`nasnet_app.presets.Preprocessing`: crop fraction, resize mode, antialias,
value range). A preset is a zoo `Preset` record or its `to_dict()` form (any
subset of its keys); this module reads it without importing the zoo. The
ImageNet class index ships with the package; nothing is fetched at run time.

Example:

>>> import numpy as np, nasnet_app
>>> from nasnet_app.classifier import ImageClassifier
>>> model = nasnet_app.NASNet(num_blocks=1, penultimate_filters=48, stem="cifar",
...     stem_filters=12, input_shape=(32, 32, 3), classes=3)
>>> classifier = ImageClassifier(model, labels=["cat", "dog", "bird"])
>>> top = classifier.classify(np.zeros((40, 50, 3), "uint8"), top=2)[0]
>>> len(top), top[0].name in ("cat", "dog", "bird")
(2, True)
"""

import functools
import json
import os

import numpy as np

from nasnet_app.assets import asset_path
from nasnet_app.data.images import ImageReadError, read_image
from nasnet_app.image_classifier import Prediction, decode_predictions, softmax
from nasnet_app.preprocessing import NASNetImageConverter, as_rgb_tensor
from nasnet_app.presets import Preprocessing


@functools.lru_cache(maxsize=1)
def imagenet_labels():
    """The 1000 ImageNet classes as `(wnid, name)` pairs, in keras.applications order."""
    with open(asset_path("imagenet_class_index.json"), encoding="utf-8") as handle:
        index = json.load(handle)
    return tuple(tuple(index[str(i)]) for i in range(len(index)))


def load_image(path):
    """Reads an image file (JPEG, PNG, BMP, GIF, WebP, TIFF, ...) as an RGB uint8 array
    `(H, W, 3)`, decoded exactly as the data pipeline decodes it.

    Grayscale, palette, RGBA and 16-bit images are converted to 8-bit RGB; the
    EXIF orientation is applied; for animations the first frame is used.

    Raises:
        ImageReadError: the file is missing or is not a readable image; the
            message names the file.
    """
    return read_image(path)


def as_rgb(array):
    """An (H, W, 3) array from grayscale (H, W) / (H, W, 1) or RGBA (H, W, 4) pixels."""
    return np.asarray(as_rgb_tensor(np.asarray(array)))


def preset_fields(preset):
    """A preset as a dict: a record's `to_dict()` (a zoo `Preset`), a dict as given."""
    if preset is None:
        return {}
    return preset.to_dict() if hasattr(preset, "to_dict") else dict(preset)


def converter_for(model, preset=None):
    """The model's own `NASNetImageConverter`, else one made from a preset's `preprocessing`."""
    own = getattr(model, "preprocessor", None)
    if isinstance(own, NASNetImageConverter):
        return own
    fields = preset_fields(preset)
    size = fields.get("input_size") or _model_input_size(model)
    return Preprocessing.from_dict(fields.get("preprocessing") or {}).converter(size)


def _model_input_size(model):
    size = getattr(model, "image_size", None)
    if size is None:
        try:
            shape = tuple(model.input_shape)[1:3]
            size = shape if None not in shape else None
        except (AttributeError, ValueError):
            size = None
    return tuple(size) if size else (224, 224)


def _is_path(value):
    return isinstance(value, (str, os.PathLike))


def _image_list(images):
    """Normalizes the accepted inputs to a list of paths and/or (H, W, C) arrays."""
    if _is_path(images):
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images)
        return [images]
    if isinstance(images, (list, tuple)) and images:
        return list(images)
    raise ValueError(
        "`images` must be an image path, an array (H, W, C) or (N, H, W, C), or a non-empty "
        f"list of those. Received: images={images!r}"
    )


class ImageClassifier:
    """Classifies images with a model, its image converter and its labels.

    Args:
        model: a Keras model taking (N, H, W, 3) inputs prepared by its
            converter (`model.preprocessor`) or as the preset says.
        preset: a zoo `Preset` (`nasnet_app.zoo.get_preset(...)`) or a dict
            of its fields: gives the input size, the preprocessing, the labels
            and the label offset for models that carry none of their own.
        labels: overrides the model's class names and the preset's labels:
            `"imagenet"`, a list of class names, or a list of `(wnid, name)` pairs.
        batch_size: images per model call.

    Example:

    >>> from nasnet_app.zoo import load_classifier  # doctest: +SKIP
    >>> load_classifier("nasnet_a_mobile_imagenet").classify("cat.jpg", top=3)  # doctest: +SKIP
    """

    def __init__(self, model, preset=None, labels=None, batch_size=32):
        self.model = model
        preset = preset_fields(preset)
        self.preset_name = preset.get("name")
        self.converter = converter_for(model, preset)
        self.input_size = self.converter.image_size
        if labels is None:
            labels = getattr(model, "class_names", None) or preset.get("labels")
        self.labels = self._resolve_labels(labels)
        self.label_offset = preset.get("label_offset", 0)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
            )
        self.batch_size = batch_size

    @staticmethod
    def _resolve_labels(labels):
        if labels is None:
            return None
        if isinstance(labels, str):
            if labels != "imagenet":
                raise ValueError(
                    f"`labels` must be 'imagenet', a list of names or None. Received: {labels!r}"
                )
            return list(imagenet_labels())
        return [tuple(x) if isinstance(x, (list, tuple)) else (None, str(x)) for x in labels]

    def preprocess(self, images):
        """Images (paths or arrays with values in [0, 255]) to one float32 batch."""
        pixels = [load_image(image) if _is_path(image) else image for image in _image_list(images)]
        return self.converter.convert_images(pixels)

    def _outputs_are_probabilities(self, outputs):
        activation = getattr(self.model, "classifier_activation", "unknown")
        if activation != "unknown":
            activation = getattr(activation, "__name__", activation)
            return activation == "softmax"
        sums = outputs.sum(axis=-1)
        return bool(np.all(outputs >= 0) and np.allclose(sums, 1.0, atol=1e-3))

    def predict(self, images):
        """Class probabilities `(N, classes)`; a TF-Slim background column is dropped."""
        items = _image_list(images)
        chunks = []
        for start in range(0, len(items), self.batch_size):
            batch = self.preprocess(items[start : start + self.batch_size])
            chunks.append(np.asarray(self.model(batch, training=False), dtype=np.float32))
        outputs = np.concatenate(chunks)
        probabilities = outputs if self._outputs_are_probabilities(outputs) else softmax(outputs)
        offset = self.label_offset
        if self.labels is not None and probabilities.shape[-1] == len(self.labels) + 1:
            offset = 1
        return probabilities[:, offset:]

    def decode(self, probabilities, top=5):
        """Top-`top` `Prediction(index, wnid, name, probability)` per row, most probable first."""
        return decode_predictions(probabilities, self.labels, top)

    def classify(self, images, top=5):
        """`decode(predict(images), top)`."""
        return self.decode(self.predict(images), top=top)


__all__ = ["ImageClassifier", "ImageReadError", "Prediction", "as_rgb", "load_image"]
