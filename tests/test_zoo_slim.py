"""TF-Slim checkpoints into NASNet, checked against the reference vectors in ../shared.

Errors are measured as `max|ours - reference| / max|reference|` per tensor.
Logits must agree to 1e-4. Intermediate end points get 5e-4: the reference
was computed in float32, and its rounding grows with depth (the same model
run in float64 differs from the reference by 1.8e-4 at `Cell_17` of the large
set, while its logits agree to 2e-5).
"""

import os
import shutil
import tarfile
import types

import numpy as np
import pytest

import nasnet_app
from nasnet_app.zoo import slim
from nasnet_app.zoo.archive import UnsafeArchiveError
from tests.reference_data import reference_data, shared_data_path

REFERENCE = shared_data_path("slim-reference")
LOGITS_TOLERANCE = 1e-4
ENDPOINT_TOLERANCE = 5e-4
SETS = {
    "nasnet_cifar_small": {
        "checkpoint": "ckpt/model.ckpt",
        "config": dict(
            num_blocks=2, penultimate_filters=192, stem="cifar", stem_filters=24,
            bn_epsilon=1e-5, classes=10, input_shape=(32, 32, 3),
        ),
    },
    "nasnet_mobile": {
        "checkpoint": "ckpt_ema/model.ckpt",
        "config": dict(
            num_blocks=4, penultimate_filters=1056, stem="imagenet", stem_filters=32,
            bn_epsilon=1e-3, input_shape=(224, 224, 3),
        ),
    },
    "nasnet_large_f24": {
        "checkpoint": "ckpt/model.ckpt",
        "config": dict(
            num_blocks=6, penultimate_filters=576, stem="imagenet", stem_filters=96,
            skip_reduction=True, bn_epsilon=1e-3, input_shape=(331, 331, 3),
        ),
    },
}  # fmt: skip


def _reference(name):
    folder = reference_data(f"slim-reference/{name}")
    outputs = np.load(os.path.join(folder, "outputs.npz"))
    return folder, np.load(os.path.join(folder, "input.npy")), outputs


def _relative_error(ours, reference):
    return float(np.abs(np.asarray(ours) - reference).max() / np.abs(reference).max())


def _model(name, **overrides):
    config = {**SETS[name]["config"], "classifier_activation": None}
    config.update({"strided_pool_padding": "same", **overrides})
    return nasnet_app.NASNet(**config)


def _check_set(name, classes):
    folder, images, reference = _reference(name)
    model = _model(name, classes=classes)
    slim.load_slim_checkpoint(model, os.path.join(folder, SETS[name]["checkpoint"]))
    points = model.endpoints(images)
    logits = reference["Logits"]
    if classes == logits.shape[-1] - 1:
        logits = logits[:, 1:]
    assert _relative_error(points["Logits"], logits) <= LOGITS_TOLERANCE
    compared = 0
    for key in reference.files:
        if key in points and key != "Logits":
            error = _relative_error(points[key], reference[key])
            assert error <= ENDPOINT_TOLERANCE, f"{name} {key}: {error:.2e}"
            compared += 1
    return model, points, compared


def test_cifar_reference_logits_and_end_points():
    _, _, compared = _check_set("nasnet_cifar_small", classes=10)
    assert compared == 10  # Stem, 8 cells, global_pool


def test_mobile_ema_checkpoint_with_and_without_background():
    model, points, compared = _check_set("nasnet_mobile", classes=1000)
    assert compared == 17  # Stem, cell_stem_0, 14 cells, global_pool
    assert model.weight_map()["head/dense/kernel"].shape == (1056, 1000)
    # The 1001-class head option (background kept) reproduces the full logits.
    folder, _, reference = _reference("nasnet_mobile")
    shapes = {key: tuple(v.shape) for key, v in model.weight_map().items()}
    shapes.update({"head/dense/kernel": (1056, 1001), "head/dense/bias": (1001,)})
    tensors = slim.read_slim_checkpoint(os.path.join(folder, "ckpt_ema", "model.ckpt"))
    head = slim.convert_slim(tensors, shapes, model.genotype)
    logits = np.asarray(points["global_pool"]) @ head["head/dense/kernel"] + head["head/dense/bias"]
    assert _relative_error(logits, reference["Logits"]) <= LOGITS_TOLERANCE


