"""The preset registry: typed frozen records, built-in ImageNet entries, manifest checkpoints."""

import dataclasses
import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nasnet_app
from nasnet_app.preprocessing import NASNetImageConverter
from nasnet_app.presets import ARCHITECTURES, KERAS_BASE_URL, Preprocessing
from nasnet_app.zoo import presets
from tests.helpers import parameter_count, run_preset_test

KERAS_MD5 = {
    "NASNet-mobile.h5": "020fb642bf7360b370c678b08e0adf61",
    "NASNet-mobile-no-top.h5": "1ed92395b5b598bdda52abe5c0dbfd63",
    "NASNet-large.h5": "11577c9a518f0070763c2b964a382f17",
    "NASNet-large-no-top.h5": "d81d89dc07e6e56530c4e77faddd61b5",
}
# NASNet-A Large (89 M) and its detector (105 M): their real builds run in the slow run only.
HEAVY_PARAMETERS = 20_000_000


def _every_preset():
    for name in presets.list_presets():
        parameters = parameter_count(presets.get_preset(name))
        if parameters is not None and parameters > HEAVY_PARAMETERS:
            yield pytest.param(name, False, id=f"{name}-tiny")
            yield pytest.param(name, True, id=f"{name}-full", marks=pytest.mark.slow)
        else:
            yield pytest.param(name, True, id=name)


@pytest.mark.parametrize("name, full_build", _every_preset())
def test_every_registered_preset(name, full_build):
    run_preset_test(name, full_build=full_build)


def test_imagenet_presets_name_official_sources():
    for name, size, archive in (
        ("nasnet_a_mobile_imagenet", 224, "nasnet-a_mobile_04_10_2017.tar.gz"),
        ("nasnet_a_large_imagenet", 331, "nasnet-a_large_04_10_2017.tar.gz"),
    ):
        preset = presets.get_preset(name)
        assert preset.input_size == (size, size)
        assert preset.preprocessing == Preprocessing(0.875, "stretch", False, (-1.0, 1.0))
        keras_source = preset.weights["keras"]
        assert keras_source.strided_pool_padding == "zeros"
        for entry in keras_source.files.values():
            assert entry.url == KERAS_BASE_URL + entry.file_name
            assert entry.md5 == KERAS_MD5[entry.file_name]
        slim_source = preset.weights["slim"]
        assert slim_source.strided_pool_padding == "same"
        assert (slim_source.classes, slim_source.label_offset) == (1001, 1)
        entry = slim_source.files["any"]
        assert entry.url == (
            "https://storage.googleapis.com/download.tensorflow.org/models/" + archive
        )
        assert entry.md5 is None and entry.sha256 is None
    assert KERAS_BASE_URL == "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"


def test_imagenet_architectures_are_the_published_records():
    assert presets.get_preset("nasnet_a_mobile_imagenet").architecture is ARCHITECTURES["mobile"]
    assert presets.get_preset("nasnet_a_large_imagenet").architecture is ARCHITECTURES["large"]


def test_preprocessing_fields_are_the_converter_arguments():
    arguments = set(inspect.signature(NASNetImageConverter.__init__).parameters)
    fields = {field.name for field in dataclasses.fields(Preprocessing)}
    assert fields | {"self", "image_size", "kwargs"} == arguments
    converter = presets.get_preset("nasnet_a_large_imagenet").converter()
    assert converter.image_size == (331, 331) and converter.crop_fraction == 0.875
    assert converter.resize_mode == "stretch" and converter.antialias is False


def test_published_accuracy():
    mobile = presets.get_preset("nasnet_a_mobile_imagenet").accuracy
    large = presets.get_preset("nasnet_a_large_imagenet").accuracy
    assert (mobile.top1, mobile.top5) == (74.0, 91.6)
    assert (large.top1, large.top5) == (82.7, 96.2)


def test_model_kwargs_set_padding_per_source():
    preset = presets.get_preset("nasnet_a_mobile_imagenet")
    assert preset.model_kwargs(source="keras")["strided_pool_padding"] == "zeros"
    assert preset.model_kwargs(source="slim")["strided_pool_padding"] == "same"
    assert preset.model_kwargs(include_top=False)["include_top"] is False
    assert preset.weight_file("keras", include_top=False).file_name == "NASNet-mobile-no-top.h5"
    with pytest.raises(ValueError, match="`source` must be one of keras, slim"):
        preset.weight_file("hub")


