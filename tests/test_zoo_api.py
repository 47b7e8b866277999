"""`nasnet_app.zoo.load / convert / load_classifier`: dispatch on weight formats, end to end.

A preset for the small TF-Slim CIFAR reference network, whose weights are
served from a local HTTP server as a `.tar.gz`, stands in for the official
ImageNet files (which cannot be downloaded here).
"""

import hashlib
import http.server
import json
import os
import tarfile
import threading

import numpy as np
import pytest

import nasnet_app
from nasnet_app import applications, download, zoo
from nasnet_app.presets import KERAS_BASE_URL
from nasnet_app.zoo import api, presets
from tests.reference_data import shared_data_path

REFERENCE = shared_data_path("slim-reference/nasnet_cifar_small")
CIFAR_LABELS = "airplane automobile bird cat deer dog frog horse ship truck".split()
CIFAR_CONFIG = dict(
    num_blocks=2, penultimate_filters=192, stem="cifar", stem_filters=24, bn_epsilon=1e-5
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    path = folder / "nasnet-a_cifar_small.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for suffix in (".index", ".data-00000-of-00001"):
            tar.add(os.path.join(REFERENCE, "ckpt", "model.ckpt" + suffix), "model.ckpt" + suffix)
    return path


@pytest.fixture(scope="module")
def server(archive):
    folder = str(archive.parent)

    class Handler(http.server.SimpleHTTPRequestHandler):
        served = []

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=folder, **kwargs)

        def log_message(self, *args):
            Handler.served.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler.served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(download.HOME_VARIABLE, str(tmp_path / "home"))
    return tmp_path / "home"


def _cifar_preset(url=None, sha256=None):
    weights = {}
    if url:
        weights["slim"] = {
            "format": "slim",
            "files": {"any": {"url": url, "file_name": url.rsplit("/", 1)[-1], "sha256": sha256}},
        }
    preset = presets.preset_from_genotype(
        "test_cifar_small", "nasnet_a", CIFAR_CONFIG, input_size=32, classes=10,
        labels=CIFAR_LABELS, weights=weights, register=False,
    )  # fmt: skip
    return preset.replace(default_weights="slim" if url else None)


def _relative_error(ours, reference):
    return float(np.abs(np.asarray(ours) - reference).max() / np.abs(reference).max())


def test_pretrained_download_save_and_reload(server, archive, tmp_path):
    base, served = server
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    preset = _cifar_preset(f"{base}/{archive.name}", digest)
    images = np.load(os.path.join(REFERENCE, "input.npy"))
    logits = np.load(os.path.join(REFERENCE, "outputs.npz"))["Logits"]

    model = zoo.load(preset, weights="imagenet", classifier_activation=None, progress=False)
    assert model.strided_pool_padding == "same"
    assert model.class_names == CIFAR_LABELS
    assert _relative_error(model(images), logits) <= 1e-4
    assert served == [f"/{archive.name}"]

    path, source = api.fetch_weights(preset, progress=False)
    assert source == "slim" and path.endswith(archive.name)
    assert served == [f"/{archive.name}"]  # the cached, verified archive was reused
    out = api.save_model(model, tmp_path / "cifar.keras")
    reloaded = zoo.load(preset, weights=out)
    assert reloaded.strided_pool_padding == "same"
    assert reloaded.class_names == CIFAR_LABELS  # saved in the .keras file
    assert reloaded.preprocessor.get_config() == model.preprocessor.get_config()
    np.testing.assert_allclose(reloaded(images), model(images), atol=1e-6)

    classifier = zoo.load_classifier(preset, model=reloaded)
    top = classifier.classify(images[0] * 127.5 + 127.5, top=2)[0]
    assert top[0].name in CIFAR_LABELS and top[0].probability >= top[1].probability


def test_detect_format(tmp_path):
    prefix = tmp_path / "model.ckpt"
    (tmp_path / "model.ckpt.index").write_bytes(b"")
    assert api.detect_format("a/NASNet-mobile.h5") == "keras_h5"
    assert api.detect_format("m.weights.h5") == "weights_h5"
    assert api.detect_format("m.keras") == "keras"
    assert api.detect_format("nasnet-a_mobile_04_10_2017.tar.gz") == "slim"
    assert api.detect_format(str(prefix)) == "slim"
    assert api.detect_format(str(tmp_path)) == "slim"
    with pytest.raises(ValueError, match="`weights` must be None, 'imagenet', a URL"):
        api.detect_format("weights.bin")


def test_bad_arguments_fail_before_building(tmp_path):
    preset = _cifar_preset()
    weights_file = tmp_path / "x.weights.h5"
    weights_file.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        zoo.load(preset, weights="missing.h5")
    with pytest.raises(ValueError, match="`weights` must be None, 'imagenet'"):
        zoo.load(preset, weights=3)
    with pytest.raises(ValueError, match="names no pretrained weights"):
        zoo.load(preset, weights="imagenet")
    with pytest.raises(ValueError, match="`classes` must be 1000"):
        zoo.load("nasnet_a_mobile_imagenet", weights=weights_file, classes=10)
    with pytest.raises(ValueError, match="`include_background` must be False"):
        zoo.load("nasnet_a_mobile_imagenet", weights=weights_file, include_background=True)
    with pytest.raises(ValueError, match="`out` must end in .keras"):
        api.save_model(None, "model.h5")


