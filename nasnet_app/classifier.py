"""`ImageClassifier`: preprocessing + model + labels, from arrays or image files.

The preprocessing follows a preset dict (see `nasnet_app.zoo.presets`): crop
the central fraction of the image, resize it (bilinear) to the model's input
size and scale pixel values from [0, 255] to [-1, 1]. The ImageNet class index
ships with the package; nothing is fetched at run time.

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

import collections
import functools
import json
import os

import numpy as np

IMAGENET_PREPROCESSING = {
    "central_crop_fraction": 0.875,
    "resize": "bilinear",
    "scale": [-1.0, 1.0],
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CLASS_INDEX_PATH = os.path.join(os.path.dirname(__file__), "data", "imagenet_class_index.json")

Prediction = collections.namedtuple("Prediction", ["index", "wnid", "name", "probability"])


class ImageReadError(ValueError):
    """An image file that cannot be opened or decoded."""


@functools.lru_cache(maxsize=1)
def imagenet_labels():
    """The 1000 ImageNet classes as `(wnid, name)` pairs, in keras.applications order."""
    with open(CLASS_INDEX_PATH, encoding="utf-8") as handle:
        index = json.load(handle)
    return tuple(tuple(index[str(i)]) for i in range(len(index)))


def load_image(path):
    """Reads an image file (JPEG, PNG, BMP, GIF, ...) as an RGB uint8 array (H, W, 3).

    Grayscale, palette, RGBA and 16-bit images are converted to 8-bit RGB; the
    EXIF orientation is applied; for animations the first frame is used.

    Raises:
        ImageReadError: the file is missing or is not a readable image; the
            message names the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb_array(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ImageReadError(f"Cannot read image {os.fspath(path)!r}: {reason}") from None


def _to_rgb_array(image):
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or values.max() > 255 else 1.0
        gray = np.clip(values / scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def as_rgb(array):
    """An (H, W, 3) array from grayscale (H, W) / (H, W, 1) or RGBA (H, W, 4) pixels."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            "`image` must have shape (height, width), (height, width, 1), (height, width, 3) "
            f"or (height, width, 4). Received: image.shape={array.shape}"
        )
    if array.shape[-1] == 1:
        return np.repeat(array, 3, axis=-1)
    return array[..., :3]


def central_crop(image, fraction):
    """The central `fraction` of an image, with the bounds of `tf.image.central_crop`."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(
            f"`central_crop_fraction` must be in (0, 1]. Received: central_crop_fraction={fraction}"
        )
    height, width = image.shape[:2]
    top = int((height - height * fraction) / 2)
    left = int((width - width * fraction) / 2)
    return image[top : height - top, left : width - left]


def preprocess(image, input_size, preprocessing=None):
    """One image (pixel values in [0, 255]) to the model's input: crop, resize, scale.

    Args:
        image: array (H, W), (H, W, 1|3|4).
        input_size: `(height, width)` of the model input.
        preprocessing: dict with `central_crop_fraction` and `scale` (`[low, high]`).

    Returns:
        float32 array `(height, width, 3)`.
    """
    import tensorflow as tf

    settings = {**IMAGENET_PREPROCESSING, **(preprocessing or {})}
    image = central_crop(as_rgb(image).astype(np.float32), settings["central_crop_fraction"])
    if tuple(image.shape[:2]) != tuple(input_size):
        image = tf.image.resize(image, tuple(input_size), method="bilinear").numpy()
    low, high = settings["scale"]
    return (low + (high - low) * image / 255.0).astype(np.float32)


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


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class ImageClassifier:
    """Classifies images with a model, its preset's preprocessing and its labels.

    Args:
        model: a Keras model taking (N, H, W, 3) inputs scaled as the preset says.
        preset: a preset dict (`nasnet_app.zoo.get_preset(...)`): gives the
            input size, the preprocessing, the labels and the label offset.
        labels: overrides the preset's: `"imagenet"`, a list of class names,
            or a list of `(wnid, name)` pairs.
        batch_size: images per model call.

    Example:

    >>> from nasnet_app.zoo import load_classifier  # doctest: +SKIP
    >>> load_classifier("nasnet_a_mobile_imagenet").classify("cat.jpg", top=3)  # doctest: +SKIP
    """

    def __init__(self, model, preset=None, labels=None, batch_size=32):
        self.model = model
        preset = preset or {}
        self.preset_name = preset.get("name")
        self.input_size = tuple(preset.get("input_size") or self._model_input_size())
        self.preprocessing = {**IMAGENET_PREPROCESSING, **(preset.get("preprocessing") or {})}
        self.labels = self._resolve_labels(labels if labels is not None else preset.get("labels"))
        self.label_offset = preset.get("label_offset", 0)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
            )
        self.batch_size = batch_size

    def _model_input_size(self):
        shape = getattr(self.model, "_input_shape_arg", None)
        if shape is None:
            try:
                shape = tuple(self.model.input_shape)[1:]
            except (AttributeError, ValueError):
                shape = None
        if shape is None or shape[0] is None or shape[1] is None:
            return (224, 224)
        return (int(shape[0]), int(shape[1]))

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
        batch = []
        for image in _image_list(images):
            pixels = load_image(image) if _is_path(image) else image
            batch.append(preprocess(pixels, self.input_size, self.preprocessing))
        return np.stack(batch)

    def _outputs_are_probabilities(self, outputs):
        activation = getattr(self.model, "classifier_activation", "unknown")
        if activation != "unknown":
            return getattr(activation, "__name__", activation) == "softmax"
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
        probabilities = outputs if self._outputs_are_probabilities(outputs) else _softmax(outputs)
        offset = self.label_offset
        if self.labels is not None and probabilities.shape[-1] == len(self.labels) + 1:
            offset = 1
        return probabilities[:, offset:]

    def decode(self, probabilities, top=5):
        """Top-`top` `Prediction(index, wnid, name, probability)` per row, most probable first."""
        probabilities = np.asarray(probabilities)
        if probabilities.ndim != 2:
            raise ValueError(
                "`probabilities` must have shape (N, classes). "
                f"Received: probabilities.shape={probabilities.shape}"
            )
        if self.labels is not None and probabilities.shape[-1] != len(self.labels):
            raise ValueError(
                f"`probabilities` must have {len(self.labels)} columns, one per label. "
                f"Received: probabilities.shape={probabilities.shape}"
            )
        if not isinstance(top, int) or top < 1:
            raise ValueError(f"`top` must be a positive integer. Received: top={top!r}")
        results = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")[:top]
            results.append([self._prediction(int(i), float(row[i])) for i in order])
        return results

    def _prediction(self, index, probability):
        if self.labels is None:
            return Prediction(index, None, str(index), probability)
        wnid, name = self.labels[index]
        return Prediction(index, wnid, name, probability)

    def classify(self, images, top=5):
        """`decode(predict(images), top)`."""
        return self.decode(self.predict(images), top=top)
