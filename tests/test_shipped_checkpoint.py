"""The shipped `nasnet_a_cifar10` checkpoint: it loads, carries its classes, and scores as
its manifest says (measured by `nasnet-app evaluate`)."""

import json

import numpy as np
import pytest

from nasnet_app import data, zoo
from nasnet_app.cli import main
from nasnet_app.evaluate.report import predict_split
from tests.reference_data import reference_data


def test_loads_with_its_classes_and_scores_on_the_bundled_images():
    model = zoo.load("nasnet_a_cifar10", weights="pretrained")
    assert model.class_names[:3] == ["airplane", "automobile", "bird"]
    bundled = data.demo_cifar10()
    probabilities, labels = predict_split(model, bundled, "test")
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    assert len(labels) >= 500
    assert accuracy > 0.6  # 87 % on the full test set; far above chance (10 %)


@pytest.mark.slow
def test_evaluate_reproduces_the_manifest_accuracy(tmp_path, capsys):
    archive = reference_data("cifar10-jpeg.tar.gz")
    preset = zoo.get_preset("nasnet_a_cifar10")
    path = preset.weight_file("project").path
    out = tmp_path / "report"
    argv = ["evaluate", "--model", path, "--data", archive, "--out", str(out), "--no-latency"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["examples"] == preset.accuracy.test_images == 10_000
    assert round(report["top1"], 4) == preset.accuracy.top1
    assert round(report["top5"], 4) == preset.accuracy.top5
