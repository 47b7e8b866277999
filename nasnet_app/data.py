"""Image datasets as deterministic `tf.data` pipelines.

`load(source)` reads a labelled image collection into an `ImageData`: its
description (`DatasetInfo`: class names, counts, image size) and its splits
(`"train"`, `"val"`, `"test"`). `ImageData.dataset(split, ...)` builds the
pipeline: decode, convert to RGB, resize/crop to the model's input size,
augment (random crop with padding, horizontal flip, cutout), scale to
`value_range` ([-1, 1], the NASNet convention), batch and prefetch.

Sources:

* an image folder with one sub-folder per class, either directly
  (`DIR/<class>/*.jpg`, with `val_fraction` / `test_fraction` carved out by
  seed) or under split folders (`DIR/train/<class>/...`, `val/`, `test/`);
* the same tree inside a `.tar` / `.tar.gz` archive, read without extracting
  (e.g. the CIFAR-10 JPEG archive `train/<class>/*.jpg`, `test/<class>/*.jpg`);
* the original CIFAR-10 python batches (`data_batch_1..5`, `test_batch`), as
  a folder or the `cifar-10-python.tar.gz` archive;
* a TFDS dataset by name (`"tfds:NAME"` or `from_tfds`), read offline from
  `data_dir`;
* numpy arrays (`from_arrays`).

JPEG, PNG, BMP, GIF, WebP and TIFF files of any mode (grayscale, RGBA,
palette, CMYK, 16-bit) become 8-bit RGB. Files TensorFlow cannot decode
faithfully (palette or 1-bit BMP, TIFF) are converted once with Pillow when the
data is loaded; everything else is decoded inside the pipeline.

Pipelines are deterministic: the order and augmentation of epoch `e` depend
only on `(seed, e)`, so a run resumed at an epoch boundary sees exactly the
batches an uninterrupted run would have seen.

Example:

>>> import numpy as np
>>> from nasnet_app import data
>>> images = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype="uint8")
>>> ds = data.from_arrays(train=(images, np.arange(12) % 3), val_fraction=0.25)
>>> ds.info.counts
{'train': 9, 'val': 3}
>>> batch, labels = next(iter(ds.dataset("train", batch_size=4, training=True)))
>>> tuple(batch.shape), float(batch.numpy().min()) >= -1.0
((4, 32, 32, 3), True)
"""

import collections
import dataclasses
import io
import os
import pickle
import tarfile

import numpy as np
import tensorflow as tf

from nasnet_app.classifier import ImageReadError

SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
DEMO_CIFAR10_PATH = os.path.join(os.path.dirname(__file__), "data", "cifar10_subset.tar")
_NATIVE_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "WEBP"}
_NATIVE_BMP_MODES = {"RGB", "RGBA", "L"}
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
    """

    class_names: tuple
    image_size: tuple
    counts: dict
    class_counts: dict
    source: str

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
        }


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


# --------------------------------------------------------------------------- splits


class _EncodedSplit:
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
        return _EncodedSplit(names, self.labels[indices], paths, inline)

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
        return _pil_rgb(self.read_bytes(index), self.names[index])

    def check(self):
        for index in range(self.count):
            self.pixels(index)


class _PixelSplit:
    """Decoded uint8 RGB images of one size, held in memory."""

    def __init__(self, pixels, labels, names=None):
        self.array, self.labels = pixels, np.asarray(labels, np.int32)
        self.names = names or [f"array[{i}]" for i in range(len(self.labels))]
        self._tensors = None

    @property
    def count(self):
        return len(self.labels)

    def subset(self, indices):
        return _PixelSplit(
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

    def check(self):
        return None


class _StreamSplit:
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

    def check(self):
        return None


# --------------------------------------------------------------------------- pipelines


def _epoch_seed(seed, epoch):
    return tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0], tf.int64), tf.cast(epoch, tf.int64)
    )


def _fit_size(image, size, resize, crop_fraction=1.0):
    """Resizes to `size` (keeping the aspect ratio and cropping the centre, or stretching).

    `crop_fraction < 1` first keeps the central fraction of each side
    (`tf.image.central_crop`, the ImageNet evaluation convention).
    """
    image = tf.cast(image, tf.float32)
    if crop_fraction < 1.0:
        image = tf.image.central_crop(image, crop_fraction)
    height, width = size
    shape = tf.shape(image)

    def resized():
        if resize == "stretch":
            return tf.image.resize(image, size, antialias=True)
        scale = tf.maximum(
            height / tf.cast(shape[0], tf.float32), width / tf.cast(shape[1], tf.float32)
        )
        new_size = tf.cast(tf.math.ceil(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
        scaled = tf.image.resize(image, tf.maximum(new_size, [height, width]), antialias=True)
        return tf.image.resize_with_crop_or_pad(scaled, height, width)

    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    image = tf.cond(same, lambda: image, resized)
    return tf.ensure_shape(image, [height, width, 3])


def _augment(image, augment, size, seed):
    crop_seed, flip_seed, cutout_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    padding = augment.padding_for(size)
    if padding:
        padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
        image = tf.image.stateless_random_crop(padded, [size[0], size[1], 3], crop_seed)
    if augment.flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    if augment.cutout:
        image = _cutout(image, augment.cutout, size, cutout_seed)
    return image


def _cutout(image, side, size, seed):
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


def _scale(image, value_range):
    if value_range is None:
        return image
    low, high = value_range
    return image * ((high - low) / 255.0) + low


# --------------------------------------------------------------------------- ImageData


class ImageData:
    """A labelled image dataset: a `DatasetInfo` plus its splits.

    Build one with `load(...)`, `from_folder`, `from_tar`, `from_cifar_batches`,
    `from_tfds` or `from_arrays`; get pipelines with `dataset(...)`.

    Example:

    >>> import numpy as np
    >>> from nasnet_app.data import from_arrays
    >>> ds = from_arrays(train=(np.zeros((4, 40, 30), "uint8"), [0, 1, 0, 1]))
    >>> ds.with_image_size((32, 32)).info.image_size
    (32, 32)
    """

    def __init__(self, splits, class_names, image_size, source):
        self.splits = dict(splits)
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
        )

    def __repr__(self):
        info = self.info
        return (
            f"ImageData(source={info.source!r}, classes={info.num_classes}, "
            f"image_size={info.image_size}, counts={info.counts})"
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
        return ImageData(self.splits, self.class_names, image_size, self.info.source)

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
        return ImageData(splits, self.class_names, self.info.image_size, self.info.source)

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
        if isinstance(part, _StreamSplit):
            raw = part.pixels_at(indices)
        else:
            raw = [part.pixels(int(i)) for i in indices]
        size = self.info.image_size
        out = [_fit_size(tf.convert_to_tensor(image), size, "crop").numpy() for image in raw]
        return np.clip(np.round(np.stack(out)), 0, 255).astype(np.uint8) if out else None

    def source_name(self, split, index):
        """The file (or archive member / array row) behind example `index` of `split`."""
        part = self.split(split)
        return part.names[index] if hasattr(part, "names") else f"{part.name}[{index}]"

    def check_images(self, splits=None):
        """Decodes every image with Pillow; raises `ImageReadError` naming the first bad file."""
        for name in splits or self.splits:
            self.split(name).check()

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
        """
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
        size = self.info.image_size
        num_classes = self.info.num_classes

        def prepare(image, label, epoch, position):
            image = _fit_size(image, size, resize, crop_fraction)
            if augment is not None:
                element_seed = tf.random.experimental.stateless_fold_in(
                    _epoch_seed(seed, epoch), position
                )
                image = _augment(image, augment, size, element_seed)
            image = _scale(image, value_range)
            label = tf.cast(label, tf.int32)
            if one_hot:
                label = tf.one_hot(label, num_classes)
            return image, label

        # Built eagerly, outside the traced per-epoch function.
        source = part.make_dataset() if isinstance(part, _StreamSplit) else part.element_fn()
        if shuffle and isinstance(part, _StreamSplit):
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
            if isinstance(part, _PixelSplit) and part.array.shape[1:3] == self.info.image_size:
                splits[name] = part
                continue
            pixels = [
                np.clip(np.round(images.numpy()), 0, 255).astype(np.uint8)
                for images, _ in self.dataset(name, batch_size=256, value_range=None, resize=resize)
            ]
            names = part.names if hasattr(part, "names") else None
            splits[name] = _PixelSplit(np.concatenate(pixels), self.labels(name), names)
        return ImageData(splits, self.class_names, self.info.image_size, self.info.source)


