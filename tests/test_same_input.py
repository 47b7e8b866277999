"""`classify` and `evaluate` feed a preset's model the same pixels (one converter, one decoder)."""

import numpy as np
from PIL import Image

import nasnet_app
from nasnet_app import data, zoo
from nasnet_app.classifier import ImageClassifier
from nasnet_app.evaluate.report import predict_split
from tests.conftest import TINY


def _images(root):
    rng = np.random.default_rng(0)
    folder = root / "test" / "things"
    folder.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (61, 90, 3), np.uint8)).save(folder / "a.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (40, 33, 3), np.uint8)).save(folder / "b.png")
    rotated = Image.fromarray(rng.integers(0, 256, (50, 70, 3), np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rotated.save(folder / "c.jpg", quality=90, exif=exif)
    (root / "train" / "things").mkdir(parents=True)
    for name in ("a.jpg", "b.png"):
        (root / "train" / "things" / name).write_bytes((folder / name).read_bytes())
    return sorted(folder.iterdir())


def test_classify_and_evaluate_prepare_identical_inputs(tmp_path):
    files = _images(tmp_path)
    converter = zoo.get_preset("nasnet_a_mobile_imagenet").converter()
    assert converter.crop_fraction == 0.875 and converter.resize_mode == "stretch"
    model = nasnet_app.NASNet(
        **{**TINY, "input_shape": (None, None, 3)},
        preprocessor=converter,
        classifier_activation=None,
    )
    dataset = data.load(str(tmp_path))
    pipeline = dataset.dataset("test", batch_size=8, converter=model.preprocessor)
    evaluated = np.concatenate([images.numpy() for images, _ in pipeline])
    classified = ImageClassifier(model).preprocess([str(f) for f in files])
    assert evaluated.shape == classified.shape == (3, 224, 224, 3)
    np.testing.assert_array_equal(evaluated, classified)

    probabilities, _ = predict_split(model, dataset, "test")  # what `evaluate` runs
    np.testing.assert_allclose(
        probabilities, ImageClassifier(model).predict([str(f) for f in files]), atol=1e-6
    )


def test_exif_orientation_is_applied_on_both_paths(tmp_path):
    files = _images(tmp_path)
    rotated = [f for f in files if f.name == "c.jpg"][0]
    assert nasnet_app.classifier.load_image(rotated).shape == (70, 50, 3)
