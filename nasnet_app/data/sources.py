"""Where images come from: folders, tar archives, CIFAR-10 batches, TFDS, arrays, the demo set.

Each source gives an `ImageData`. Folders and archives are scanned once when
loaded (`nasnet_app.data.images`): every unreadable file is named in one
`BadImagesError`, or, with `skip_bad_images=True`, left out and listed in
`ImageData.bad_files`.
"""

import collections
import io
import os
import pickle
import tarfile

import numpy as np
import tensorflow as tf

from nasnet_app.assets import asset_path
from nasnet_app.data.images import (
    BadImage,
    bad_images_error,
    probe_image,
    read_problem,
    write_bad_images,
)
from nasnet_app.data.pipeline import EncodedSplit, ImageData, PixelSplit, StreamSplit
from nasnet_app.data.splits import SPLIT_FOLDERS, class_tree, hold_out

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
DEMO_CIFAR10_PATH = asset_path("cifar10_subset.tar", must_exist=False)
VALIDATE_MODES = ("header", "full")


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


# --------------------------------------------------------------------------- image trees


def _most_common_size(sizes, where):
    if not sizes:
        raise ValueError(f"`{where}` holds no images.")
    return collections.Counter(sizes).most_common(1)[0][0]


def _folder_file(root, member):
    return os.path.join(root, *member.split("/")), None


def _tree_data(tree, locate, where, image_size, full):
    """`(ImageData of the readable files, [BadImage])`; `locate(member) -> (name, bytes or None)`.

    Files are held as bytes when `locate` gives them (archives), else read by
    path in the pipeline; files TensorFlow cannot decode are held converted.
    """
    splits, sizes, bad = {}, [], []
    for split, classes in tree.items():
        names, labels, inline = [], [], []
        for label, members in enumerate(classes.values()):
            for member in members:
                name, data = locate(member)
                try:
                    size, converted = probe_image(name if data is None else io.BytesIO(data), full)
                except Exception as error:  # Pillow raises many types for corrupt files
                    bad.append(BadImage(name, read_problem(error)))
                    continue
                names.append(name)
                labels.append(label)
                inline.append(converted or data or b"")
                if split == next(iter(tree)):
                    sizes.append(size)
        splits[split] = EncodedSplit(names, labels, paths=names, inline=inline)
    class_names = list(next(iter(tree.values())))
    if bad and not sizes:
        raise bad_images_error(bad, where)
    size = image_size or _most_common_size(sizes, where)
    return ImageData(splits, class_names, size, where), bad


def _tree_source(tree, locate, where, image_size, fractions, validate, skip, bad_images_file):
    """The `ImageData` of a tree after the scan (see `from_folder`), with held-out splits.

    `fractions` is `(val_fraction, test_fraction, seed)`.
    """
    if validate not in VALIDATE_MODES:
        _fail("validate", "'header' or 'full'", validate)
    data, bad = _tree_data(tree, locate, where, image_size, full=validate == "full")
    if bad:
        if not skip:
            raise bad_images_error(bad, where, bad_images_file)
        if bad_images_file is not None:
            write_bad_images(bad, bad_images_file)
        data = data.replace(bad_files=bad)
    return hold_out(data, *fractions)


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
    path,
    image_size=None,
    val_fraction=None,
    test_fraction=None,
    seed=0,
    validate="header",
    skip_bad_images=False,
    bad_images_file=None,
):
    """An image folder: `DIR/<class>/*` or `DIR/{train,val,test}/<class>/*`.

    Args:
        path: the folder.
        image_size: `(height, width)` of the pipelines; `None`: the most common
            image size in the first split.
        val_fraction, test_fraction: fractions of the training images held out
            per class (chosen by `seed`) when the folder has no such split.
        seed: fixes the held-out images.
        validate: how every file is checked before anything trains:
            `"header"` (open the header and check the data is complete, see
            `nasnet_app.data.images`: fast) or `"full"` (decode every image).
        skip_bad_images: leave unreadable files out (listed in
            `ImageData.bad_files`) instead of raising `BadImagesError`, which
            names them all.
        bad_images_file: where to write the list of unreadable files (one
            `name<TAB>reason` line each), e.g. `RUN_DIR/bad_images.txt`.

    Example:

    >>> from nasnet_app.data import from_folder
    >>> ds = from_folder("photos", val_fraction=0.1)  # doctest: +SKIP
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"`data` folder {root!r} does not exist.")
    files, dirs = _walk_folder(root)
    tree = class_tree(files, dirs, root)
    return _tree_source(
        tree,
        lambda member: _folder_file(root, member),
        root,
        image_size,
        (val_fraction, test_fraction, seed),
        validate,
        skip_bad_images,
        bad_images_file,
    )


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
    path,
    image_size=None,
    val_fraction=None,
    test_fraction=None,
    seed=0,
    validate="header",
    skip_bad_images=False,
    bad_images_file=None,
):
    """An image-folder tree inside a `.tar`, `.tar.gz` or `.tgz` archive, read without extracting.

    The archive holds `<class>/<image>` or `<split>/<class>/<image>` (one
    wrapping top folder is allowed). Arguments as in `from_folder`; bad files
    are named `ARCHIVE:MEMBER`.

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
    tree = class_tree(list(files), dirs, path)
    return _tree_source(
        tree,
        lambda member: (f"{path}:{wrapper}{member}", files[member]),
        path,
        image_size,
        (val_fraction, test_fraction, seed),
        validate,
        skip_bad_images,
        bad_images_file,
    )


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
        splits[split] = PixelSplit(
            images, labels, [f"{where}:{split}[{i}]" for i in range(len(labels))]
        )
    data = ImageData(splits, class_names, image_size or (32, 32), where)
    return hold_out(data, val_fraction, test_fraction, seed)


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

        streams[split] = StreamSplit(make, count, f"tfds:{name}/{tfds_split}")
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
    return PixelSplit(images, labels, [f"{name}[{i}]" for i in range(len(labels))])


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
    return hold_out(data, val_fraction, test_fraction, seed)


