"""NASNetImageConverter: the one owner of crop, resize and scale."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import nasnet_app
from nasnet_app.preprocessing import NASNetImageConverter
from tests.conftest import TINY


def test_central_crop_and_stretch_match_tensorflow():
    image = np.arange(37 * 53 * 3, dtype=np.float32).reshape(37, 53, 3) % 256
    converter = NASNetImageConverter((32, 32), 0.875, resize="stretch", antialias=False)
    expected = tf.image.resize(tf.image.central_crop(image, 0.875), (32, 32)).numpy()
    np.testing.assert_allclose(converter.resize(image).numpy(), expected, rtol=1e-6)


def test_crops_resizes_and_scales():
    image = np.zeros((100, 100, 3), np.uint8)
    image[:6] = 255  # a white band removed by the central crop (6 < 100 * 0.0625)
    converter = NASNetImageConverter((32, 32), crop_fraction=0.875)
    out = converter.convert_images([image])[0]
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, -1.0)
    white = NASNetImageConverter((32, 32)).convert_images([np.full((10, 10), 255, np.uint8)])
    np.testing.assert_allclose(white, 1.0, atol=1e-6)


def test_crop_mode_keeps_the_aspect_ratio():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :20] = 255  # the left quarter is cut away when the centre is kept
    out = NASNetImageConverter((40, 40)).convert_images([image])[0]
    np.testing.assert_allclose(out, -1.0)


def test_batch_call_equals_one_by_one():
    images = np.random.RandomState(0).randint(0, 256, (3, 50, 60, 3)).astype("uint8")
    converter = NASNetImageConverter((32, 32))
    np.testing.assert_allclose(
        converter(images).numpy(), converter.convert_images(list(images)), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(image_size=(0, 3)), "image_size"),
        (dict(crop_fraction=1.5), "crop_fraction"),
        (dict(resize="squash"), "resize"),
        (dict(value_range=(1, -1)), "value_range"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        NASNetImageConverter(**kwargs)


def test_converter_and_class_names_travel_in_the_keras_file(tmp_path):
    converter = NASNetImageConverter((32, 32), 0.9, value_range=(0.0, 1.0), name="preprocessor")
    names = [f"class_{i}" for i in range(10)]
    model = nasnet_app.NASNet(**TINY, preprocessor=converter, class_names=names)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.class_names == names
    assert loaded.preprocessor.get_config() == converter.get_config()
    image = np.random.RandomState(1).randint(0, 256, (45, 37, 3)).astype("uint8")
    np.testing.assert_allclose(loaded.predict_images(image), model.predict_images(image), rtol=1e-6)
