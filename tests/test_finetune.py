"""Tests of nasnet_app.finetune: phases, outputs, checks, and resume after a real SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import nasnet_app
from nasnet_app import data
from nasnet_app.classifier import ImageReadError
from nasnet_app.finetune import (
    _default_factor,
    _default_head_epochs,
    finetune,
    read_run_state,
    restore_checkpoint,
    save_training_curves,
    scratch_model,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def handful():
    """Real CIFAR-10 images: 2 per class for training, 1 per class for validation."""
    return data.demo_cifar10().subset({"train": 2, "test": 1})


def _tiny_nasnet(classes=10):
    return nasnet_app.NASNet(
        num_blocks=1,
        penultimate_filters=48,
        stem="cifar",
        stem_filters=12,
        input_shape=(32, 32, 3),
        classes=classes,
    )


def _tiny_functional(classes=3):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="old_head")(x)
    return keras.Model(inputs, outputs)


def test_head_phase_trains_only_the_new_head(handful, tmp_path):
    model = _tiny_nasnet(classes=7)
    before = {k: v.numpy().copy() for k, v in model.weight_map().items()}
    result = finetune(
        model, handful, tmp_path / "run", epochs=1, head_epochs=1, batch_size=10, verbose=0
    )
    assert [r["phase"] for r in result.history] == ["head"]
    assert set(result.history[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    after = result.model.weight_map()
    assert after["head/dense/kernel"].shape == (48, 10)
    for key, value in before.items():
        if not key.startswith("head/"):
            np.testing.assert_array_equal(after[key].numpy(), value, err_msg=key)
    saved = keras.models.load_model(result.paths["model"])
    images = next(iter(handful.dataset("test", batch_size=10)))[0]
    expected = result.model(images, training=False)
    np.testing.assert_allclose(saved(images, training=False), expected, atol=1e-5)
    with open(result.paths["classes"]) as handle:
        assert json.load(handle)["class_names"] == list(data.CIFAR10_CLASSES)
    with open(result.paths["curves"], "rb") as handle:
        assert handle.read(8) == PNG_MAGIC


def test_two_phases_lower_the_learning_rate_and_unfreeze(handful, tmp_path):
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append((epoch, len(self.model.trainable_variables)))

    model = _tiny_functional()
    result = finetune(
        model,
        handful,
        tmp_path / "run",
        epochs=3,
        head_epochs=1,
        batch_size=8,
        learning_rate=0.1,
        backbone_learning_rate_factor=0.2,
        callbacks=[Watch()],
        verbose=0,
    )
    assert [r["phase"] for r in result.history] == ["head", "full", "full"]
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert result.history[0]["learning_rate"] == pytest.approx(0.1)
    assert result.history[1]["learning_rate"] == pytest.approx(0.02)
    assert result.history[2]["learning_rate"] < 0.02  # cosine decay within the phase
    assert seen[0] == (0, 2) and seen[1][1] == 6  # head kernel+bias, then everything
    assert result.model.output_shape == (None, 10)


def test_short_runs_train_everything_at_the_peak_rate_by_default(handful, tmp_path):
    result = finetune(
        _tiny_functional(), handful, tmp_path / "run", epochs=2, batch_size=8,
        learning_rate=0.1, verbose=0,
    )  # fmt: skip
    assert [r["phase"] for r in result.history] == ["full", "full"]
    assert result.history[0]["learning_rate"] == pytest.approx(0.1)
    assert _default_head_epochs(None, 3) == 0 and _default_head_epochs(None, 8) == 2
    assert _default_head_epochs(2, 3) == 2
    saved = {"settings": {"backbone_learning_rate_factor": 0.1, "head_epochs": 1}}
    assert _default_factor(None) == 1.0 and _default_factor(None, saved) == 0.1
    assert _default_factor(0.5, saved) == 0.5
    assert _default_head_epochs(None, 9, saved) == 1  # a resumed run keeps its split


def test_existing_run_needs_resume_and_same_settings(handful, tmp_path):
    run = tmp_path / "run"
    finetune(_tiny_functional(), handful, run, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(FileExistsError, match="resume=True"):
        finetune(_tiny_functional(), handful, run, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="batch_size: 8 -> 4"):
        finetune(_tiny_functional(), handful, run, epochs=1, batch_size=4, resume=True, verbose=0)
    again = finetune(
        _tiny_functional(), handful, run, epochs=1, batch_size=8, resume=True, verbose=0
    )
    assert len(again.history) == 1  # complete already: nothing retrained


def test_keras_file_input_and_checkpoint_files(handful, tmp_path):
    path = str(tmp_path / "start.keras")
    _tiny_functional().save(path)
    result = finetune(path, handful, tmp_path / "run", epochs=1, batch_size=8, verbose=0)
    names = sorted(os.listdir(result.run_dir))
    assert names == [
        "ckpt-epoch0001.model.npz",
        "ckpt-epoch0001.optimizer.npz",
        "classes.json",
        "history.json",
        "model.keras",
        "state.json",
        "training_curves.png",
    ]
    with open(os.path.join(result.run_dir, "state.json")) as handle:
        assert json.load(handle)["epochs_done"] == 1


def test_image_undecodable_during_training_is_named(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        folder = tmp_path / "data" / label
        folder.mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            keras.utils.save_img(str(folder / f"{i}.jpg"), pixels, quality=95)
    good = (tmp_path / "data" / "b" / "0.jpg").read_bytes()
    cut = tmp_path / "data" / "b" / "cut.jpg"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        data.load(str(tmp_path / "data"))  # the scan at load time names it
    cut.write_bytes(good)
    dataset = data.load(str(tmp_path / "data"))
    cut.write_bytes(good[: len(good) // 2])  # damaged after loading: training names it
    with pytest.raises(ImageReadError, match="cut.jpg"):
        finetune(_tiny_functional(), dataset, tmp_path / "run", epochs=1, verbose=0)


def test_mixed_precision_trains_in_bfloat16_and_saves_float32(handful, tmp_path):
    policies = []

    class Watch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            policies.append(self.model.get_layer("conv").dtype_policy.name)

    result = finetune(
        _tiny_functional(),
        handful,
        tmp_path / "run",
        epochs=1,
        batch_size=8,
        mixed_precision="mixed_bfloat16",
        callbacks=[Watch()],
        verbose=0,
    )
    assert policies == ["mixed_bfloat16"]
    assert keras.config.dtype_policy().name == "float32"
    saved = keras.models.load_model(result.paths["model"])
    assert saved.get_layer("conv").dtype_policy.name == "float32"


def test_bad_arguments(handful, tmp_path):
    with pytest.raises(ValueError, match="optimizer"):
        finetune(_tiny_functional(), handful, tmp_path / "a", optimizer="adam", verbose=0)
    with pytest.raises(ValueError, match="head_epochs"):
        finetune(_tiny_functional(), handful, tmp_path / "b", epochs=2, head_epochs=3, verbose=0)
    with pytest.raises(ValueError, match="`model` must be"):
        finetune(3, handful, tmp_path / "c", verbose=0)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        finetune(str(tmp_path / "missing.keras"), handful, tmp_path / "d", verbose=0)
    with pytest.raises(ValueError, match="history"):
        save_training_curves([], tmp_path / "e.png")


@pytest.mark.slow
def test_genotype_trains_from_scratch_with_aux_head_and_drop_path(handful, tmp_path):
    totals = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            totals.append(self.model.drop_path_total_steps)

    result = finetune(
        "nasnet_a",
        handful,
        tmp_path / "run",
        epochs=1,
        batch_size=10,
        model_config={"num_blocks": 1, "penultimate_filters": 48, "stem_filters": 12},
        drop_path_keep_prob=0.7,
        callbacks=[Watch()],
        verbose=0,
    )
    assert [r["phase"] for r in result.history] == ["scratch"]
    assert totals == [2, 2]  # 20 images / batch 10, over 1 epoch
    config = result.model.get_config()
    assert config["aux_head"] and config["drop_path_keep_prob"] == 0.7
    assert np.isfinite(result.history[0]["loss"])
    # The epoch checkpoint restores into the model the run built (an unfinished run's export).
    rebuilt = scratch_model(
        "nasnet_a",
        handful.class_names,
        tuple(result.model.image_size),
        {"num_blocks": 1, "penultimate_filters": 48, "stem_filters": 12},
        0.7,
    )
    state = restore_checkpoint(tmp_path / "run", rebuilt)
    assert state["epochs_done"] == 1 and read_run_state(tmp_path / "run") == state
    assert read_run_state(tmp_path / "nothing") is None
    for got, expected in zip(rebuilt.get_weights(), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(FileNotFoundError, match="`run_dir` must hold"):
        restore_checkpoint(tmp_path / "nothing", rebuilt)


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import keras, tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    import nasnet_app
    from nasnet_app import data
    from nasnet_app.finetune import finetune

    run_dir, mode = sys.argv[1], sys.argv[2]

    class StallInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:
                open(os.path.join(run_dir, "stalled"), "w").close()
                time.sleep(600)

    keras.utils.set_random_seed(0)
    model = nasnet_app.NASNet(num_blocks=1, penultimate_filters=48, stem="cifar",
                              stem_filters=12, input_shape=(32, 32, 3), classes=10, dropout=0.2)
    callbacks = [StallInSecondEpoch()] if mode == "stall" else []
    finetune(model, data.demo_cifar10().subset({"train": 2, "test": 1}), run_dir, epochs=2,
             head_epochs=0, batch_size=8, callbacks=callbacks, resume=mode == "resume", verbose=2)
    """
)


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, str(script)]
    plain_dir, killed_dir = str(tmp_path / "plain"), str(tmp_path / "killed")
    plain = subprocess.Popen(command + [plain_dir, "plain"], env=env, stderr=subprocess.PIPE)
    stalled = subprocess.Popen(command + [killed_dir, "stall"], env=env, stderr=subprocess.PIPE)
    marker = os.path.join(killed_dir, "stalled")
    deadline = time.time() + 400
    while not os.path.exists(marker):
        assert stalled.poll() is None, stalled.stderr.read().decode()[-3000:]
        assert time.time() < deadline
        time.sleep(0.5)
    os.kill(stalled.pid, signal.SIGKILL)
    stalled.wait()
    with open(os.path.join(killed_dir, "state.json")) as handle:
        assert json.load(handle)["epochs_done"] == 1  # killed inside epoch 2
    assert not os.path.exists(os.path.join(killed_dir, "model.keras"))
    resumed = subprocess.run(command + [killed_dir, "resume"], env=env, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-3000:]
    assert plain.wait() == 0, plain.stderr.read().decode()[-3000:]
    histories = []
    for run in (plain_dir, killed_dir):
        with open(os.path.join(run, "history.json")) as handle:
            histories.append([{k: r[k] for k in ("loss", "val_loss")} for r in json.load(handle)])
    assert histories[0] == histories[1]
    weights = [
        keras.models.load_model(os.path.join(r, "model.keras")).get_weights()
        for r in (plain_dir, killed_dir)
    ]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
