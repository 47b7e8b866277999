"""The preset registry: built-in ImageNet entries, manifest checkpoints, custom genotypes."""

import json

import numpy as np
import pytest

import nasnet_app
from nasnet_app.zoo import presets

KERAS_MD5 = {
    "NASNet-mobile.h5": "020fb642bf7360b370c678b08e0adf61",
    "NASNet-mobile-no-top.h5": "1ed92395b5b598bdda52abe5c0dbfd63",
    "NASNet-large.h5": "11577c9a518f0070763c2b964a382f17",
    "NASNet-large-no-top.h5": "d81d89dc07e6e56530c4e77faddd61b5",
}
HEAVY = {"nasnet_a_large_imagenet"}  # 89 M parameters: built in the slow run only


def _every_preset():
    return [
        pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name
        for name in presets.list_presets()
    ]


@pytest.mark.parametrize("name", _every_preset())
def test_every_preset_builds_with_random_weights(name):
    preset = presets.get_preset(name)
    size = min(64, *preset["input_size"])
    model = nasnet_app.NASNet(**presets.model_config(preset, input_shape=(size, size, 3)))
    outputs = model(np.zeros((1, size, size, 3), "float32"))
    assert outputs.shape == (1, preset["classes"])
    if "parameters" in preset:
        assert model.count_params() == preset["parameters"]["include_top"]
        head = model.weight_map()
        head_size = int(np.prod(head["head/dense/kernel"].shape) + head["head/dense/bias"].shape[0])
        assert model.count_params() - head_size == preset["parameters"]["no_top"]


def test_imagenet_presets_name_official_sources():
    for name, size, archive in (
        ("nasnet_a_mobile_imagenet", 224, "nasnet-a_mobile_04_10_2017.tar.gz"),
        ("nasnet_a_large_imagenet", 331, "nasnet-a_large_04_10_2017.tar.gz"),
    ):
        preset = presets.get_preset(name)
        assert preset["input_size"] == [size, size]
        assert preset["preprocessing"]["central_crop_fraction"] == 0.875
        assert preset["preprocessing"]["scale"] == [-1.0, 1.0]
        keras_source = preset["weights"]["keras"]
        assert keras_source["strided_pool_padding"] == "zeros"
        for entry in keras_source["files"].values():
            assert entry["url"] == presets.KERAS_BASE_URL + entry["file_name"]
            assert entry["md5"] == KERAS_MD5[entry["file_name"]]
        slim_source = preset["weights"]["slim"]
        assert slim_source["strided_pool_padding"] == "same"
        assert (slim_source["classes"], slim_source["label_offset"]) == (1001, 1)
        entry = slim_source["files"]["any"]
        assert entry["url"] == (
            "https://storage.googleapis.com/download.tensorflow.org/models/" + archive
        )
        assert entry["md5"] is None and entry["sha256"] is None
    assert presets.KERAS_BASE_URL == (
        "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"
    )


def test_published_accuracy():
    mobile = presets.get_preset("nasnet_a_mobile_imagenet")["accuracy"]
    large = presets.get_preset("nasnet_a_large_imagenet")["accuracy"]
    assert (mobile["top1"], mobile["top5"]) == (74.0, 91.6)
    assert (large["top1"], large["top5"]) == (82.7, 96.2)


def test_model_config_sets_padding_per_source():
    preset = presets.get_preset("nasnet_a_mobile_imagenet")
    assert presets.model_config(preset, source="keras")["strided_pool_padding"] == "zeros"
    assert presets.model_config(preset, source="slim")["strided_pool_padding"] == "same"
    assert presets.model_config(preset, include_top=False)["include_top"] is False
    assert presets.source_file(preset, "keras", include_top=False)["file_name"] == (
        "NASNet-mobile-no-top.h5"
    )


def test_get_preset_returns_a_copy_and_names_unknown():
    preset = presets.get_preset("nasnet_a_mobile_imagenet")
    preset["config"]["num_blocks"] = 99
    assert presets.get_preset("nasnet_a_mobile_imagenet")["config"]["num_blocks"] == 4
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
        assert presets.genotype_of(presets.get_preset("tiny_custom")) == genotype
        model = nasnet_app.NASNet(**presets.model_config(preset))
        assert model.predict(np.zeros((2, 32, 32, 3)), verbose=0).shape == (2, 5)
    finally:
        presets._REGISTRY.pop("tiny_custom", None)


def test_register_refuses_duplicates_and_bad_presets():
    with pytest.raises(ValueError, match="existing preset"):
        presets.register_preset(presets.get_preset("nasnet_a_mobile_imagenet"))
    with pytest.raises(ValueError, match="without \\['config'"):
        presets.register_preset({"name": "x", "genotype": "nasnet_a"})
    bad = presets.get_preset("nasnet_a_mobile_imagenet")
    bad.update(name="bad_one", input_size=[16, 16])
    with pytest.raises(ValueError, match="input_size"):
        presets.register_preset(bad)


def test_manifest_entries_become_presets(tmp_path):
    manifest = {
        "tiny_cifar": {
            "file": "tiny_cifar.keras",
            "sha256": "0" * 64,
            "genotype": "nasnet_a",
            "config": {"num_blocks": 1, "penultimate_filters": 48, "stem": "cifar"},
            "input_size": [32, 32],
            "classes": 10,
            "labels": ["airplane", "automobile", "bird", "cat", "deer"]
            + ["dog", "frog", "horse", "ship", "truck"],
            "accuracy": {"dataset": "cifar10", "top1": 80.5},
        }
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    preset = presets.presets_from_manifest(str(path))["tiny_cifar"]
    assert preset["default_weights"] == "project"
    entry = presets.source_file(preset, "project")
    assert entry["path"] == str(tmp_path / "tiny_cifar.keras")
    assert entry["sha256"] == "0" * 64
    assert preset["weights"]["project"]["format"] == "keras"
    assert preset["accuracy"]["top1"] == 80.5
    path.write_text("{not json")
    with pytest.raises(ValueError, match="Invalid checkpoint manifest"):
        presets.presets_from_manifest(str(path))