def _ordered_examples(part, source, shuffle, seed, epoch):
    """`(position, uint8 image, label)` of one epoch, in its (seeded) order.

    `source` is the stream of a `_StreamSplit`, else the split's `element_fn()`.
    """
    if isinstance(part, _StreamSplit):
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


def resolve_augment(augment, training):
    if augment is None:
        augment = training
    if augment is True:
        return Augment()
    if augment is False:
        return None
    if isinstance(augment, Augment):
        return augment
    return _fail("augment", "an Augment, True, False or None", augment)


def check_image_size(image_size):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    try:
        height, width = (int(s) for s in image_size)
    except (TypeError, ValueError):
        height = width = 0
    if height < 1 or width < 1:
        _fail("image_size", "a positive int or a (height, width) pair", image_size)
    return (height, width)


# --------------------------------------------------------------------------- image files


def _pil_rgb(data, name):
    """Decodes bytes fully with Pillow into an RGB uint8 array; names `name` on failure."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _rgb_array(image)
    except Exception as error:  # Pillow raises many types for corrupt files
        raise ImageReadError(f"Cannot read image {name!r}: {error}") from None


def _rgb_array(image):
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or values.max() > 255 else 1.0
        gray = np.clip(values / scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), np.uint8)


def _inspect_image(data_or_file, name):
    """`(size, png_bytes_or_None)`: header check; Pillow-converted PNG where TF cannot decode."""
    from PIL import Image

    try:
        with Image.open(data_or_file) as image:
            size, fmt, mode = (image.height, image.width), image.format, image.mode
            if fmt in _NATIVE_FORMATS or (fmt == "BMP" and mode in _NATIVE_BMP_MODES):
                return size, None
            image.load()
            out = io.BytesIO()
            Image.fromarray(_rgb_array(image)).save(out, "PNG")
            return size, out.getvalue()
    except Exception as error:  # Pillow raises many types for corrupt files
        raise ImageReadError(f"Cannot read image {name!r}: {error}") from None


def _is_image_name(name):
    base = os.path.basename(name)
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def _class_tree(files, dirs, where):
    """`{split: {class: [relative file paths]}}` from the relative paths of a tree.

    `dirs` lists every folder (so that empty class folders are noticed).
    """
    tops = {p.split("/")[0] for p in dirs} | {p.split("/")[0] for p in files if "/" in p}
    split_tops = {t for t in tops if t.lower() in SPLIT_FOLDERS}
    if split_tops:
        others = sorted(tops - split_tops)
        if others:
            raise ValueError(
                f"`{where}` mixes split folders ({', '.join(sorted(split_tops))}) with other "
                f"folders ({', '.join(others)}); put every class folder under a split folder."
            )
        tree = {}
        for top in sorted(split_tops, key=lambda t: SPLITS.index(SPLIT_FOLDERS[t.lower()])):
            split = SPLIT_FOLDERS[top.lower()]
            if split in tree:
                raise ValueError(f"`{where}` has two folders for the {split!r} split.")
            tree[split] = _classes_under(top + "/", files, dirs, f"{where}/{top}")
        _check_same_classes(tree, where)
        return tree
    return {"train": _classes_under("", files, dirs, where)}


def _classes_under(prefix, files, dirs, where):
    relative = (d[len(prefix) :] for d in dirs if d.startswith(prefix))
    names = sorted(n for n in relative if n and "/" not in n and not n.startswith("."))
    if not names:
        raise ValueError(f"`{where}` has no class sub-folders (expected {where}/<class>/<image>).")
    classes = {name: [] for name in names}
    for file in files:
        if file.startswith(prefix) and _is_image_name(file):
            head, _, rest = file[len(prefix) :].partition("/")
            if rest and head in classes:
                classes[head].append(file)
    for name, inside in classes.items():
        if not inside:
            raise ValueError(
                f"Class folder `{where}/{name}` contains no images ({', '.join(IMAGE_EXTENSIONS)})."
            )
        inside.sort()
    return classes


def _check_same_classes(tree, where):
    reference_split = "train" if "train" in tree else next(iter(tree))
    reference = set(tree[reference_split])
    for split, classes in tree.items():
        missing, extra = sorted(reference - set(classes)), sorted(set(classes) - reference)
        if missing or extra:
            details = "; ".join(
                text
                for text in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"extra {', '.join(extra)}" if extra else "",
                )
                if text
            )
            raise ValueError(
                f"The class folders of `{where}/{split}` differ from those of "
                f"`{where}/{reference_split}` ({details}). Every split needs the same classes."
            )


def _most_common_size(sizes, where):
    if not sizes:
        raise ValueError(f"`{where}` holds no images.")
    return collections.Counter(sizes).most_common(1)[0][0]


def _folder_file(root, member):
    return os.path.join(root, *member.split("/")), None


def _tree_data(tree, locate, where, image_size):
    """An `ImageData` of encoded files; `locate(member) -> (name, bytes or None)`.

    Files are held as bytes when `locate` gives them (archives), else read by
    path in the pipeline; files TensorFlow cannot decode are held converted.
    """
    splits, sizes = {}, []
    for split, classes in tree.items():
        names, labels, inline = [], [], []
        for label, members in enumerate(classes.values()):
            for member in members:
                name, data = locate(member)
                size, converted = _inspect_image(name if data is None else io.BytesIO(data), name)
                names.append(name)
                labels.append(label)
                inline.append(converted or data or b"")
                if split == next(iter(tree)):
                    sizes.append(size)
        splits[split] = _EncodedSplit(names, labels, paths=names, inline=inline)
    class_names = list(next(iter(tree.values())))
    return ImageData(splits, class_names, image_size or _most_common_size(sizes, where), where)


def _walk_folder(root):
    files, dirs = [], set()
    for folder, subdirs, names in os.walk(root, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        relative = os.path.relpath(folder, root).replace(os.sep, "/")
        base = "" if relative == "." else relative + "/"
        dirs.update(base + d for d in subdirs)
        files.extend(base + n for n in names)
    return files, dirs


def from_folder(
    path, image_size=None, val_fraction=None, test_fraction=None, seed=0, validate="header"
):
    """An image folder: `DIR/<class>/*` or `DIR/{train,val,test}/<class>/*`.

    Args:
        path: the folder.
        image_size: `(height, width)` of the pipelines; `None`: the most common
            image size in the first split.
        val_fraction, test_fraction: fractions of the training images held out
            per class (chosen by `seed`) when the folder has no such split.
        seed: fixes the held-out images.
        validate: `"header"` (open every image's header: fast) or `"full"`
            (decode every image once, naming any corrupt file).

    Example:

    >>> from nasnet_app.data import from_folder
    >>> ds = from_folder("photos", val_fraction=0.1)  # doctest: +SKIP
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"`data` folder {root!r} does not exist.")
    files, dirs = _walk_folder(root)
    tree = _class_tree(files, dirs, root)
    data = _tree_data(tree, lambda member: _folder_file(root, member), root, image_size)
    return _finish(data, val_fraction, test_fraction, seed, validate)