@pytest.mark.slow
def test_large_reference_with_skip_reduction():
    _, _, compared = _check_set("nasnet_large_f24", classes=1001)
    assert compared == 11


def test_name_map_examples():
    assert slim.slim_key("conv0/weights") == "stem/conv/kernel"
    assert slim.slim_key("l1_stem_bn/moving_variance") == "stem/bn/moving_variance"
    assert slim.slim_key("cell_stem_1/path2_conv/weights") == "stem_cell_1/adjust/path2_conv/kernel"
    assert slim.slim_key("reduction_cell_1/prev_bn/gamma") == "reduction_cell_1/adjust/bn/gamma"
    assert (
        slim.slim_key("cell_3/comb_iter_4/right/bn_sep_3x3_2/beta")
        == "cell_3/block4/right/sep_conv_3x3/bn2/beta"
    )
    assert (
        slim.slim_key("cell_0/comb_iter_2/right/1x1/weights")
        == "cell_0/block2/right/identity/proj_conv/kernel"
    )
    assert (
        slim.slim_key("cell_0/cell_output/reduction_1/path_bn/beta")
        == "cell_0/output/state1/bn/beta"
    )
    assert slim.slim_key("final_layer/FC/biases") == "head/dense/bias"
    for ignored in ("aux_7/aux_logits/FC/weights", "global_step", "cell_0/1x1/weights/RMSProp"):
        assert slim.slim_key(ignored) is None
    with pytest.raises(slim.UnknownSlimName, match="cell_0/mystery/weights"):
        slim.slim_key("cell_0/mystery/weights")


def test_branch_projection_names_follow_the_genotype():
    genotype = nasnet_app.Genotype(
        normal=[[0, "max_pool_3x3", 1, "sep_conv_3x3"]],
        reduction=[[0, "avg_pool_3x3", 1, "identity"]],
    )
    key = slim.slim_key("reduction_cell_0/comb_iter_0/right/bn_1/gamma", genotype)
    assert key == "reduction_cell_0/block0/right/identity/proj_bn/gamma"
    key = slim.slim_key("cell_1/comb_iter_0/left/1x1/weights", genotype)
    assert key == "cell_1/block0/left/max_pool_3x3/proj_conv/kernel"


def test_ema_names_first_then_plain_names():
    stored = {
        "conv0/weights": np.zeros(1),
        "conv0/weights/ExponentialMovingAverage": np.ones(1),
        "conv0_bn/moving_mean": np.full(1, 7.0),  # BN statistics without a shadow
    }
    chosen = slim.select_names(stored)
    assert chosen == {
        "conv0/weights": "conv0/weights/ExponentialMovingAverage",
        "conv0_bn/moving_mean": "conv0_bn/moving_mean",
    }
    arrays = slim.convert_slim(
        stored, {"stem/conv/kernel": (1,), "stem/bn/moving_mean": (1,)}, source="test"
    )
    assert arrays["stem/conv/kernel"][0] == 1.0 and arrays["stem/bn/moving_mean"][0] == 7.0


@pytest.fixture(scope="module")
def cifar_checkpoint():
    folder, _, _ = _reference("nasnet_cifar_small")
    return os.path.join(folder, SETS["nasnet_cifar_small"]["checkpoint"])