def test_offline_pretrained_names_url_and_place(home):
    preset = _cifar_preset("http://127.0.0.1:9/nasnet-a_cifar_small.tar.gz")
    with pytest.raises(download.DownloadError) as info:
        zoo.load(preset, weights="imagenet", progress=False)
    assert "http://127.0.0.1:9/nasnet-a_cifar_small.tar.gz" in str(info.value)
    assert str(home / "downloads" / "nasnet-a_cifar_small.tar.gz") in str(info.value)


def _project_source(path, sha256):
    return presets.WeightSource("keras", {"any": {"path": str(path), "sha256": sha256}})


def test_manifest_checkpoint_is_hash_checked(tmp_path):
    model = nasnet_app.NASNet(
        num_blocks=1, penultimate_filters=48, stem="cifar", stem_filters=12, classes=10,
        input_shape=(32, 32, 3),
    )  # fmt: skip
    path = api.save_model(model, tmp_path / "tiny.keras")
    preset = presets.Preset(
        name="tiny",
        architecture={"base": "cifar", "num_blocks": 1, "penultimate_filters": 48},
        input_size=(32, 32),
        classes=10,
        labels=CIFAR_LABELS,
        weights={"project": _project_source(path, download.file_hash(path))},
        default_weights="project",
    )
    entry = presets.manifest_entry(preset, str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"tiny": entry}))
    preset = presets.presets_from_manifest(str(tmp_path / "manifest.json"))["tiny"]
    loaded = zoo.load(preset, weights="pretrained")
    images = np.random.RandomState(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-6)
    assert loaded.class_names == CIFAR_LABELS  # the preset names the classes of its checkpoint
    damaged = preset.replace(weights={"project": _project_source(path, "1" * 64)})
    with pytest.raises(download.HashMismatchError, match="tiny.keras"):
        zoo.load(damaged, weights="pretrained")


def test_build_model_carries_the_preset_converter_and_class_names(tmp_path):
    preset = _cifar_preset().replace(preprocessing={"crop_fraction": 0.5, "resize": "stretch"})
    model = zoo.build_model(preset)
    assert model.preprocessor.crop_fraction == 0.5 and model.preprocessor.resize_mode == "stretch"
    assert model.class_names == CIFAR_LABELS
    reloaded = zoo.load(preset, weights=api.save_model(model, tmp_path / "m.keras"))
    assert reloaded.preprocessor.get_config() == model.preprocessor.get_config()
    assert reloaded.class_names == CIFAR_LABELS
    resized = zoo.build_model(preset, input_shape=(48, 48, 3), classes=4)
    assert resized.preprocessor.image_size == (48, 48) and resized.class_names is None


def test_application_weights_ask_for_the_official_file(monkeypatch):
    calls = []

    def fake_fetch(url, file_name=None, md5=None, sha256=None, progress=True):
        calls.append((url, md5))
        return "/cache/" + file_name

    monkeypatch.setattr(download, "fetch", fake_fetch)
    path = applications.imagenet_weights_path("mobile", False)
    assert path == "/cache/NASNet-mobile-no-top.h5"
    assert calls == [
        (KERAS_BASE_URL + "NASNet-mobile-no-top.h5", "1ed92395b5b598bdda52abe5c0dbfd63")
    ]
    with pytest.raises(ValueError, match="NASNetMobile and NASNetLarge"):
        applications.imagenet_weights_path("cifar", True)


def test_core_from_preset_takes_architectures_and_zoo_records():
    tiny = nasnet_app.presets.ARCHITECTURES["cifar"].replace(
        num_blocks=1, penultimate_filters=48, stem_filters=12
    )
    model = nasnet_app.NASNetImageClassifier.from_preset(tiny, classes=3)
    assert (
        model.count_params() == nasnet_app.NASNet(**tiny.model_kwargs(), classes=3).count_params()
    )
    from_record = nasnet_app.NASNetImageClassifier.from_preset(_cifar_preset())
    assert from_record.class_names == CIFAR_LABELS
    backbone = nasnet_app.NASNetBackbone.from_preset(_cifar_preset())
    assert backbone.num_blocks == CIFAR_CONFIG["num_blocks"]
    with pytest.raises(ValueError, match="nasnet_app.zoo.load\\(name\\)"):
        nasnet_app.NASNetImageClassifier.from_preset("nasnet_a_mobile_imagenet")


@pytest.mark.slow
def test_keras_applications_h5_loads_with_zero_padding(tmp_path):
    import keras

    from nasnet_app.weights import write_legacy_h5

    reference = keras.applications.NASNetMobile(weights=None, classifier_activation=None)
    path = str(tmp_path / "NASNet-mobile.h5")
    write_legacy_h5(reference, path)
    model = zoo.load("nasnet_a_mobile_imagenet", weights=path, classifier_activation=None)
    assert model.strided_pool_padding == "zeros"  # TF-Slim padding would differ by 4e-2
    images = np.random.RandomState(1).uniform(-1, 1, (1, 224, 224, 3)).astype("float32")
    expected = np.asarray(reference(images))
    assert _relative_error(model(images), expected) <= 1e-4
