"""Training augmentation: random crop with zero padding, horizontal flip, cutout.

Every random choice is stateless: it depends only on the seed it is given,
which the pipeline derives from `(seed, epoch, position)`.
"""

import dataclasses

import tensorflow as tf


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class Augment:
    """Training augmentation.

    Args:
        crop_padding: pixels of zero padding before a random crop back to the
            image size; `None`: 1/8 of the smaller side (4 at 32 px); 0: no crop.
        flip: random horizontal flip.
        cutout: side in pixels of a square set to mid-gray at a random centre
            (DeVries & Taylor 2017; 16 at 32 px); 0: off.
    """

    crop_padding: int | None = None
    flip: bool = True
    cutout: int = 0

    def __post_init__(self):
        if self.crop_padding is not None and (
            not isinstance(self.crop_padding, int) or self.crop_padding < 0
        ):
            _fail("crop_padding", "None or a non-negative integer", self.crop_padding)
        if not isinstance(self.cutout, int) or self.cutout < 0:
            _fail("cutout", "a non-negative integer", self.cutout)

    def padding_for(self, image_size):
        if self.crop_padding is None:
            return max(1, min(image_size) // 8)
        return self.crop_padding


def resolve_augment(augment, training):
    """An `Augment` or `None` from `augment` (`Augment`, `True`, `False`, `None`: `training`)."""
    if augment is None:
        augment = training
    if augment is True:
        return Augment()
    if augment is False:
        return None
    if isinstance(augment, Augment):
        return augment
    return _fail("augment", "an Augment, True, False or None", augment)


def augment_image(image, augment, size, seed):
    """Applies `augment` to one float image of `size`, with the stateless `seed`."""
    crop_seed, flip_seed, cutout_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    padding = augment.padding_for(size)
    if padding:
        padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
        image = tf.image.stateless_random_crop(padded, [size[0], size[1], 3], crop_seed)
    if augment.flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    if augment.cutout:
        image = cutout(image, augment.cutout, size, cutout_seed)
    return image


def cutout(image, side, size, seed):
    """Sets a `side` x `side` square at a random centre to mid-gray (127.5)."""
    centre = tf.random.stateless_uniform([2], seed, minval=0, maxval=1) * tf.constant(
        size, tf.float32
    )
    centre = tf.cast(centre, tf.int32)
    rows = tf.range(size[0])[:, None]
    cols = tf.range(size[1])[None, :]
    half = side // 2
    inside = (
        (rows >= centre[0] - half)
        & (rows < centre[0] - half + side)
        & (cols >= centre[1] - half)
        & (cols < centre[1] - half + side)
    )
    return tf.where(inside[..., None], tf.fill(tf.shape(image), 127.5), image)
