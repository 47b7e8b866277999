"""`NASNetImageConverter`: the one owner of resizing, central crop and pixel scaling.

Every path that feeds a model (classify, evaluate, fine-tuning, the search's
children and every export) goes through the same converter, saved inside the
model's `.keras` file, so a preset's images are prepared one way only:

1. optionally keep the central `crop_fraction` of each side (the ImageNet
   evaluation convention, `tf.image.central_crop`);
2. bring the image to `image_size`: `"crop"` keeps the aspect ratio (scale so
   the image covers the target, then crop the centre), `"stretch"` resizes
   both sides independently (TF-Slim's evaluation); bilinear, antialiased
   when `antialias` (an image that already has the size is left unchanged);
3. map [0, 255] to `value_range` (default [-1, 1], NASNet's inputs).

Augmentation (training only) happens between steps 2 and 3 in the data
pipeline, which calls `resize` and `scale` separately.

Example:

>>> import numpy as np
>>> from nasnet_app.preprocessing import NASNetImageConverter
>>> converter = NASNetImageConverter(image_size=(32, 32))
>>> converter(np.full((1, 64, 48, 3), 255, "uint8")).numpy().max()
1.0
"""

import keras
import numpy as np
import tensorflow as tf

RESIZE_MODES = ("crop", "stretch")


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


def fit_size(image, size, resize="crop", crop_fraction=1.0, antialias=True):
    """One image `(H, W, 3)` (values in [0, 255]) to `size` as float32 (see the module doc)."""
    image = tf.cast(image, tf.float32)
    if crop_fraction < 1.0:
        image = tf.image.central_crop(image, crop_fraction)
    height, width = size
    shape = tf.shape(image)

    def resized():
        if resize == "stretch":
            return tf.image.resize(image, size, antialias=antialias)
        scale = tf.maximum(
            height / tf.cast(shape[0], tf.float32), width / tf.cast(shape[1], tf.float32)
        )
        new_size = tf.cast(tf.math.ceil(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
        scaled = tf.image.resize(image, tf.maximum(new_size, [height, width]), antialias=antialias)
        return tf.image.resize_with_crop_or_pad(scaled, height, width)

    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    image = tf.cond(same, lambda: image, resized)
    return tf.ensure_shape(image, [height, width, 3])


def scale_pixels(image, value_range=(-1.0, 1.0)):
    """Maps pixel values from [0, 255] to `value_range` (None: unchanged)."""
    if value_range is None:
        return image
    low, high = value_range
    return image * ((high - low) / 255.0) + low


@keras.saving.register_keras_serializable(package="nasnet_app")
class NASNetImageConverter(keras.layers.Layer):
    """Resizes, crops and scales images for a NASNet (see the module doc).

    Args:
        image_size: `(height, width)` of the model input.
        crop_fraction: central fraction kept before resizing (0.875 for the
            ImageNet presets, 1.0 elsewhere).
        resize: `"crop"` (keep the aspect ratio) or `"stretch"`.
        antialias: antialiased downscaling.
        value_range: `[low, high]` the pixels [0, 255] are mapped to.

    `call` takes a batch of equally sized images (uint8 or float in [0, 255]);
    `convert_image` takes one image of any size, `convert_images` a list.
    """

    def __init__(
        self,
        image_size=(224, 224),
        crop_fraction=1.0,
        resize="crop",
        antialias=True,
        value_range=(-1.0, 1.0),
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        size = tuple(int(s) for s in image_size) if image_size is not None else None
        if size is None or len(size) != 2 or min(size) < 1:
            _fail("image_size", "(height, width) with positive sizes", image_size)
        if not 0.0 < float(crop_fraction) <= 1.0:
            _fail("crop_fraction", "in (0, 1]", crop_fraction)
        if resize not in RESIZE_MODES:
            _fail("resize", "'crop' or 'stretch'", resize)
        if value_range is not None and (len(value_range) != 2 or value_range[0] >= value_range[1]):
            _fail("value_range", "[low, high] with low < high, or None", value_range)
        self.image_size, self.crop_fraction = size, float(crop_fraction)
        self.resize_mode, self.antialias = resize, bool(antialias)
        self.value_range = None if value_range is None else tuple(float(v) for v in value_range)

    def resize(self, image):
        """Crop + resize of one image; float32 values still in [0, 255]."""
        return fit_size(
            image, self.image_size, self.resize_mode, self.crop_fraction, self.antialias
        )

    def scale(self, images):
        return scale_pixels(images, self.value_range)

    def convert_image(self, image):
        """One `(H, W, C)` image of any size to the model's `(height, width, 3)` input."""
        return self.scale(self.resize(as_rgb_tensor(image)))

    def convert_images(self, images):
        """A list of images of any sizes (arrays in [0, 255]) to one float32 numpy batch."""
        return np.stack([self.convert_image(image).numpy() for image in images])

    def call(self, images):
        images = tf.convert_to_tensor(images)
        return tf.map_fn(
            self.convert_image,
            images,
            fn_output_signature=tf.TensorSpec((*self.image_size, 3), tf.float32),
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.image_size, 3)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=list(self.image_size),
            crop_fraction=self.crop_fraction,
            resize=self.resize_mode,
            antialias=self.antialias,
            value_range=None if self.value_range is None else list(self.value_range),
        )
        return config


def as_rgb_tensor(image):
    """(H, W), (H, W, 1) or (H, W, 4) pixels as an (H, W, 3) tensor."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:
        image = image[..., None]
    channels = image.shape[-1]
    if image.shape.rank != 3 or channels not in (1, 3, 4):
        raise ValueError(
            "`image` must have shape (height, width), (height, width, 1), (height, width, 3) "
            f"or (height, width, 4). Received: image.shape={tuple(image.shape)}"
        )
    if channels == 1:
        return tf.repeat(image, 3, axis=-1)
    return image[..., :3]
