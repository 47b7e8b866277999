"""`nasnet-app zoo | classify | export` (nasnet_app/cli/zoo.py, classify.py, export.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nasnet_app import cli, download
from nasnet_app.zoo import presets
from tests.reference_data import shared_data_path

REFERENCE_CKPT = shared_data_path("slim-reference/nasnet_cifar_small/ckpt/model.ckpt")
CIFAR_LABELS = "airplane automobile bird cat deer dog frog horse ship truck".split()


@pytest.fixture(scope="module", autouse=True)
def cifar_preset():
    presets.preset_from_genotype(
        "cli_cifar_small", "nasnet_a",
        dict(num_blocks=2, penultimate_filters=192, stem="cifar", stem_filters=24, bn_epsilon=1e-5),
        input_size=32, classes=10, labels=CIFAR_LABELS,
    )  # fmt: skip
    yield "cli_cifar_small"
    presets.remove_preset("cli_cifar_small")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "cifar.keras"
    code = cli.main(
        ["zoo", "convert", "--preset", "cli_cifar_small", "--weights", REFERENCE_CKPT,
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    return out


@pytest.fixture
def images(tmp_path):
    rng = np.random.RandomState(0)
    paths = []
    for name in ("one.png", "two.jpg", "three.gif"):
        path = tmp_path / name
        Image.fromarray(rng.randint(0, 255, (40, 48, 3), np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_list_text_and_json(capsys):
    assert cli.main(["zoo", "list"]) == 0
    text = capsys.readouterr().out
    assert "nasnet_a_mobile_imagenet" in text and "top1 82.7" in text
    assert cli.main(["zoo", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["nasnet_a_large_imagenet"]["input_size"] == [331, 331]
    assert rows["nasnet_a_mobile_imagenet"]["weights"] == ["keras", "slim"]


def test_download_offline_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(download.HOME_VARIABLE, str(tmp_path))
    preset = presets.get_preset("cli_cifar_small").replace(
        name="cli_offline",
        weights={
            "slim": {"format": "slim", "files": {"any": {"url": "http://127.0.0.1:9/w.tar.gz"}}}
        },
        default_weights="slim",
    )
    presets.register_preset(preset, overwrite=True)
    try:
        assert cli.main(["zoo", "download", "cli_offline"]) == 1
    finally:
        presets.remove_preset("cli_offline")
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "http://127.0.0.1:9/w.tar.gz" in err and str(tmp_path / "downloads" / "w.tar.gz") in err


def test_download_puts_the_file_in_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(download.HOME_VARIABLE, str(tmp_path / "home"))
    source = tmp_path / "served.bin"
    source.write_bytes(b"weights" * 100)
    preset = presets.get_preset("cli_cifar_small").replace(
        name="cli_download",
        weights={"keras": {"format": "keras_h5", "files": {"any": {"url": source.as_uri()}}}},
        default_weights="keras",
    )
    presets.register_preset(preset, overwrite=True)
    try:
        assert cli.main(["zoo", "download", "cli_download"]) == 0
    finally:
        presets.remove_preset("cli_download")
    path = capsys.readouterr().out.strip()
    assert path == str(tmp_path / "home" / "downloads" / "served.bin")
    assert open(path, "rb").read() == source.read_bytes()


def test_classify_json_with_model(converted, images, capsys):
    assert cli.main(["classify", *images, "--model", str(converted), "--top", "3", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in records] == images
    for record in records:
        top = record["top"]
        assert len(top) == 3
        assert set(top[0]) == {"index", "wnid", "name", "probability"}
        probabilities = [p["probability"] for p in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0.0 <= probabilities[-1] <= probabilities[0] <= 1.0


def test_classify_with_preset_names_labels(images, capsys):
    code = cli.main(
        ["classify", images[0], "--preset", "cli_cifar_small", "--weights", REFERENCE_CKPT,
         "--top", "2"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == images[0]
    assert any(label in out[1] for label in CIFAR_LABELS)


def test_bad_image_exits_nonzero_with_one_line(converted, images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "nasnet_app.cli", "classify", images[0], str(bad),
         "--model", str(converted)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == images[0]  # the good image is still answered
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "broken.png" in errors[0], result.stderr
    assert errors[0].startswith("nasnet-app classify: error: 1 of 2 images unreadable")
    assert "Traceback" not in result.stderr


def test_weights_with_model_is_refused(converted, images, capsys):
    code = cli.main(["classify", images[0], "--model", str(converted), "--weights", "x.h5"])
    assert code == 2
    assert "--weights" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import nasnet_app
    from nasnet_app.zoo.api import save_model

    model = nasnet_app.NASNet(
        num_blocks=1, penultimate_filters=48, stem="cifar", stem_filters=12, classes=3,
        input_shape=(32, 32, 3),
    )  # fmt: skip
    return save_model(model, tmp_path_factory.mktemp("tiny") / "tiny.keras")


def test_export_dispatches_on_format(tiny_model, tmp_path, monkeypatch, capsys):
    # The exports themselves are tested in test_zoo_hub.py; here: arguments and errors.
    from nasnet_app.zoo import hub

    calls = []
    for name in ("export_saved_model", "export_hub"):
        monkeypatch.setattr(
            hub,
            name,
            lambda model, out, overwrite, name=name: (
                calls.append((name, out)) or os.mkdir(out) or out
            ),
        )
    for fmt in ("savedmodel", "hub"):
        out = str(tmp_path / fmt)
        assert cli.main(["export", "--model", tiny_model, "--format", fmt, "--out", out]) == 0
    assert calls == [
        ("export_saved_model", str(tmp_path / "savedmodel")),
        ("export_hub", str(tmp_path / "hub")),
    ]
    monkeypatch.undo()
    (tmp_path / "taken").mkdir()
    code = cli.main(
        ["export", "--model", tiny_model, "--format", "hub", "--out", str(tmp_path / "taken")]
    )
    assert code == 1
    assert "must not exist" in capsys.readouterr().err


def test_export_rejects_unknown_format(tiny_model, capsys):
    with pytest.raises(SystemExit):
        cli.main(["export", "--model", tiny_model, "--format", "onnx", "--out", "x"])
    assert "invalid choice" in capsys.readouterr().err


def test_classify_prints_the_class_names_beside_the_model(tiny_model, images, tmp_path, capsys):
    import shutil

    model = tmp_path / "run" / "model.keras"
    model.parent.mkdir()
    shutil.copy(tiny_model, model)
    (tmp_path / "run" / "classes.json").write_text(
        json.dumps({"class_names": ["ant", "bee", "cat"]})
    )
    assert cli.main(["classify", images[0], "--model", str(model), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[-1] for line in lines[1:]) == ["ant", "bee", "cat"]


def test_classify_a_folder_and_a_non_keras_model(tiny_model, images, tmp_path, capsys):
    folder = os.path.dirname(images[0])
    assert cli.main(["classify", folder, "--model", tiny_model, "--json"]) == 0
    assert [r["file"] for r in json.loads(capsys.readouterr().out)] == sorted(images)
    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"HDF")
    assert cli.main(["classify", images[0], "--model", str(weights)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "must be a .keras model file" in err


@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    import nasnet_app
    from nasnet_app.zoo.api import save_model

    model = nasnet_app.NASNet(
        num_blocks=1, penultimate_filters=48, stem="cifar", stem_filters=12, classes=3,
        input_shape=(32, 32, 3), class_names=["ant", "bee", "cat"],
    )  # fmt: skip
    return save_model(model, tmp_path_factory.mktemp("named") / "named.keras")


def test_classify_prints_the_class_names_the_model_carries(named_model, images, capsys):
    assert cli.main(["classify", images[0], "--model", named_model, "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[-1] for line in lines[1:]) == ["ant", "bee", "cat"]


@pytest.mark.slow
def test_export_writes_metadata_beside_the_saved_model(named_model, tmp_path):
    out = tmp_path / "exported"
    code = cli.main(["export", "--model", named_model, "--format", "savedmodel", "--out", str(out)])
    assert code == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["input"]["shape"] == [None, 32, 32, 3]
    assert metadata["input"]["image_size"] == [32, 32]
    assert metadata["input"]["value_range"] == [-1, 1] and metadata["input"]["dtype"] == "float32"
    assert metadata["outputs"] == 3 and metadata["class_names"] == ["ant", "bee", "cat"]
    assert (out / "saved_model.pb").exists()


def test_export_into_a_missing_folder_is_refused(tiny_model, tmp_path, capsys):
    out = tmp_path / "missing" / "export"
    assert cli.main(["export", "--model", tiny_model, "--format", "hub", "--out", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
