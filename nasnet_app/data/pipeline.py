"""`ImageData` and its deterministic `tf.data` pipelines.

A pipeline decodes each image, converts it to RGB, fits it to the model's input
size, augments it (`nasnet_app.data.augment`), scales the pixels, batches and
prefetches. Resizing, central crop and scaling are those of
`nasnet_app.preprocessing` (`fit_size`, `scale_pixels`, the steps of
`NASNetImageConverter`), so training, evaluation and `classify` prepare an
image the same way.

The order and augmentation of epoch `e` depend only on `(seed, e)`, so a run
resumed at an epoch boundary sees exactly the batches an uninterrupted run
would have seen.
"""

import dataclasses
import io

import numpy as np
import tensorflow as tf

from nasnet_app.data.augment import augment_image, resolve_augment
from nasnet_app.data.images import BadImage, bad_images_error, pil_rgb, probe_image, read_problem
from nasnet_app.preprocessing import fit_size, scale_pixels

_AUTOTUNE = tf.data.AUTOTUNE


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds; travels with its pipelines.

    Attributes:
        class_names: class names, index = label.
        image_size: `(height, width)` the pipelines deliver.
        counts: examples per split, e.g. `{"train": 2000, "test": 1000}`.
        class_counts: per split, examples per class (`None` where unknown
            without a full pass, e.g. TFDS splits).
        source: where the data came from (a path, `tfds:NAME`, `arrays`).
        held_out: splits carved out of another, e.g.
            `{"val": {"from": "train", "fraction": 0.1, "seed": 0}}`.
        skipped_images: unreadable files left out (`skip_bad_images=True`).
    """

    class_names: tuple
    image_size: tuple
    counts: dict
    class_counts: dict
    source: str
    held_out: dict = dataclasses.field(default_factory=dict)
    skipped_images: int = 0

    @property
    def num_classes(self):
        return len(self.class_names)

    def to_dict(self):
        return {
            "class_names": list(self.class_names),
            "image_size": list(self.image_size),
            "counts": dict(self.counts),
            "class_counts": {
                k: None if v is None else list(v) for k, v in self.class_counts.items()
            },
            "source": self.source,
            "held_out": {k: dict(v) for k, v in self.held_out.items()},
            "skipped_images": self.skipped_images,
        }


# --------------------------------------------------------------------------- split storage


class EncodedSplit:
    """Encoded image files: read from disk by path, or held as bytes (archives)."""

    def __init__(self, names, labels, paths=None, inline=None):
        self.names, self.labels = list(names), np.asarray(labels, np.int32)
        self.paths = [""] * len(self.names) if paths is None else list(paths)
        self.inline = [b""] * len(self.names) if inline is None else list(inline)
        self._tensors = None

    @property
    def count(self):
        return len(self.names)

    def subset(self, indices):
        names, paths, inline = (
            [items[i] for i in indices] for items in (self.names, self.paths, self.inline)
        )
        return EncodedSplit(names, self.labels[indices], paths, inline)

    def element_fn(self):
        """`index -> (uint8 image, label)`; call eagerly (it creates the constants)."""
        if self._tensors is None:
            self._tensors = (
                tf.constant(self.paths, tf.string),
                tf.constant(self.inline, tf.string),
                tf.constant(self.labels),
            )
        paths, inline, labels = self._tensors

        def element(index):
            held = tf.gather(inline, index)
            encoded = tf.cond(
                tf.strings.length(held) > 0, lambda: held, lambda: tf.io.read_file(paths[index])
            )
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            image.set_shape([None, None, 3])
            return image, tf.gather(labels, index)

        return element

    def read_bytes(self, index):
        if self.inline[index]:
            return self.inline[index]
        with open(self.paths[index], "rb") as handle:
            return handle.read()

    def pixels(self, index):
        return pil_rgb(self.read_bytes(index), self.names[index])

    def scan(self, full=False):
        """`BadImage`s of the files that fail `probe_image` (every file decoded if `full`)."""
        bad = []
        for index, name in enumerate(self.names):
            held = self.inline[index]
            try:
                probe_image(io.BytesIO(held) if held else self.paths[index], full)
            except Exception as error:  # Pillow raises many types for corrupt files
                bad.append(BadImage(name, read_problem(error)))
        return bad


class PixelSplit:
    """Decoded uint8 RGB images of one size, held in memory."""

    def __init__(self, pixels, labels, names=None):
        self.array, self.labels = pixels, np.asarray(labels, np.int32)
        self.names = names or [f"array[{i}]" for i in range(len(self.labels))]
        self._tensors = None

    @property
    def count(self):
        return len(self.labels)

    def subset(self, indices):
        return PixelSplit(
            self.array[indices], self.labels[indices], [self.names[i] for i in indices]
        )

    def element_fn(self):
        """`index -> (uint8 image, label)`; call eagerly (it creates the constants)."""
        if self._tensors is None:
            self._tensors = (tf.constant(self.array), tf.constant(self.labels))
        pixels, labels = self._tensors
        return lambda index: (tf.gather(pixels, index), tf.gather(labels, index))

    def pixels(self, index):
        return self.array[index]

    def scan(self, full=False):
        return []


class StreamSplit:
    """A split read in order from a `tf.data.Dataset` of (uint8 image, label), e.g. TFDS."""

    def __init__(self, make_dataset, count, name):
        self.make_dataset, self._count, self.name = make_dataset, count, name
        self.labels = None

    @property
    def count(self):
        return self._count

    def pixels_at(self, indices):
        """Images at positions `indices`, in one pass over the stream."""
        wanted, found = {int(i) for i in indices}, {}
        for position, (image, _) in enumerate(self.make_dataset()):
            if position in wanted:
                found[position] = image.numpy()
                if len(found) == len(wanted):
                    break
        return [found[int(i)] for i in indices]

    def scan(self, full=False):
        return []


# --------------------------------------------------------------------------- seeds and sizes


def _epoch_seed(seed, epoch):
    return tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0], tf.int64), tf.cast(epoch, tf.int64)
    )


def check_image_size(image_size):
    """`(height, width)` from an int or a pair; rejects anything else."""
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    try:
        height, width = (int(s) for s in image_size)
    except (TypeError, ValueError):
        height = width = 0
    if height < 1 or width < 1:
        _fail("image_size", "a positive int or a (height, width) pair", image_size)
    return (height, width)


# --------------------------------------------------------------------------- ImageData


class ImageData:
    """A labelled image dataset: a `DatasetInfo` plus its splits.

    Build one with `load(...)`, `from_folder`, `from_tar`, `from_cifar_batches`,
    `from_tfds` or `from_arrays`; get pipelines with `dataset(...)`.

    Args:
        splits: `{split name: split storage}`.
        class_names: names by label.
        image_size: `(height, width)` the pipelines deliver.
        source: where the data came from.
        held_out: see `DatasetInfo.held_out`.
        bad_files: the unreadable files that were skipped (`BadImage`s).

    Example:

    >>> import numpy as np
    >>> from nasnet_app.data import from_arrays
    >>> ds = from_arrays(train=(np.zeros((4, 40, 30), "uint8"), [0, 1, 0, 1]))
    >>> ds.with_image_size((32, 32)).info.image_size
    (32, 32)
    """

    def __init__(self, splits, class_names, image_size, source, held_out=None, bad_files=()):
        self.splits = dict(splits)
        self.bad_files = tuple(bad_files)
        class_counts = {
            name: None
            if split.labels is None
            else tuple(int(c) for c in np.bincount(split.labels, minlength=len(class_names)))
            for name, split in self.splits.items()
        }
        self.info = DatasetInfo(
            class_names=tuple(class_names),
            image_size=check_image_size(image_size),
            counts={name: split.count for name, split in self.splits.items()},
            class_counts=class_counts,
            source=str(source),
            held_out=dict(held_out or {}),
            skipped_images=len(self.bad_files),
        )

    def __repr__(self):
        info = self.info
        return (
            f"ImageData(source={info.source!r}, classes={info.num_classes}, "
            f"image_size={info.image_size}, counts={info.counts})"
        )

    def replace(self, splits=None, image_size=None, held_out=None, bad_files=None):
        """The same data with some of its parts replaced."""
        return ImageData(
            self.splits if splits is None else splits,
            self.class_names,
            self.info.image_size if image_size is None else image_size,
            self.info.source,
            self.info.held_out if held_out is None else held_out,
            self.bad_files if bad_files is None else bad_files,
        )

    @property
    def class_names(self):
        return self.info.class_names

    @property
    def evaluation_split(self):
        """`"test"` if present, else `"val"`, else `"train"`."""
        return next(s for s in ("test", "val", "train") if s in self.splits)

    def with_image_size(self, image_size):
        """The same data delivered at another `(height, width)`."""
        return self.replace(image_size=image_size)

    def subset(self, per_class, seed=0):
        """At most `per_class` images of each class in every split, chosen by `seed`.

        Example:

        >>> from nasnet_app.data import demo_cifar10
        >>> demo_cifar10().subset({"train": 5, "test": 2}).info.counts
        {'train': 50, 'test': 20}
        """
        if isinstance(per_class, int):
            per_class = dict.fromkeys(self.splits, per_class)
        rng = np.random.default_rng(seed)
        splits = dict(self.splits)
        for name, limit in per_class.items():
            part = self.split(name)
            if part.labels is None:
                _fail("per_class", "given only for splits held in memory (not TFDS)", per_class)
            keep = [
                rng.permutation(np.flatnonzero(part.labels == label))[:limit]
                for label in range(self.info.num_classes)
            ]
            splits[name] = part.subset(np.sort(np.concatenate(keep)).astype(np.int64))
        return self.replace(splits=splits)

    def split(self, name):
        if name not in self.splits:
            _fail("split", f"one of {sorted(self.splits)} for {self.info.source}", name)
        return self.splits[name]

    def steps(self, split, batch_size, drop_remainder=False):
        """Batches per epoch of `split`."""
        count = self.split(split).count
        return count // batch_size if drop_remainder else -(-count // batch_size)

    def labels(self, split):
        """The labels of `split` in evaluation order (a full pass for streamed splits)."""
        part = self.split(split)
        if part.labels is not None:
            return part.labels.copy()
        return np.array([int(label) for _, label in part.make_dataset()], np.int32)

    def images(self, split, indices):
        """uint8 RGB images at the pipelines' size, by position in evaluation order."""
        part = self.split(split)
        if isinstance(part, StreamSplit):
            raw = part.pixels_at(indices)
        else:
            raw = [part.pixels(int(i)) for i in indices]
        size = self.info.image_size
        out = [fit_size(tf.convert_to_tensor(image), size, "crop").numpy() for image in raw]
        return np.clip(np.round(np.stack(out)), 0, 255).astype(np.uint8) if out else None

    def source_name(self, split, index):
        """The file (or archive member / array row) behind example `index` of `split`."""
        part = self.split(split)
        return part.names[index] if hasattr(part, "names") else f"{part.name}[{index}]"

    def scan(self, splits=None, full=False):
        """Every unreadable file of `splits` (default: all), as `BadImage`s; raises nothing.

        The check of loading (header and complete data); `full=True` decodes
        every file with Pillow. Arrays, CIFAR batches and TFDS have no files: `()`.
        """
        return tuple(bad for name in splits or self.splits for bad in self.split(name).scan(full))

    def check_images(self, splits=None):
        """Decodes every image with Pillow; raises `BadImagesError` naming every bad file."""
        bad = self.scan(splits, full=True)
        if bad:
            raise bad_images_error(bad, self.info.source)

    def dataset(
        self,
        split,
        batch_size=32,
        training=False,
        augment=None,
        shuffle=None,
        seed=0,
        first_epoch=0,
        epochs=1,
        value_range=(-1.0, 1.0),
        one_hot=False,
        resize="crop",
        crop_fraction=1.0,
        drop_remainder=False,
        prefetch=True,
        converter=None,
    ):
        """A batched pipeline of `(images, labels)` for `split`.

        Args:
            split: `"train"`, `"val"` or `"test"`.
            batch_size: images per batch.
            training: augment and shuffle (unless `augment` / `shuffle` say otherwise).
            augment: an `Augment`, `True` (default `Augment()`), `False`; `None`:
                `training`.
            shuffle: reshuffle each epoch; `None`: `training`.
            seed: with the epoch number, fixes order and augmentation.
            first_epoch, epochs: the pipeline holds epochs `first_epoch ..
                first_epoch + epochs - 1` back to back (`epochs=None`: forever),
                each `steps(split, batch_size)` batches long; pass
                `steps_per_epoch` to `fit`.
            value_range: `(low, high)` pixel values map to; `None`: [0, 255].
            one_hot: labels as one-hot float vectors (for label smoothing).
            resize: `"crop"` (keep aspect ratio, crop the centre) or `"stretch"`.
            crop_fraction: central fraction kept before resizing (0.875 for
                the ImageNet presets' evaluation).
            drop_remainder: drop a last incomplete batch per epoch.
            prefetch: prefetch batches in the background.
            converter: a `NASNetImageConverter` (a model's `preprocessor`):
                its size, crop, resize mode, antialiasing and value range
                replace `resize`, `crop_fraction` and `value_range`, so the
                pipeline feeds the model exactly what `classify` feeds it.
        """
        antialias = True
        if converter is not None:
            resize, crop_fraction = converter.resize_mode, converter.crop_fraction
            value_range, antialias = converter.value_range, converter.antialias
        if resize not in ("crop", "stretch"):
            _fail("resize", "'crop' or 'stretch'", resize)
        if not 0.0 < crop_fraction <= 1.0:
            _fail("crop_fraction", "in (0, 1]", crop_fraction)
        if not isinstance(batch_size, int) or batch_size < 1:
            _fail("batch_size", "a positive integer", batch_size)
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            _fail("epochs", "None or a positive integer", epochs)
        augment = resolve_augment(augment, training)
        shuffle = training if shuffle is None else shuffle
        part = self.split(split)
        size = self.info.image_size if converter is None else converter.image_size
        num_classes = self.info.num_classes

        def prepare(image, label, epoch, position):
            image = fit_size(image, size, resize, crop_fraction, antialias)
            if augment is not None:
                element_seed = tf.random.experimental.stateless_fold_in(
                    _epoch_seed(seed, epoch), position
                )
                image = augment_image(image, augment, size, element_seed)
            image = scale_pixels(image, value_range)
            label = tf.cast(label, tf.int32)
            if one_hot:
                label = tf.one_hot(label, num_classes)
            return image, label

        # Built eagerly, outside the traced per-epoch function.
        source = part.make_dataset() if isinstance(part, StreamSplit) else part.element_fn()
        if shuffle and isinstance(part, StreamSplit):
            # A streamed split cannot be reordered by a per-epoch tensor seed inside
            # `flat_map`; it is shuffled once here and reshuffled on each iteration.
            source = source.shuffle(
                min(part.count, 10_000), seed=seed, reshuffle_each_iteration=True
            )

        def one_epoch(epoch):
            examples = _ordered_examples(part, source, shuffle, seed, epoch)
            examples = examples.map(
                lambda position, image, label: prepare(image, label, epoch, position),
                num_parallel_calls=_AUTOTUNE,
            )
            return examples.batch(batch_size, drop_remainder=drop_remainder)

        stop = 2**62 if epochs is None else first_epoch + epochs
        pipeline = tf.data.Dataset.range(first_epoch, stop).flat_map(one_epoch)
        if epochs is not None:  # a known length lets Keras size progress bars and stop cleanly
            total = epochs * self.steps(split, batch_size, drop_remainder)
            pipeline = pipeline.apply(tf.data.experimental.assert_cardinality(total))
        return pipeline.prefetch(_AUTOTUNE) if prefetch else pipeline

    def cached(self, resize="crop"):
        """The same data decoded once into memory (uint8 at `image_size`).

        Later epochs skip reading and decoding; costs `N x H x W x 3` bytes.
        """
        splits = {}
        for name, part in self.splits.items():
            if isinstance(part, PixelSplit) and part.array.shape[1:3] == self.info.image_size:
                splits[name] = part
                continue
            pixels = [
                np.clip(np.round(images.numpy()), 0, 255).astype(np.uint8)
                for images, _ in self.dataset(name, batch_size=256, value_range=None, resize=resize)
            ]
            names = part.names if hasattr(part, "names") else None
            splits[name] = PixelSplit(np.concatenate(pixels), self.labels(name), names)
        return self.replace(splits=splits)


def _ordered_examples(part, source, shuffle, seed, epoch):
    """`(position, uint8 image, label)` of one epoch, in its (seeded) order.

    `source` is the stream of a `StreamSplit`, else the split's `element_fn()`.
    """
    if isinstance(part, StreamSplit):
        return source.enumerate().map(lambda position, item: (position, item[0], item[1]))
    if shuffle:
        noise = tf.random.stateless_uniform([part.count], _epoch_seed(seed, epoch))
        order = tf.argsort(noise)
    else:
        order = tf.range(part.count)
    positions = tf.data.Dataset.from_tensor_slices(order).enumerate()
    return positions.map(
        lambda position, index: (position, *source(index)), num_parallel_calls=_AUTOTUNE
    )