def _finish(data, val_fraction, test_fraction, seed, validate):
    if validate not in ("header", "full"):
        _fail("validate", "'header' or 'full'", validate)
    data = _hold_out(data, val_fraction, test_fraction, seed)
    if validate == "full":
        data.check_images()
    return data


def _hold_out(data, val_fraction, test_fraction, seed):
    """Moves a stratified, seeded fraction of each class from train to val / test."""
    wanted = [(s, f) for s, f in (("val", val_fraction), ("test", test_fraction)) if f]
    if not wanted:
        return data
    splits = dict(data.splits)
    for split, fraction in wanted:
        if not 0.0 < fraction < 1.0:
            _fail(f"{split}_fraction", "in (0, 1)", fraction)
        if split in splits:
            raise ValueError(
                f"`{split}_fraction` cannot be used: {data.info.source} already has a "
                f"{split!r} split. Received: {split}_fraction={fraction}"
            )
    train = splits["train"]
    if train.labels is None:
        raise ValueError("`val_fraction` / `test_fraction` need an indexable training split.")
    rng = np.random.default_rng(seed)
    parts = {split: [] for split, _ in wanted}
    keep = []
    for label in range(data.info.num_classes):
        members = rng.permutation(np.flatnonzero(train.labels == label))
        start = 0
        for split, fraction in wanted:
            take = int(round(fraction * len(members)))
            parts[split].extend(members[start : start + take])
            start += take
        keep.extend(members[start:])
    splits["train"] = train.subset(np.sort(np.array(keep, np.int64)))
    for split, members in parts.items():
        splits[split] = train.subset(np.sort(np.array(members, np.int64)))
    return ImageData(splits, data.class_names, data.info.image_size, data.info.source)