def test_checkpoint_of_another_size_names_first_problems(cifar_checkpoint):
    model = _model("nasnet_cifar_small", num_blocks=1, penultimate_filters=384)
    with pytest.raises(ValueError, match="shape mismatches") as info:
        slim.load_slim_checkpoint(model, cifar_checkpoint)
    message = str(info.value)
    assert cifar_checkpoint in message
    assert (
        "first: cell_0/base/conv/kernel: checkpoint cell_0/1x1/weights has shape "
        "[1, 1, 24, 8], the model expects [1, 1, 24, 16]" in message
    )
    assert "missing from the checkpoint, first: cell_1/adjust/path1_conv/kernel" in message
    assert "no place for, first: cell_1/prev_1x1/weights [1, 1, 24, 8]" in message


def test_checkpoint_of_another_architecture_names_missing_weights(cifar_checkpoint):
    model = nasnet_app.NASNet(
        num_blocks=2, penultimate_filters=192, stem="imagenet", stem_filters=24,
        classes=10, input_shape=(32, 32, 3),
    )  # fmt: skip
    with pytest.raises(ValueError, match="missing from the checkpoint, first: stem_cell_0/"):
        slim.load_slim_checkpoint(model, cifar_checkpoint)


def test_keras_padding_is_refused(cifar_checkpoint):
    keras_padded = types.SimpleNamespace(strided_pool_padding="zeros")  # checked before any use
    with pytest.raises(ValueError, match="strided_pool_padding='zeros'"):
        slim.load_slim_checkpoint(keras_padded, cifar_checkpoint)


def _copy_checkpoint(source_prefix, folder):
    os.makedirs(folder, exist_ok=True)
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(source_prefix + suffix, os.path.join(folder, "model.ckpt" + suffix))
    return os.path.join(folder, "model.ckpt")


def test_truncated_checkpoint_data_is_reported(cifar_checkpoint, tmp_path):
    prefix = _copy_checkpoint(cifar_checkpoint, tmp_path / "cut")
    data = prefix + ".data-00000-of-00001"
    with open(data, "r+b") as handle:
        handle.truncate(os.path.getsize(data) // 2)
    tensors = slim.read_slim_checkpoint(prefix)
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        [tensors[name] for name in tensors.keys()]
    assert str(tmp_path) in str(info.value)


def test_corrupt_checkpoint_index_is_reported(cifar_checkpoint, tmp_path):
    prefix = _copy_checkpoint(cifar_checkpoint, tmp_path / "bad")
    with open(prefix + ".index", "wb") as handle:
        handle.write(b"not a checkpoint index" * 20)
    with pytest.raises(ValueError, match="Cannot read TF checkpoint"):
        slim.read_slim_checkpoint(prefix)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/model.ckpt"):
        slim.resolve_checkpoint(str(tmp_path / "nowhere" / "model.ckpt"))


def test_archive_is_extracted_and_loaded(cifar_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("NASNET_APP_HOME", str(tmp_path / "home"))
    archive = tmp_path / "nasnet-a_cifar_04_10_2017.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for suffix in (".index", ".data-00000-of-00001"):
            tar.add(cifar_checkpoint + suffix, arcname="model.ckpt" + suffix)
    prefix = slim.resolve_checkpoint(str(archive))
    assert prefix.startswith(str(tmp_path / "home" / "extracted"))
    assert sorted(slim.read_slim_checkpoint(str(archive)).keys()) == sorted(
        slim.read_slim_checkpoint(cifar_checkpoint).keys()
    )
    same_folder = slim.resolve_checkpoint(str(tmp_path / "home" / "extracted"))
    assert same_folder == prefix


def test_unsafe_archive_is_not_extracted(cifar_checkpoint, tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_checkpoint + ".index", arcname="../model.ckpt.index")
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        slim.resolve_checkpoint(str(archive), extract_to=tmp_path / "out")
    assert not (tmp_path / "model.ckpt.index").exists()


def test_truncated_archive_is_reported(cifar_checkpoint, tmp_path):
    archive = tmp_path / "cut.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_checkpoint + ".data-00000-of-00001", arcname="model.ckpt.data-00000-of-00001")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        slim.resolve_checkpoint(str(archive), extract_to=tmp_path / "out")
