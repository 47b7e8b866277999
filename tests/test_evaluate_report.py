"""Tests of nasnet_app.evaluate.report (and the metrics and plots it is built from)."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from nasnet_app import data
from nasnet_app.evaluate import metrics, plots
from nasnet_app.evaluate.report import evaluate_model, load_model_with_classes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def _colour_folder(root):
    """3 images per colour class, plus a green image filed under red (a known mistake)."""
    for name, rgb in COLOURS.items():
        os.makedirs(root / name)
        for i in range(3):
            Image.new("RGB", (32, 32), rgb).save(root / name / f"{i}.png")
    Image.new("RGB", (32, 32), COLOURS["green"]).save(root / "red" / "odd_one.png")
    return str(root)


def _channel_model(order=(2, 1, 0)):
    """Predicts the dominant colour channel; output i is channel `order[i]`.

    The default order matches the sorted class folders: blue, green, red.
    """
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(3, activation="softmax", name="colour")
    outputs = dense(pooled)
    model = keras.Model(inputs, outputs, name="colour_model")
    kernel = np.zeros((3, 3), np.float32)
    for output, channel in enumerate(order):
        kernel[channel, output] = 10.0
    dense.set_weights([kernel, np.zeros(3, np.float32)])
    return model


def test_metrics_by_hand():
    probabilities = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    labels = np.array([0, 1, 1, 0])
    assert metrics.top_k_accuracy(probabilities, labels, 1) == 0.5
    assert metrics.top_k_accuracy(probabilities, labels, 2) == 1.0
    matrix = metrics.confusion_matrix(labels, probabilities.argmax(1), 3)
    assert matrix.tolist() == [[1, 0, 1], [0, 1, 1], [0, 0, 0]]
    precision, recall, support = metrics.precision_recall(matrix)
    assert precision == [1.0, 1.0, 0.0]
    assert recall == [0.5, 0.5, None]  # class 2 never occurs: recall undefined
    assert support == [2, 2, 0]
    summary = metrics.classification_summary(probabilities, labels, ["a", "b", "c"])
    assert summary["top5_k"] == 3 and summary["top5"] == 1.0
    assert summary["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "support": 2}


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="probabilities"):
        metrics.top_k_accuracy(np.zeros(3), np.zeros(3), 1)
    with pytest.raises(ValueError, match="labels"):
        metrics.top_k_accuracy(np.zeros((3, 2)), np.zeros(2), 1)
    with pytest.raises(ValueError, match="`k`"):
        metrics.top_k_accuracy(np.zeros((3, 2)), np.zeros(3), 0)
    with pytest.raises(ValueError, match="predictions"):
        metrics.confusion_matrix([0, 1], [0, 3], 2)


def test_latency_is_measured():
    result = metrics.measure_latency(_channel_model(), (32, 32, 3), batch_sizes=(1, 4), repeats=3)
    assert set(result) == {"batch_1", "batch_4"}
    for entry in result.values():
        assert entry["ms_per_image"] > 0
    assert result["batch_4"]["ms_per_batch"] == pytest.approx(4 * result["batch_4"]["ms_per_image"])


def test_report_of_a_model_with_known_predictions(tmp_path):
    folder = _colour_folder(tmp_path / "colours")
    report = evaluate_model(_channel_model(), folder, tmp_path / "report", latency_repeats=2)
    assert report["split"] == "train"  # a plain class-folder tree is evaluated whole
    assert report["examples"] == 10
    assert report["top1"] == pytest.approx(0.9)
    assert report["top5"] == 1.0 and report["top5_k"] == 3
    assert report["per_class"]["red"] == {"precision": 1.0, "recall": 0.75, "support": 4}
    assert report["per_class"]["green"]["precision"] == pytest.approx(0.75)
    assert report["confusion_matrix"][0] == [3, 0, 0]  # blue (folders sort: blue, green, red)
    assert report["confusion_matrix"][2] == [0, 1, 3]
    assert report["parameters"] == 12
    assert report["mult_adds"] >= 9
    assert set(report["latency_ms_per_image"]) == {"batch_1", "batch_32"}
    (mistake,) = report["misclassified"]
    assert mistake["source"].endswith(os.path.join("red", "odd_one.png"))
    assert (mistake["true"], mistake["predicted"]) == ("red", "green")
    with open(report["files"]["report"]) as handle:
        assert json.load(handle)["top1"] == report["top1"]
    for key in ("confusion_matrix", "misclassified"):
        with open(report["files"][key], "rb") as handle:
            assert handle.read(8) == PNG_MAGIC


def test_class_names_map_data_folders_to_model_outputs(tmp_path):
    folder = _colour_folder(tmp_path / "colours")
    model = _channel_model(order=(2, 0, 1))  # outputs: blue channel, red, green
    report = evaluate_model(
        model, folder, tmp_path / "r", class_names=["blue", "red", "green"], latency=False
    )
    assert report["top1"] == pytest.approx(0.9)
    assert list(report["per_class"]) == ["blue", "red", "green"]
    with pytest.raises(ValueError, match=r"\['red'\] are not classes of the model"):
        evaluate_model(model, folder, tmp_path / "r2", class_names=["blue", "x", "green"])
    with pytest.raises(ValueError, match="2 outputs but the data has 3 classes"):
        evaluate_model(_two_outputs(), folder, tmp_path / "r3", latency=False)


def _two_outputs():
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))


def test_logits_are_turned_into_probabilities(tmp_path):
    folder = _colour_folder(tmp_path / "colours")
    model = _channel_model()
    logits = keras.Model(model.inputs, model.get_layer("colour").output)
    logits.get_layer("colour").activation = keras.activations.linear
    report = evaluate_model(logits, folder, tmp_path / "r", latency=False)
    assert report["top1"] == pytest.approx(0.9)
    assert 0.0 <= report["misclassified"][0]["confidence"] <= 1.0


def test_model_with_classes_file(tmp_path):
    path = str(tmp_path / "model.keras")
    _channel_model().save(path)
    assert load_model_with_classes(path)[1] is None
    with open(tmp_path / "classes.json", "w") as handle:
        json.dump({"class_names": ["r", "g", "b"]}, handle)
    assert load_model_with_classes(path)[1] == ["r", "g", "b"]
    with pytest.raises(FileNotFoundError, match="nothing.keras"):
        load_model_with_classes(tmp_path / "nothing.keras")


def test_evaluation_on_demo_test_split_uses_real_images(tmp_path):
    demo = data.demo_cifar10().subset({"test": 3})
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(
        inputs,
        keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs)),
    )
    report = evaluate_model(model, demo, tmp_path / "r", latency=False, max_misclassified=4)
    assert report["split"] == "test" and report["examples"] == 30
    assert len(report["misclassified"]) == min(4, round(30 * (1 - report["top1"])))
    assert all(m["source"].endswith(".jpg") for m in report["misclassified"])


def test_plots_check_their_inputs(tmp_path):
    with pytest.raises(ValueError, match="matrix"):
        plots.plot_confusion_matrix([[1, 2]], ["a", "b"], tmp_path / "c.png")
    path = plots.plot_misclassified(None, [], [], [], tmp_path / "none.png")
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    with pytest.raises(ValueError, match="images"):
        plots.plot_misclassified(np.zeros((2, 8, 8, 3)), ["a"], ["b"], [0.5], tmp_path / "m.png")
    curves = plots.plot_training_curves(
        [
            {"epoch": 1, "loss": 1.0, "val_loss": 1.2, "phase": "head"},
            {"epoch": 2, "loss": 0.8, "phase": "full"},
        ],
        tmp_path / "curves.png",
    )
    with open(curves, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