# --------------------------------------------------------------------------- archives


def _read_tar(path):
    """`({member: bytes}, {dirs})` of a tar archive (any compression tarfile reads)."""
    files, dirs = {}, set()
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                name = member.name.removeprefix("./").rstrip("/")
                if name in ("", "."):
                    continue
                if member.isdir():
                    dirs.add(name)
                elif member.isfile():
                    files[name] = archive.extractfile(member).read()
                    dirs.update(
                        "/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)
                    )
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"Cannot read archive {os.fspath(path)!r}: {error}") from None
    return files, dirs


def _strip_wrapper_folder(files, dirs):
    """Drops one top folder that only wraps the tree (`cifar10/train/...`)."""
    tops = {p.split("/")[0] for p in list(files) + list(dirs)}
    if len(tops) != 1:
        return files, dirs, ""
    top = next(iter(tops))
    if top.lower() in SPLIT_FOLDERS or any(p.count("/") == 1 for p in files if p.startswith(top)):
        return files, dirs, ""
    cut = len(top) + 1
    return (
        {p[cut:]: b for p, b in files.items() if p.startswith(top + "/")},
        {d[cut:] for d in dirs if d.startswith(top + "/")},
        top + "/",
    )


def from_tar(
    path, image_size=None, val_fraction=None, test_fraction=None, seed=0, validate="header"
):
    """An image-folder tree inside a `.tar`, `.tar.gz` or `.tgz` archive, read without extracting.

    The archive holds `<class>/<image>` or `<split>/<class>/<image>` (one
    wrapping top folder is allowed). Arguments as in `from_folder`.

    Example:

    >>> from nasnet_app.data import from_tar
    >>> ds = from_tar("../shared/data/cifar10-jpeg.tar.gz")  # doctest: +SKIP
    >>> ds.info.counts  # doctest: +SKIP
    {'train': 50000, 'test': 10000}
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`data` archive {path!r} does not exist.")
    files, dirs = _read_tar(path)
    if any(os.path.basename(f) == "data_batch_1" for f in files):
        return _cifar_from_members(files, path, image_size, val_fraction, test_fraction, seed)
    files, dirs, wrapper = _strip_wrapper_folder(files, dirs)
    tree = _class_tree(list(files), dirs, path)
    data = _tree_data(
        tree, lambda member: (f"{path}:{wrapper}{member}", files[member]), path, image_size
    )
    return _finish(data, val_fraction, test_fraction, seed, validate)


# --------------------------------------------------------------------------- CIFAR batches


def _unpickle(data, name):
    try:
        batch = pickle.loads(data, encoding="bytes")
    except Exception as error:  # unpickling raises many types for bad input
        raise ValueError(f"Cannot read CIFAR batch {name!r}: {error}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR batch {name!r} must hold a dict. Received: {type(batch).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _cifar_batch(data, name):
    batch = _unpickle(data, name)
    if "data" not in batch or "labels" not in batch:
        raise ValueError(
            f"CIFAR batch {name!r} must have 'data' and 'labels' entries. "
            f"Received keys: {sorted(batch)}"
        )
    pixels = np.asarray(batch["data"], np.uint8)
    if pixels.ndim != 2 or pixels.shape[1] != 3072:
        raise ValueError(f"CIFAR batch {name!r}: 'data' must be N x 3072. Got {pixels.shape}.")
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch["labels"], np.int32)


def _cifar_from_members(members, where, image_size, val_fraction, test_fraction, seed):
    """CIFAR-10 python batches from `{file name: bytes}` (folder files or archive members)."""
    by_base = {os.path.basename(n): (n, b) for n, b in members.items()}
    missing = [b for b in CIFAR_TRAIN_BATCHES + ("test_batch",) if b not in by_base]
    if missing:
        raise FileNotFoundError(f"`{where}` lacks the CIFAR-10 batches {', '.join(missing)}.")
    class_names = CIFAR10_CLASSES
    if "batches.meta" in by_base:
        meta = _unpickle(by_base["batches.meta"][1], by_base["batches.meta"][0])
        names = meta.get("label_names")
        if names:
            class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    splits = {}
    for split, batch_names in (("train", CIFAR_TRAIN_BATCHES), ("test", ("test_batch",))):
        parts = [_cifar_batch(by_base[b][1], by_base[b][0]) for b in batch_names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(f"`{where}`: CIFAR labels must lie in [0, {len(class_names)}).")
        splits[split] = _PixelSplit(
            images, labels, [f"{where}:{split}[{i}]" for i in range(len(labels))]
        )
    data = ImageData(splits, class_names, image_size or (32, 32), where)
    return _hold_out(data, val_fraction, test_fraction, seed)


def from_cifar_batches(path, image_size=None, val_fraction=None, test_fraction=None, seed=0):
    """The original CIFAR-10 python version: a folder with `data_batch_1..5`,
    `test_batch` (and `batches.meta`), or the `cifar-10-python.tar.gz` archive.

    The batches are pickles: load only files you trust.

    Example:

    >>> from nasnet_app.data import from_cifar_batches
    >>> ds = from_cifar_batches("cifar-10-batches-py", val_fraction=0.1)  # doctest: +SKIP
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return from_tar(path, image_size, val_fraction, test_fraction, seed)
    folder = os.path.join(path, "cifar-10-batches-py")
    folder = folder if os.path.isdir(folder) else path
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"CIFAR-10 batches folder {path!r} does not exist.")
    members = {}
    for base in CIFAR_TRAIN_BATCHES + ("test_batch", "batches.meta"):
        file = os.path.join(folder, base)
        if os.path.isfile(file):
            with open(file, "rb") as handle:
                members[file] = handle.read()
    return _cifar_from_members(members, folder, image_size, val_fraction, test_fraction, seed)


