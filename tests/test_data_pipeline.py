"""Tests of nasnet_app.data.pipeline and .augment: resizing, deterministic epochs, augmentation."""

import numpy as np
import pytest
from PIL import Image

from nasnet_app import data
from nasnet_app.preprocessing import NASNetImageConverter
from tests.data_helpers import jpeg_tree, pattern, save


def test_images_of_other_sizes_are_resized_keeping_the_aspect_ratio(tmp_path):
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 255  # the white centre half fills the crop
    save(str(tmp_path / "a" / "wide.png"), Image.fromarray(wide), "PNG")
    save(str(tmp_path / "b" / "small.png"), Image.fromarray(pattern(20, 20, 2)), "PNG")
    ds = data.from_folder(tmp_path, image_size=(32, 32))
    images = next(iter(ds.dataset("train", batch_size=2, value_range=None)))[0].numpy()
    assert images.shape == (2, 32, 32, 3)
    assert images[0, :, 4:28].min() > 250
    assert ds.info.image_size == (32, 32)


def _epoch_batches(ds, first_epoch, epochs, **kwargs):
    pipeline = ds.dataset(
        "train",
        batch_size=4,
        training=True,
        first_epoch=first_epoch,
        epochs=epochs,
        seed=7,
        **kwargs,
    )
    return [(x.numpy(), y.numpy()) for x, y in pipeline]


def test_epochs_are_a_function_of_seed_and_epoch():
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    ds = data.from_arrays(train=(images, np.arange(8) % 2))
    both = _epoch_batches(ds, 0, 2)
    second = _epoch_batches(ds, 1, 1)
    assert len(both) == 4 and len(second) == 2
    for (x1, y1), (x2, y2) in zip(both[2:], second, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(both[0][0], both[2][0])


def test_augmentation_crop_flip_and_cutout():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :, :16] = 255  # left half white
    ds = data.from_arrays(train=(np.repeat(image, 16, axis=0), np.zeros(16, int)))
    plain = ds.dataset("train", batch_size=16, training=False, value_range=None)
    np.testing.assert_array_equal(next(iter(plain))[0].numpy(), np.repeat(image, 16, 0))
    flipped = ds.dataset(
        "train", batch_size=16, augment=data.Augment(crop_padding=0), value_range=None
    )
    batch = next(iter(flipped))[0].numpy()
    right_white = batch[:, :, 16:].mean(axis=(1, 2, 3)) == 255
    assert 0 < right_white.sum() < 16  # some flipped, some not
    cut = data.Augment(crop_padding=0, flip=False, cutout=8)
    batch = next(iter(ds.dataset("train", batch_size=16, augment=cut)))[0].numpy()
    gray = np.isclose(batch, 0.0).all(axis=-1)  # mid-gray is 0 in [-1, 1]
    assert gray.any(axis=(1, 2)).all() and (gray.sum(axis=(1, 2)) <= 64).all()
    cropped = ds.dataset("train", batch_size=16, augment=data.Augment(flip=False), value_range=None)
    batch = next(iter(cropped))[0].numpy()
    assert (batch == 0).all(axis=-1).any()  # zero padding shows up at some border


def test_value_range_and_one_hot():
    ds = data.from_arrays(train=(np.full((2, 32, 32, 3), 255, np.uint8), [0, 2]))
    x, y = next(iter(ds.dataset("train", batch_size=2, value_range=(0.0, 1.0), one_hot=True)))
    assert np.allclose(x.numpy(), 1.0)
    assert y.numpy().tolist() == [[1, 0, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="batch_size"):
        ds.dataset("train", batch_size=0)
    with pytest.raises(ValueError, match="split"):
        ds.dataset("test")


def test_cached_matches_uncached(tmp_path):
    ds = data.from_folder(jpeg_tree(tmp_path, {"a": 3, "b": 3}, size=40), image_size=(32, 32))
    cached = ds.cached()
    a = next(iter(ds.dataset("train", batch_size=6)))[0].numpy()
    b = next(iter(cached.dataset("train", batch_size=6)))[0].numpy()
    assert np.abs(a - b).max() <= 1.01 / 127.5


def test_evaluation_pipeline_gives_the_converter_s_model_input(tmp_path):
    wide = save(str(tmp_path / "a" / "wide.png"), Image.fromarray(pattern(40, 80, 4)), "PNG")
    save(str(tmp_path / "b" / "tall.png"), Image.fromarray(pattern(70, 30, 5)), "PNG")
    ds = data.from_folder(tmp_path, image_size=(32, 32))
    for resize, crop_fraction in (("crop", 0.875), ("stretch", 1.0), ("crop", 1.0)):
        converter = NASNetImageConverter((32, 32), crop_fraction, resize)
        batch = next(iter(ds.dataset("train", 2, resize=resize, crop_fraction=crop_fraction)))[0]
        for image, name in zip(batch.numpy(), ds.split("train").names, strict=True):
            expected = converter.convert_image(np.asarray(Image.open(name))).numpy()
            np.testing.assert_array_equal(image, expected, err_msg=f"{name} {resize}")
    assert ds.split("train").names[0] == wide
