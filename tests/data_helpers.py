"""Image files and trees for the tests of nasnet_app.data."""

import os
import tarfile

import numpy as np
from PIL import Image

from tests.reference_data import shared_data_path

SHARED_CIFAR = shared_data_path("cifar10-jpeg.tar.gz")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pattern(height, width, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(path, image, fmt, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, fmt, **kwargs)
    return path


def jpeg_tree(root, layout, size=32):
    """Writes `{relative dir: count}` JPEGs named 000.jpg, 001.jpg, ...; returns root."""
    for index, (relative, count) in enumerate(layout.items()):
        for i in range(count):
            image = Image.fromarray(pattern(size, size, 100 * index + i))
            save(os.path.join(root, relative, f"{i:03d}.jpg"), image, "JPEG", quality=95)
    return str(root)


def tar_tree(folder, archive, wrapper):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=wrapper)
    return str(archive)