def _is_cifar_folder(path):
    return os.path.isfile(os.path.join(path, "data_batch_1")) or os.path.isfile(
        os.path.join(path, "cifar-10-batches-py", "data_batch_1")
    )


# --------------------------------------------------------------------------- TFDS and arrays


def _to_rgb_uint8(image):
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        image = tf.cast(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0), tf.uint8)
    if image.shape.rank == 2:
        image = image[..., None]
    channels = image.shape[-1]
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    return image[..., :3]


def from_tfds(
    name,
    data_dir=None,
    image_size=None,
    splits=None,
    image_key="image",
    label_key="label",
    val_fraction=None,
    download=False,
):
    """A TFDS dataset, read from `data_dir` (offline once prepared there).

    Args:
        name: TFDS name, e.g. `"cifar10"` or `"tf_flowers"`.
        data_dir: where the dataset is prepared (TFDS default when `None`).
        image_size: `(height, width)`; required when the images vary in size.
        splits: `{"train": "train", "val": "train[90%:]", ...}`; default: the
            dataset's `train`, `validation` and `test` splits.
        image_key, label_key: feature names of the image and its `ClassLabel`.
        val_fraction: last fraction of `train` used as `val` (TFDS slicing).
        download: download and prepare when missing (needs the network).

    Example:

    >>> from nasnet_app.data import from_tfds
    >>> ds = from_tfds("cifar10", data_dir="~/tensorflow_datasets")  # doctest: +SKIP
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # TFDS raises its own types for unknown names
        raise ValueError(
            f"Unknown TFDS dataset {name!r} (data_dir={data_dir!r}): {error}"
        ) from None
    if not builder.is_prepared():
        if not download:
            raise FileNotFoundError(
                f"TFDS dataset {name!r} is not prepared in data_dir={builder.data_dir!r}; "
                "prepare it there (`tfds build`) or pass download=True."
            )
        builder.download_and_prepare()
    features = builder.info.features
    for key in (image_key, label_key):
        if key not in features:
            _fail("image_key" if key == image_key else "label_key", f"one of {list(features)}", key)
    splits = splits or _tfds_default_splits(builder.info.splits, val_fraction)
    streams = {}
    for split, tfds_split in splits.items():
        count = builder.info.splits[tfds_split].num_examples

        def make(tfds_split=tfds_split):
            raw = builder.as_dataset(split=tfds_split, shuffle_files=False)
            return raw.map(lambda ex: (_to_rgb_uint8(ex[image_key]), ex[label_key]))

        streams[split] = _StreamSplit(make, count, f"tfds:{name}/{tfds_split}")
    shape = features[image_key].shape
    if image_size is None and (shape[0] is None or shape[1] is None):
        _fail("image_size", f"given for {name!r}, whose images vary in size", image_size)
    return ImageData(streams, features[label_key].names, image_size or shape[:2], f"tfds:{name}")


def _tfds_default_splits(available, val_fraction):
    splits = {"train": "train"} if "train" in available else {}
    if "validation" in available:
        splits["val"] = "validation"
    if "test" in available:
        splits["test"] = "test"
    if val_fraction:
        if not 0.0 < val_fraction < 1.0:
            _fail("val_fraction", "in (0, 1)", val_fraction)
        percent = int(round(100 * (1 - val_fraction)))
        splits.update(train=f"train[:{percent}%]", val=f"train[{percent}%:]")
    if not splits:
        raise ValueError(
            f"The TFDS dataset has none of the splits train/validation/test: {list(available)}"
        )
    return splits


def _array_split(images, labels, name):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        _fail(f"{name} images", "shaped (N, H, W) or (N, H, W, 1|3|4)", images.shape)
    if images.dtype != np.uint8:
        images = np.clip(np.round(images.astype(np.float64)), 0, 255).astype(np.uint8)
    images = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=-1)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        _fail(f"{name} labels", f"{len(images)} integer labels (or one-hot rows)", labels.shape)
    return _PixelSplit(images, labels, [f"{name}[{i}]" for i in range(len(labels))])


def from_arrays(
    train=None, val=None, test=None, class_names=None, val_fraction=None, test_fraction=None, seed=0
):
    """Numpy arrays: each split an `(images, labels)` pair.

    Args:
        train, val, test: `(images, labels)`; images `(N, H, W)` or
            `(N, H, W, 1|3|4)` with values in [0, 255]; labels integers or
            one-hot rows.
        class_names: names by label; default `"0", "1", ...`.
        val_fraction, test_fraction, seed: as in `from_folder`.

    Example:

    >>> import numpy as np
    >>> from nasnet_app.data import from_arrays
    >>> from_arrays(train=(np.zeros((2, 32, 32, 3), "uint8"), [0, 1])).info.num_classes
    2
    """
    given = {s: pair for s, pair in (("train", train), ("val", val), ("test", test)) if pair}
    if not given:
        _fail("train", "an (images, labels) pair", train)
    splits = {s: _array_split(pair[0], pair[1], s) for s, pair in given.items()}
    top_label = max(int(p.labels.max(initial=-1)) for p in splits.values())
    class_names = (
        list(class_names) if class_names is not None else [str(i) for i in range(top_label + 1)]
    )
    if (
        top_label >= len(class_names)
        or min(int(p.labels.min(initial=0)) for p in splits.values()) < 0
    ):
        _fail("labels", f"integers in [0, {len(class_names)})", top_label)
    size = next(iter(splits.values())).array.shape[1:3]
    data = ImageData(splits, class_names, size, "arrays")
    return _hold_out(data, val_fraction, test_fraction, seed)


# --------------------------------------------------------------------------- entry points


def load(source, image_size=None, val_fraction=None, test_fraction=None, seed=0, cache=False):
    """Any supported source as an `ImageData`.

    Args:
        source: an `ImageData`; a folder (class folders, or CIFAR-10 python
            batches); a `.tar`/`.tar.gz`/`.tgz` archive; `"tfds:NAME"` (TFDS
            default `data_dir`) or `"tfds:NAME@DATA_DIR"`; `"demo"` (the
            bundled CIFAR-10 subset); or `{"train": (x, y), ...}` arrays.
        image_size: `(height, width)` of the pipelines.
        val_fraction, test_fraction, seed: held-out fractions (see `from_folder`).
        cache: decode everything into memory once (`ImageData.cached`).

    Example:

    >>> from nasnet_app import data
    >>> demo = data.load("demo")
    >>> demo.class_names[:3], demo.info.counts
    (('airplane', 'automobile', 'bird'), {'train': 2000, 'test': 1000})
    """
    data = _load_uncached(source, image_size, val_fraction, test_fraction, seed)
    return data.cached() if cache else data


def _load_uncached(source, image_size, val_fraction, test_fraction, seed):
    if isinstance(source, ImageData):
        return source.with_image_size(image_size) if image_size else source
    if isinstance(source, dict):
        data = from_arrays(
            **source, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
        )
        return data.with_image_size(image_size) if image_size else data
    if not isinstance(source, (str, os.PathLike)):
        _fail("data", "a path, 'tfds:NAME', 'demo', an ImageData or a dict of arrays", source)
    text = os.fspath(source)
    if text == "demo":
        text = demo_cifar10_path()
    if text.startswith("tfds:"):
        name, _, data_dir = text[len("tfds:") :].partition("@")
        return from_tfds(name, data_dir or None, image_size, val_fraction=val_fraction)
    if os.path.isdir(text):
        if _is_cifar_folder(text):
            return from_cifar_batches(text, image_size, val_fraction, test_fraction, seed)
        return from_folder(text, image_size, val_fraction, test_fraction, seed)
    if os.path.isfile(text):
        return from_tar(text, image_size, val_fraction, test_fraction, seed)
    raise FileNotFoundError(f"`data` {text!r} is neither a folder nor an archive that exists.")


def demo_cifar10_path():
    """Path of the bundled CIFAR-10 subset (`train/<class>/*.jpg`, `test/<class>/*.jpg`)."""
    if not os.path.isfile(DEMO_CIFAR10_PATH):
        raise FileNotFoundError(
            f"The bundled CIFAR-10 subset {DEMO_CIFAR10_PATH!r} is missing; "
            "regenerate it with tools/make_cifar10_subset.py."
        )
    return DEMO_CIFAR10_PATH


def demo_cifar10(image_size=None, val_fraction=None, seed=0):
    """The bundled CIFAR-10 subset: 200 train and 100 test images per class, real JPEGs.

    Example:

    >>> from nasnet_app.data import demo_cifar10
    >>> demo_cifar10().info.counts
    {'train': 2000, 'test': 1000}
    """
    return from_tar(demo_cifar10_path(), image_size, val_fraction, seed=seed)
