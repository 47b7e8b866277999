"""LiteRT export (`nasnet_app.zoo.tflite`): quantisation, metadata, the runner, bad input."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import nasnet_app
from nasnet_app import cli
from nasnet_app.classifier import ImageClassifier
from nasnet_app.preprocessing import NASNetImageConverter
from nasnet_app.zoo import tflite
from tests.conftest import TINY

CLASSES = [f"class_{i}" for i in range(10)]


def tensor_types(classifier):
    return {np.dtype(t["dtype"]).name for t in classifier.interpreter.get_tensor_details()}


def tiny_model(**kwargs):
    return nasnet_app.NASNet(**{**TINY, "seed": 1, "class_names": CLASSES, **kwargs})


def write_images(folder, count=4, size=(40, 36), seed=0):
    """Random RGB JPEGs in class folders `folder/<class>/i.jpg` (two classes)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = os.path.join(folder, CLASSES[i % 2], f"{i}.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """The tiny model as float32 and int8 `.tflite` files."""
    folder = tmp_path_factory.mktemp("tflite")
    write_images(str(folder / "calibration" / "nested"), count=6)
    files = {}
    for mode in ("none", "int8"):
        files[mode] = str(folder / f"tiny_{mode}.tflite")
        calibration = str(folder / "calibration") if mode == "int8" else None
        tflite.export_tflite(model, files[mode], mode, calibration=calibration)
    return files


def test_float32_outputs_match_keras(model, exported):
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    expected = np.asarray(model(images, training=False))
    outputs = tflite.TFLiteClassifier(exported["none"], num_threads=1).invoke(images)
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-6)


def test_metadata_records_preprocessing_classes_and_calibration(model, exported):
    metadata = tflite.read_metadata(exported["int8"])
    assert metadata["format"] == tflite.METADATA_FORMAT
    config = model.preprocessor.get_config()
    assert metadata["preprocessor"] == {key: config[key] for key in tflite.CONVERTER_KEYS}
    assert metadata["class_names"] == CLASSES
    assert metadata["outputs"] == "probabilities"
    calibration = metadata["quantization"]["calibration"]
    assert metadata["quantization"]["mode"] == "int8"
    assert (calibration["images"], calibration["unreadable"]) == (6, 0)


def test_int8_nasnet_is_full_integer(exported):
    classifier = tflite.TFLiteClassifier(exported["int8"])
    assert classifier._input["dtype"] == np.int8 and classifier._output["dtype"] == np.int8
    assert tensor_types(classifier) == {"int8", "int32"}  # int32: the biases
    images = list(np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    np.testing.assert_allclose(classifier.predict(images).sum(axis=1), 1.0, atol=0.05)


def test_int8_outputs_are_dequantised_close_to_float(tmp_path):
    # An untrained NASNet's near-uniform outputs say little about quantisation; a small
    # convolutional net shows that inputs are quantised and outputs dequantised right.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )

    def images(count, seed):  # noise at brightness levels from dark to bright
        rng = np.random.default_rng(seed)
        levels = np.linspace(0.05, 1.0, count)[:, None, None, None]
        return list((rng.uniform(0, 255, (count, 32, 32, 3)) * levels).astype(np.uint8))

    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for i, image in enumerate(images(16, seed=0)):
        Image.fromarray(image).save(calibration / f"{i}.png")
    path = str(tmp_path / "small_int8.tflite")
    tflite.export_tflite(model, path, "int8", calibration=str(calibration))
    images = images(5, seed=1)
    classifier = tflite.TFLiteClassifier(path)
    expected = ImageClassifier(model).predict(images)
    np.testing.assert_allclose(classifier.predict(images), expected, atol=0.03)


def test_runner_applies_the_recorded_preprocessing(tmp_path):
    converter = NASNetImageConverter(
        (32, 32), crop_fraction=0.75, resize="stretch", value_range=(0.0, 1.0)
    )
    model = tiny_model(preprocessor=converter)
    path = str(tmp_path / "custom.tflite")
    tflite.export_tflite(model, path)
    images = list(np.random.default_rng(2).integers(0, 256, (3, 50, 70, 3), dtype=np.uint8))
    classifier = tflite.TFLiteClassifier(path, batch_size=2)
    assert classifier.converter.get_config()["crop_fraction"] == 0.75
    np.testing.assert_allclose(
        classifier.predict(images), model.predict_images(images), rtol=1e-4, atol=1e-6
    )
    top = classifier.classify(images[0], top=2)[0]
    assert [p.name for p in top] == [
        CLASSES[i] for i in np.argsort(-model.predict_images(images[:1])[0])[:2]
    ]


@pytest.mark.slow
# Dynamic range quantises tensors of 1024 elements or more: none in the tiny model.
@pytest.mark.parametrize("mode, weights", [("float16", "float16"), ("dynamic", "float32")])
def test_weight_quantisations_agree(model, mode, weights, tmp_path):
    path = str(tmp_path / f"tiny_{mode}.tflite")
    assert tflite.export_tflite(model, path, mode)["quantization"] == {"mode": mode}
    classifier = tflite.TFLiteClassifier(path)
    assert weights in tensor_types(classifier)
    images = np.random.default_rng(3).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    outputs = classifier.invoke(images)
    np.testing.assert_allclose(outputs, np.asarray(model(images, training=False)), atol=0.02)


def test_without_litert_tensorflow_interpreter_runs_the_file(model, exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    classifier = tflite.TFLiteClassifier(exported["none"])
    assert isinstance(classifier.interpreter, tf.lite.Interpreter)
    images = np.random.default_rng(6).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    expected = np.asarray(model(images, training=False))
    np.testing.assert_allclose(classifier.invoke(images), expected, rtol=1e-4, atol=1e-6)


def test_class_names_must_name_every_output(model):
    with pytest.raises(ValueError, match="must name the model's 10 outputs. Received: 2 names"):
        tflite.export_tflite(model, "x.tflite", class_names=["a", "b"])


# --------------------------------------------------------------------------- calibration


def test_calibration_searches_recursively_and_counts_unreadable_files(tmp_path):
    write_images(str(tmp_path / "a" / "b"), count=5)
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    images, record = tflite.calibration_images(str(tmp_path), limit=300)
    assert len(images) == 5 and record["unreadable"] == 1
    images, record = tflite.calibration_images(str(tmp_path), limit=3)
    assert len(images) + record["unreadable"] == 3


def test_calibration_from_image_data():
    from nasnet_app.data import demo_cifar10

    images, record = tflite.calibration_images(demo_cifar10(), limit=20)
    assert len(images) == 20 and record["split"] == "train"
    assert images[0].shape == (32, 32, 3) and images[0].dtype == np.uint8


@pytest.mark.parametrize("kind", ["missing", "empty", "unreadable"])
def test_bad_calibration_folder_is_named(tmp_path, kind):
    folder = tmp_path / "calibration"
    if kind != "missing":
        (folder / "sub").mkdir(parents=True)
        (folder / "notes.txt").write_text("no images")
    if kind == "unreadable":
        (folder / "sub" / "x.jpg").write_bytes(b"broken")
    with pytest.raises(tflite.CalibrationError, match=str(folder)):
        tflite.calibration_images(str(folder))


def test_quantize_and_calibration_are_checked(model):
    with pytest.raises(ValueError, match="`quantize` must be one of"):
        tflite.export_tflite(model, "x.tflite", "int4")
    with pytest.raises(ValueError, match="`calibration` must be given with quantize='int8'"):
        tflite.export_tflite(model, "x.tflite", "int8")


# --------------------------------------------------------------------------- bad models and files


@keras.saving.register_keras_serializable(package="test_tflite")
class SingularValues(keras.layers.Layer):
    """An op LiteRT has no builtin kernel for."""

    def call(self, images):
        return tf.linalg.svd(tf.reshape(images, [-1, 4, 12]), compute_uv=False)


def test_unconvertible_model_names_the_op(tmp_path):
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(SingularValues()(inputs))
    model = keras.Model(inputs, outputs, name="svd_model")
    with pytest.raises(tflite.ConversionError) as error:
        tflite.export_tflite(model, str(tmp_path / "svd.tflite"))
    message = str(error.value)
    assert "svd_model" in message and "tf.Svd" in message and "\n" not in message
    assert not os.path.exists(tmp_path / "svd.tflite")


def test_model_without_image_input_is_refused():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name="vector_model")
    with pytest.raises(tflite.ConversionError, match="vector_model.*must take images"):
        tflite.export_tflite(model, "x.tflite")


def test_damaged_files_are_named(exported, tmp_path):
    not_tflite = tmp_path / "random.tflite"
    not_tflite.write_bytes(os.urandom(2000))
    with pytest.raises(tflite.LiteRTModelError, match="must be a LiteRT .tflite file"):
        tflite.TFLiteClassifier(str(not_tflite))
    truncated = tmp_path / "truncated.tflite"
    content = open(exported["none"], "rb").read()
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(tflite.LiteRTModelError, match=f"{truncated} is a damaged"):
        tflite.TFLiteClassifier(str(truncated))
    with pytest.raises(FileNotFoundError, match="nothing.tflite"):
        tflite.TFLiteClassifier(str(tmp_path / "nothing.tflite"))


def test_file_without_metadata_needs_a_converter(model, tmp_path):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(tflite._convert(model, (32, 32), "none", None, "tiny"))
    with pytest.raises(tflite.LiteRTModelError, match="carries no nasnet-app metadata"):
        tflite.TFLiteClassifier(str(bare))
    classifier = tflite.TFLiteClassifier(str(bare), converter=model.preprocessor)
    images = list(np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    np.testing.assert_allclose(
        classifier.predict(images), model.predict_images(images), rtol=1e-4, atol=1e-6
    )


# --------------------------------------------------------------------------- command line


def test_cli_quantisations_are_the_library_ones():
    assert cli.export.TFLITE_QUANTIZATIONS == tflite.QUANTIZATIONS


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--quantize", "int8"], "`--calibration` must be given with --quantize int8"),
        (["--calibration", "somewhere"], "`--calibration` must be given with --quantize int8"),
        (["--quantize", "int8", "--calibration", "x", "--out", "m.bin"], "must be a .tflite"),
    ],
)
def test_cli_option_errors_exit_2(extra, message, capsys):
    argv = ["export", "--model", "m.keras", "--format", "tflite", "--out", "m.tflite", *extra]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_quantize_goes_with_tflite_only(capsys):
    argv = ["export", "--model", "m.keras", "--format", "savedmodel", "--out", "d"]
    assert cli.main([*argv, "--quantize", "float16"]) == 2
    assert "go with --format tflite" in capsys.readouterr().err


def nasnet_app_command(*argv):
    return subprocess.run(
        [sys.executable, "-m", "nasnet_app.cli", *argv],
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_error_line(result):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny_keras_file(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("keras") / "tiny.keras")
    model.save(path)
    return path


@pytest.mark.slow
def test_cli_export_classify_evaluate_a_tflite_model(tiny_keras_file, tmp_path, capsys):
    data = str(tmp_path / "data")
    images = write_images(data, count=6)
    out = str(tmp_path / "tiny_int8.tflite")
    argv = ["export", "--model", tiny_keras_file, "--format", "tflite", "--quantize", "int8"]
    assert cli.main([*argv, "--calibration", data, "--out", out]) == 0
    assert capsys.readouterr().out.strip() == out
    assert tflite.read_metadata(out)["class_names"] == CLASSES
    folder = os.path.dirname(images[1])  # a folder argument: the images inside it
    assert cli.main(["classify", images[0], folder, "--model", out, "--top", "2", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 4 and records[0]["top"][0]["name"] in CLASSES
    report_dir = str(tmp_path / "report")
    argv = ["evaluate", "--model", out, "--data", data, "--out", report_dir, "--no-latency"]
    assert cli.main(argv) == 0
    assert "on 6 images" in capsys.readouterr().out
    with open(os.path.join(report_dir, "report.json")) as handle:
        report = json.load(handle)
    assert report["format"] == "tflite" and report["quantization"]["mode"] == "int8"


@pytest.mark.slow
def test_cli_bad_input_is_one_line_naming_it(tiny_keras_file, tmp_path):
    vector_model = str(tmp_path / "vector.keras")
    keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)]).save(vector_model)
    result = nasnet_app_command(
        "export", "--model", vector_model, "--format", "tflite", "--out", str(tmp_path / "v.tflite")
    )
    assert "cannot convert the model vector.keras to LiteRT" in one_error_line(result)

    empty = tmp_path / "empty"
    empty.mkdir()
    result = nasnet_app_command(
        "export", "--model", tiny_keras_file, "--format", "tflite", "--quantize", "int8",
        "--calibration", str(empty), "--out", str(tmp_path / "q.tflite"),
    )  # fmt: skip
    assert f"calibration folder {empty} holds no image files" in one_error_line(result)

    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\0\0\0\0TFL3" + os.urandom(500))
    image = write_images(str(tmp_path / "images"), count=1)[0]
    result = nasnet_app_command("classify", image, "--model", str(corrupt))
    assert f"{corrupt} is a damaged .tflite file" in one_error_line(result)
    result = nasnet_app_command(
        "evaluate", "--model", str(corrupt), "--data", str(tmp_path / "images"),
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert f"{corrupt} is a damaged .tflite file" in one_error_line(result)


@pytest.mark.slow
def test_cli_exports_a_preset(tmp_path, capsys):
    out = str(tmp_path / "cifar.tflite")
    assert (
        cli.main(["export", "--preset", "nasnet_a_cifar10", "--format", "tflite", "--out", out])
        == 0
    )
    metadata = tflite.read_metadata(out)
    assert metadata["model"] == "nasnet_a_cifar10" and metadata["class_names"][0] == "airplane"
    folder = str(tmp_path / "saved")
    assert (
        cli.main(
            ["export", "--preset", "nasnet_a_cifar10", "--format", "savedmodel", "--out", folder]
        )
        == 0
    )
    with open(os.path.join(folder, "metadata.json")) as handle:
        assert json.load(handle)["class_names"][0] == "airplane"
