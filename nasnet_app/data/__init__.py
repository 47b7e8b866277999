"""Image datasets as deterministic `tf.data` pipelines.

`load(source)` reads a labelled image collection into an `ImageData`: its
description (`DatasetInfo`: class names, counts, image size) and its splits
(`"train"`, `"val"`, `"test"`). `ImageData.dataset(split, ...)` builds the
pipeline: decode, convert to RGB, resize/crop to the model's input size,
augment (random crop with padding, horizontal flip, cutout), scale to
`value_range` ([-1, 1], the NASNet convention), batch and prefetch.

The package's rooms:

* `sources`: folders, tar archives, CIFAR-10 batches, TFDS, arrays, the demo set;
* `splits`: split folders, held-out fractions, the validation choice, `describe`;
* `pipeline`: `ImageData`, its pipelines, `fit_size` (resize and crop) and
  `scale_pixels`;
* `augment`: `Augment` (random crop, flip, cutout);
* `images`: decoding files to RGB and the scan for unreadable files.

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
data is loaded; everything else is decoded inside the pipeline. Loading scans
every file once: all unreadable files are named in one `BadImagesError`, or
skipped with `skip_bad_images=True` (`ImageData.bad_files`, `scan_images`).

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

from nasnet_app.data.augment import Augment, resolve_augment
from nasnet_app.data.images import (
    IMAGE_EXTENSIONS,
    BadImage,
    BadImagesError,
    write_bad_images,
)
from nasnet_app.data.pipeline import DatasetInfo, ImageData, check_image_size
from nasnet_app.data.sources import (
    CIFAR10_CLASSES,
    CIFAR_TRAIN_BATCHES,
    DEMO_CIFAR10_PATH,
    demo_cifar10,
    demo_cifar10_path,
    from_arrays,
    from_cifar_batches,
    from_folder,
    from_tar,
    from_tfds,
    load,
    scan_images,
)
from nasnet_app.data.splits import (
    DEFAULT_VALIDATION_FRACTION,
    SPLIT_FOLDERS,
    SPLITS,
    choose_validation,
    describe,
    hold_out,
)