# --------------------------------------------------------------------------- entry points


def load(
    source,
    image_size=None,
    val_fraction=None,
    test_fraction=None,
    seed=0,
    cache=False,
    validate="header",
    skip_bad_images=False,
    bad_images_file=None,
):
    """Any supported source as an `ImageData`.

    Args:
        source: an `ImageData`; a folder (class folders, or CIFAR-10 python
            batches); a `.tar`/`.tar.gz`/`.tgz` archive; `"tfds:NAME"` (TFDS
            default `data_dir`) or `"tfds:NAME@DATA_DIR"`; `"demo"` (the
            bundled CIFAR-10 subset); or `{"train": (x, y), ...}` arrays.
        image_size: `(height, width)` of the pipelines.
        val_fraction, test_fraction, seed: held-out fractions (see `from_folder`).
        cache: decode everything into memory once (`ImageData.cached`).
        validate, skip_bad_images, bad_images_file: the scan of folders and
            archives (see `from_folder`): every unreadable file is named in
            one `BadImagesError`, or skipped and listed in `ImageData.bad_files`.

    Example:

    >>> from nasnet_app import data
    >>> demo = data.load("demo")
    >>> demo.class_names[:3], demo.info.counts
    (('airplane', 'automobile', 'bird'), {'train': 2000, 'test': 1000})
    """
    files = dict(
        validate=validate, skip_bad_images=skip_bad_images, bad_images_file=bad_images_file
    )
    data = _load_uncached(source, image_size, val_fraction, test_fraction, seed, files)
    return data.cached() if cache else data


def _load_uncached(source, image_size, val_fraction, test_fraction, seed, files):
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
        return from_folder(text, image_size, val_fraction, test_fraction, seed, **files)
    if os.path.isfile(text):
        return from_tar(text, image_size, val_fraction, test_fraction, seed, **files)
    raise FileNotFoundError(f"`data` {text!r} is neither a folder nor an archive that exists.")


def scan_images(source, full=False):
    """Every unreadable image of `source`, as `BadImage(name, reason)` tuples; raises nothing
    for bad images (only for a source that cannot be read at all).

    Args:
        source: an `ImageData` or anything `load` accepts.
        full: decode every image (slower) instead of the loading check.

    Example:

    >>> from nasnet_app.data import scan_images
    >>> scan_images("demo")
    ()
    """
    if isinstance(source, ImageData):
        return source.scan(full=full)
    validate = "full" if full else "header"
    return load(source, validate=validate, skip_bad_images=True).bad_files


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
