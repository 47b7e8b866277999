"""Tests of `nasnet-app finetune` and `nasnet-app evaluate` (nasnet_app/cli/finetune.py, evaluate.py)."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from nasnet_app.cli import main
from tests import helpers


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


def one_error_line(capsys, command):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"nasnet-app {command}: error:"), err
    assert "=True" not in err and "resume=" not in err  # no Python argument names
    return err


def test_finetune_then_evaluate(folder, tmp_path, capsys):
    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    run = str(tmp_path / "run")
    argv = ["finetune", "--data", folder, "--model", start, "--out", run, "--epochs", "2"]
    first = ["--head-epochs", "1", "--backbone-lr-factor", "0.5"]
    assert main(argv + first + ["--val-fraction", "0.25", "--batch-size", "4", "--quiet"]) == 0
    assert "finished 2 epochs" in capsys.readouterr().out
    with open(os.path.join(run, "history.json")) as handle:
        history = json.load(handle)
    assert [r["phase"] for r in history] == ["head", "full"]
    assert [r["learning_rate"] for r in history] == pytest.approx([0.05, 0.025])
    report_dir = str(tmp_path / "report")
    argv = ["evaluate", "--model", os.path.join(run, "model.keras"), "--data", folder]
    assert main(argv + ["--out", report_dir, "--no-latency"]) == 0
    assert "top-1" in capsys.readouterr().out
    with open(os.path.join(report_dir, "report.json")) as handle:
        report = json.load(handle)
    assert report["examples"] == 8 and list(report["per_class"]) == ["left", "right"]
    assert os.path.exists(os.path.join(report_dir, "confusion_matrix.png"))
    # A larger --epochs on --resume extends the run to the new total.
    argv = ["finetune", "--data", folder, "--model", start, "--out", run, "--epochs", "1"]
    assert main(argv + ["--resume", "--val-fraction", "0.25", "--batch-size", "4"]) == 2
    assert "fewer than the 2 epochs" in one_error_line(capsys, "finetune")
    resumed = argv[:-1] + ["2", "--resume", "--val-fraction", "0.25", "--batch-size", "4"]
    assert main([*resumed, "--lr", "0.5"]) == 2
    assert "--lr 0.5 differs from the setting of the run" in one_error_line(capsys, "finetune")
    assert main([*resumed, "--backbone-lr-factor", "0.1"]) == 2
    assert "--backbone-lr-factor 0.1 differs" in one_error_line(capsys, "finetune")
    argv[-1] = "3"
    code = main(argv + ["--resume", "--val-fraction", "0.25", "--batch-size", "4", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "finished 3 epochs" in capsys.readouterr().out


def test_runtime_errors_exit_1_with_one_line(folder, tmp_path, capsys):
    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    missing = str(tmp_path / "missing")
    argv = ["finetune", "--data", missing, "--model", start, "--out", str(tmp_path / "r")]
    assert main(argv) == 1
    assert missing in one_error_line(capsys, "finetune")
    argv = ["evaluate", "--model", start, "--data", folder, "--out", str(tmp_path / "e")]
    assert main(argv) == 1  # 5 outputs, 2 classes, no classes.json
    assert "5 outputs but the data has 2 classes" in one_error_line(capsys, "evaluate")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content, message", [(b"not a zip", "must be a .keras model file")])
def test_a_model_file_that_is_not_keras_says_so(folder, tmp_path, capsys, content, message):
    for name in ("model.h5", "model.keras"):
        path = tmp_path / name
        path.write_bytes(content)
        argv = ["finetune", "--data", folder, "--model", str(path), "--out", str(tmp_path / "r")]
        assert main(argv) == 1
        err = one_error_line(capsys, "finetune")
        assert message in err and str(path) in err and "File not found" not in err


def test_usage_errors_exit_2_with_one_line(folder, tmp_path, capsys):
    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    base = ["finetune", "--data", folder, "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--model", start, "--lr", "-1"])
    assert exit_info.value.code == 2
    assert "--lr: must be a positive number. Received: -1" in one_error_line(capsys, "finetune")
    assert main([*base, "--preset", "no_such_preset"]) == 2
    assert "no_such_preset" in one_error_line(capsys, "finetune")


def test_resume_of_a_missing_folder_and_an_existing_run(folder, tmp_path, capsys):
    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    missing = tmp_path / "nowhere"
    argv = ["finetune", "--data", folder, "--model", start, "--out", str(missing), "--resume"]
    assert main(argv) == 1
    assert f"{missing} does not exist" in one_error_line(capsys, "finetune")
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.json").write_text(json.dumps({"epochs_done": 1, "settings": {"epochs": 2}}))
    assert main(["finetune", "--data", folder, "--model", start, "--out", str(run)]) == 2
    assert "Add --resume to continue it" in one_error_line(capsys, "finetune")


def test_ctrl_c_prints_the_resume_command(folder, tmp_path, capsys, monkeypatch):
    import nasnet_app.finetune

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nasnet_app.finetune, "finetune", interrupted)
    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    argv = ["finetune", "--data", folder, "--model", start, "--out", str(tmp_path / "r")]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"continue with: nasnet-app {' '.join(argv)} --resume" in err


def test_one_model_source_is_required(folder, tmp_path):
    with pytest.raises(SystemExit):
        main(["finetune", "--data", folder, "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", folder, "--out", str(tmp_path / "r"), "--model", "a",
              "--preset", "b"])  # fmt: skip


@pytest.mark.slow
def test_sigint_prints_the_resume_command(folder, tmp_path):
    import shlex
    import signal
    import subprocess
    import sys
    import time

    start = _tiny_keras_file(str(tmp_path / "start.keras"))
    run = tmp_path / "run"
    argv = ["finetune", "--data", folder, "--model", start, "--out", str(run), "--epochs", "10000"]
    argv += ["--batch-size", "4", "--quiet"]
    process = helpers.popen_interruptible(
        [sys.executable, "-m", "nasnet_app.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (run / "state.json").exists():
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)  # a loaded 2-core CI machine needs minutes
    assert process.returncode == 130, err
    assert f"continue with: {shlex.join(['nasnet-app', *argv, '--resume'])}" in err
    assert "Traceback" not in err


def _two_class_model(path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    return path


def test_bad_images_named_at_once_or_skipped_with_a_list(folder, tmp_path, capsys):
    for name in ("left/broken.png", "right/cut.png"):
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(b"\x89PNG\r\n\x1a\n truncated")
    model = _two_class_model(str(tmp_path / "m.keras"))
    argv = ["evaluate", "--model", model, "--data", folder, "--no-latency"]
    assert main([*argv, "--out", str(tmp_path / "e1")]) == 1
    error = one_error_line(capsys, "evaluate")
    assert "broken.png" in error and "cut.png" in error and "--skip-bad-images" in error
    out = tmp_path / "e2"
    assert main([*argv, "--out", str(out), "--skip-bad-images"]) == 0
    assert "skipped 2 unreadable image(s)" in capsys.readouterr().err
    listed = (out / "bad_images.txt").read_text()
    assert "broken.png" in listed and "cut.png" in listed
    assert json.loads((out / "report.json").read_text())["examples"] == 8


@pytest.mark.slow
def test_finetune_holds_validation_out_of_train_and_says_so(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for split, count in (("train", 10), ("test", 3)):
        for name in ("left", "right"):
            os.makedirs(tmp_path / "d" / split / name)
            for i in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "d" / split / name / f"{i}.png")
    start = _two_class_model(str(tmp_path / "start.keras"))
    argv = ["finetune", "--data", str(tmp_path / "d"), "--model", start, "--epochs", "1"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--batch-size", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "validation: val" in out and "held out of train" in out, out
    argv += ["--out", str(tmp_path / "r2"), "--batch-size", "4", "--quiet"]
    assert main([*argv, "--validation-split", "test"]) == 0
    assert "validation: test" in capsys.readouterr().out


def test_evaluate_with_mixed_precision(folder, tmp_path, capsys):
    model = _tiny_keras_file(str(tmp_path / "m.keras"))
    with open(tmp_path / "classes.json", "w") as handle:
        json.dump({"class_names": ["left", "right", "a", "b", "c"]}, handle)
    out = str(tmp_path / "report")
    argv = ["evaluate", "--model", model, "--data", folder, "--out", out, "--no-latency"]
    assert main(argv + ["--mixed-precision"]) == 0, capsys.readouterr().err
    with open(os.path.join(out, "report.json")) as handle:
        assert json.load(handle)["compute_dtype"] == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # restored for the caller
    argv = ["evaluate", "--model", str(tmp_path / "m.tflite"), "--data", folder, "--out", out]
    assert main(argv + ["--mixed-precision"]) == 2
    assert "applies to Keras models" in one_error_line(capsys, "evaluate")