def test_records_are_frozen_and_unknown_names_are_named():
    preset = presets.get_preset("nasnet_a_mobile_imagenet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.architecture = ARCHITECTURES["large"]
    with pytest.raises(TypeError):
        preset.weights["keras"] = None
    changed = preset.replace(name="mobile_copy", classes=5, labels=None)
    assert changed.classes == 5 and presets.get_preset("nasnet_a_mobile_imagenet").classes == 1000
    with pytest.raises(ValueError, match="nasnet_a_mobile_imagenet.*Received: preset='mobile'"):
        presets.get_preset("mobile")


def test_genotype_file_and_config_make_a_preset(tmp_path):
    genotype = nasnet_app.Genotype(
        normal=[[0, "sep_conv_3x3", 1, "identity"], [0, "avg_pool_3x3", 2, "identity"]],
        reduction=[[0, "max_pool_3x3", 1, "sep_conv_5x5"], [2, "identity", 0, "avg_pool_3x3"]],
        name="tiny",
    )
    path = tmp_path / "tiny.json"
    genotype.save(path)
    config = {"num_blocks": 1, "penultimate_filters": 64, "stem": "cifar", "stem_filters": 8}
    preset = presets.preset_from_genotype("tiny_custom", str(path), config, classes=5)
    try:
        assert "tiny_custom" in presets.list_presets()
        assert presets.get_preset("tiny_custom").genotype == genotype
        assert preset.architecture.bn_momentum == ARCHITECTURES["mobile"].bn_momentum
        model = nasnet_app.NASNet(**preset.model_kwargs())
        assert model.predict(np.zeros((2, 32, 32, 3)), verbose=0).shape == (2, 5)
    finally:
        presets.remove_preset("tiny_custom")
    assert "tiny_custom" not in presets.list_presets()
    cifar = presets.preset_from_genotype("on_cifar", "nasnet_a", "cifar", register=False)
    assert cifar.architecture == ARCHITECTURES["cifar"]


def test_register_refuses_duplicates_and_bad_presets():
    with pytest.raises(ValueError, match="existing preset"):
        presets.register_preset(presets.get_preset("nasnet_a_mobile_imagenet"))
    with pytest.raises(ValueError, match="must have the fields \\['architecture'\\]"):
        presets.register_preset({"name": "x"})
    bad = presets.get_preset("nasnet_a_mobile_imagenet")
    with pytest.raises(ValueError, match="input_size"):
        bad.replace(name="bad_one", input_size=(16, 16))
    with pytest.raises(ValueError, match="`labels` must be"):
        bad.replace(name="bad_one", classes=10)
    with pytest.raises(ValueError, match="`format` must be one of"):
        presets.WeightSource("onnx", {"any": {"url": "http://x/w.onnx"}})
    with pytest.raises(ValueError, match="`preprocessing` must only have the fields"):
        bad.replace(name="bad_one", preprocessing={"central_crop_fraction": 0.875})


@dataclasses.dataclass(frozen=True)
class _Detector:
    name: str
    task: str = presets.DETECTION


def test_the_registry_holds_detector_records_by_task():
    from nasnet_app import zoo

    presets.register_preset(_Detector("tiny_detector"))
    try:
        assert "tiny_detector" in presets.list_presets(presets.DETECTION)
        assert "tiny_detector" not in presets.list_presets(presets.CLASSIFICATION)
        assert "nasnet_a_mobile_imagenet" in presets.list_presets(presets.CLASSIFICATION)
        with pytest.raises(ValueError, match="image classification preset.*load_detector"):
            zoo.load("tiny_detector")
    finally:
        presets.remove_preset("tiny_detector")
    with pytest.raises(ValueError, match="`task` in"):
        presets.register_preset(_Detector("bad", task="segmentation"))


def test_manifest_entries_become_presets(tmp_path):
    architecture = {"base": "cifar", "num_blocks": 1, "penultimate_filters": 48}
    manifest = {
        "tiny_cifar": {
            "architecture": architecture,
            "input_size": [32, 32],
            "classes": 10,
            "labels": ["airplane", "automobile", "bird", "cat", "deer"]
            + ["dog", "frog", "horse", "ship", "truck"],
            "accuracy": {"dataset": "cifar10", "top1": 80.5},
            "weights": {
                "project": {
                    "format": "keras",
                    "files": {"any": {"path": "tiny_cifar.keras", "sha256": "0" * 64}},
                }
            },
            "default_weights": "project",
        }
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    preset = presets.presets_from_manifest(str(path))["tiny_cifar"]
    assert preset.default_weights == "project"
    entry = preset.weight_file("project")
    assert entry.path == str(tmp_path / "tiny_cifar.keras")
    assert (entry.sha256, entry.file_name) == ("0" * 64, "tiny_cifar.keras")
    assert preset.weights["project"].format == "keras"
    assert preset.accuracy.top1 == 80.5
    assert preset.architecture.bn_momentum == ARCHITECTURES["cifar"].bn_momentum
    written = presets.manifest_entry(preset, str(tmp_path))
    assert written["weights"]["project"]["files"]["any"]["path"] == "tiny_cifar.keras"
    assert presets.Preset.from_dict({**written, "name": "tiny_cifar"}, str(tmp_path)) == preset
    path.write_text("{not json")
    with pytest.raises(ValueError, match="Invalid checkpoint manifest"):
        presets.presets_from_manifest(str(path))
    path.write_text(json.dumps({"old": {"file": "x.keras", "config": {}}}))
    with pytest.raises(ValueError, match="entry 'old'.*unknown fields"):
        presets.presets_from_manifest(str(path))


def test_shipped_checkpoint_preset():
    preset = presets.get_preset("nasnet_a_cifar10")
    assert preset.architecture.stem == "cifar" and preset.architecture.num_blocks == 2
    assert preset.preprocessing == Preprocessing(crop_fraction=1.0)
    assert os.path.isfile(preset.weight_file("project").path)
    assert preset.class_names()[:2] == ["airplane", "automobile"]


def test_importing_the_zoo_registers_nothing_and_has_no_cycle():
    code = (
        "import sys\n"
        "import nasnet_app.zoo\n"
        "from nasnet_app.zoo import presets\n"
        "assert presets._REGISTRY == {}, 'registered on import'\n"
        "assert 'tensorflow' not in sys.modules\n"
        "presets.list_presets()\n"
        "assert 'nasnet_a_cifar10' in presets._REGISTRY\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
