"""Tests of the `finetune` and `evaluate` subcommands (nasnet_app.finetune_cli)."""

import argparse
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from nasnet_app import finetune_cli


def _run(argv):
    parser = argparse.ArgumentParser(prog="nasnet-app")
    finetune_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("left", "right"):
        os.makedirs(tmp_path / "data" / name)
        for i in range(4):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    return str(tmp_path / "data")


def _tiny_keras_file(path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x)).save(path)
    return path


def test_finetune_then_evaluate(folder, tmp_path, capsys):
    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    run = str(tmp_path / "run")
    argv = ["finetune", "--data", folder, "--model", start, "--out", run, "--epochs", "2"]
    assert _run(argv + ["--val-fraction", "0.25", "--batch-size", "4", "--quiet"]) == 0
    assert "finished 2 epochs" in capsys.readouterr().out
    with open(os.path.join(run, "history.json")) as handle:
        assert [r["phase"] for r in json.load(handle)] == ["head", "full"]
    report_dir = str(tmp_path / "report")
    argv = ["evaluate", "--model", os.path.join(run, "model.keras"), "--data", folder]
    assert _run(argv + ["--out", report_dir, "--no-latency"]) == 0
    assert "top-1" in capsys.readouterr().out
    with open(os.path.join(report_dir, "report.json")) as handle:
        report = json.load(handle)
    assert report["examples"] == 8 and list(report["per_class"]) == ["left", "right"]
    assert os.path.exists(os.path.join(report_dir, "confusion_matrix.png"))


def test_user_errors_exit_2_with_a_message(folder, tmp_path, capsys):
    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    missing = str(tmp_path / "missing")
    assert (
        _run(["finetune", "--data", missing, "--model", start, "--out", str(tmp_path / "r")]) == 2
    )
    assert "nasnet-app finetune: error:" in capsys.readouterr().err
    argv = [
        "finetune",
        "--data",
        folder,
        "--preset",
        "no_such_preset",
        "--out",
        str(tmp_path / "r"),
    ]
    assert _run(argv) == 2
    assert "no_such_preset" in capsys.readouterr().err
    argv = ["evaluate", "--model", start, "--data", folder, "--out", str(tmp_path / "e")]
    assert _run(argv) == 2  # 5 outputs, 2 classes, no classes.json
    assert "5 outputs but the data has 2 classes" in capsys.readouterr().err


def test_one_model_source_is_required(folder, tmp_path):
    with pytest.raises(SystemExit):
        _run(["finetune", "--data", folder, "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit):
        _run(
            [
                "evaluate",
                "--data",
                folder,
                "--out",
                str(tmp_path / "r"),
                "--model",
                "a",
                "--preset",
                "b",
            ]
        )
