"""ImageClassifier: image files of every format, preprocessing, labels, decoding."""

import numpy as np
import pytest
from PIL import Image

from nasnet_app import classifier as clf
from nasnet_app.classifier import ImageClassifier, ImageReadError, load_image


def _color_model(classes=3, activation="softmax", background=False):
    """A model that scores the mean of each channel: red -> 0, green -> 1, blue -> 2."""
    import keras

    inputs = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    units = classes + int(background)
    dense = keras.layers.Dense(units, activation=activation)
    outputs = dense(pooled)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((3, units), "float32")
    for channel in range(3):
        kernel[channel, channel + int(background)] = 10.0
    dense.set_weights([kernel, np.zeros(units, "float32")])
    return model


def _solid(color, size=(40, 60)):
    image = np.zeros(size + (3,), np.uint8)
    image[..., :] = color
    return image


@pytest.fixture
def image_files(tmp_path):
    red = Image.fromarray(_solid((250, 10, 10)))
    files = {}
    for ext, kwargs in (("jpg", {"quality": 95}), ("png", {}), ("bmp", {}), ("gif", {})):
        path = tmp_path / f"red.{ext}"
        red.save(path, **kwargs)
        files[ext] = path
    return files


def test_every_format_reads_as_rgb(image_files):
    for ext, path in image_files.items():
        pixels = load_image(path)
        assert pixels.shape == (40, 60, 3) and pixels.dtype == np.uint8, ext
        assert pixels[..., 0].mean() > 200 and pixels[..., 1].mean() < 60, ext


def test_grayscale_rgba_palette_and_16_bit_are_converted(tmp_path):
    Image.fromarray(np.full((8, 9), 77, np.uint8), "L").save(tmp_path / "gray.png")
    rgba = np.zeros((8, 9, 4), np.uint8)
    rgba[..., 1] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    palette = Image.fromarray(_solid((0, 0, 255), (8, 9))).convert("P")
    palette.save(tmp_path / "palette.gif", transparency=0)
    Image.fromarray(np.full((8, 9), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert (load_image(tmp_path / "gray.png") == 77).all()
    assert load_image(tmp_path / "rgba.png")[0, 0].tolist() == [0, 200, 0]
    assert load_image(tmp_path / "palette.gif").shape == (8, 9, 3)
    assert (load_image(tmp_path / "deep.png") == 255).all()


@pytest.mark.parametrize("content", [b"", b"not an image", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_unreadable_file_is_named(tmp_path, content):
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        load_image(path)


def test_truncated_png_is_named(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (64, 64, 3), np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_image(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageReadError, match="nothing.png"):
        load_image(tmp_path / "nothing.png")


def test_bad_array_shape_is_reported():
    with pytest.raises(ValueError, match="image.shape=\\(4, 4, 2\\)"):
        clf.as_rgb(np.zeros((4, 4, 2)))


def test_classify_arrays_and_files_agree(image_files):
    classifier = ImageClassifier(
        _color_model(), {"input_size": [32, 32]}, labels=["red", "green", "blue"]
    )
    from_array = classifier.classify(_solid((250, 10, 10)), top=3)[0]
    assert [p.name for p in from_array] == ["red", "green", "blue"]
    assert from_array[0].probability > 0.9
    probabilities = [p.probability for p in from_array]
    assert probabilities == sorted(probabilities, reverse=True)
    for path in image_files.values():
        top = classifier.classify(str(path), top=1)[0][0]
        assert (top.index, top.name) == (0, "red")


def test_batch_list_and_mixed_sizes():
    classifier = ImageClassifier(_color_model(), {"input_size": [32, 32]}, batch_size=2)
    images = [_solid((0, 250, 0), (33, 70)), _solid((0, 0, 250)), _solid((250, 0, 0), (50, 50))]
    probabilities = classifier.predict(images)
    assert probabilities.shape == (3, 3)
    assert probabilities.argmax(axis=1).tolist() == [1, 2, 0]
    assert classifier.decode(probabilities, top=1)[0][0].name == "1"


def test_logit_models_get_a_softmax():
    classifier = ImageClassifier(_color_model(activation=None), {"input_size": [32, 32]})
    probabilities = classifier.predict(_solid((0, 250, 0)))
    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-5)


def test_imagenet_labels_ship_with_the_package():
    labels = clf.imagenet_labels()
    assert len(labels) == 1000
    assert labels[0] == ("n01440764", "tench")
    assert labels[999][0].startswith("n")


def test_background_column_is_dropped_for_imagenet_labels():
    import keras

    inputs = keras.Input((32, 32, 3))
    logits = keras.layers.Dense(1001)(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, logits)
    kernel = np.zeros((3, 1001), "float32")
    bias = np.zeros(1001, "float32")
    bias[0], bias[2] = 50.0, 20.0  # background wins in raw logits; class 1 (goldfish) after
    model.layers[-1].set_weights([kernel, bias])
    classifier = ImageClassifier(model, {"labels": "imagenet", "label_offset": 1})
    probabilities = classifier.predict(np.zeros((32, 32, 3)))
    assert probabilities.shape == (1, 1000)
    top = classifier.decode(probabilities, top=1)[0][0]
    assert (top.index, top.wnid, top.name) == (1, "n01443537", "goldfish")


def test_bad_arguments_are_named():
    classifier = ImageClassifier(_color_model(), {"input_size": [32, 32]}, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="`top` must be a positive integer"):
        classifier.decode(np.ones((1, 3)) / 3, top=0)
    with pytest.raises(ValueError, match="must have 3 columns"):
        classifier.decode(np.ones((1, 4)) / 4)
    with pytest.raises(ValueError, match="`images` must be"):
        classifier.predict([])
    with pytest.raises(ValueError, match="`labels` must be"):
        ImageClassifier(_color_model(), labels="cifar")
