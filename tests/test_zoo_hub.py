"""SavedModel / TF-Hub export of a tiny NASNet, `load_hub` in Keras 3, hub.KerasLayer in tf_keras."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import nasnet_app
from nasnet_app.zoo import hub

HUB_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow_hub as hub
import tf_keras

folder, images_path = sys.argv[1], sys.argv[2]
images = np.load(images_path)
labels = np.arange(len(images)) % 3
layer = hub.KerasLayer(folder + "/classification", trainable=True)
model = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), layer])
before_trainable = [w.numpy().copy() for w in layer.trainable_weights]
before_frozen = [w.numpy().copy() for w in layer.non_trainable_weights]
predictions = model.predict(images, verbose=0)
model.compile(tf_keras.optimizers.SGD(0.1), tf_keras.losses.SparseCategoricalCrossentropy())
history = model.fit(images, labels, epochs=2, batch_size=4, verbose=0)
features = hub.KerasLayer(folder + "/feature_vector")(images).numpy()
print(json.dumps({
    "predictions": predictions.tolist(),
    "features_shape": list(features.shape),
    "trainable": len(layer.trainable_weights),
    "frozen": len(layer.non_trainable_weights),
    "trainable_changed": sum(
        not np.allclose(a, w.numpy()) for a, w in zip(before_trainable, layer.trainable_weights)),
    "frozen_changed": sum(
        not np.allclose(a, w.numpy()) for a, w in zip(before_frozen, layer.non_trainable_weights)),
    "losses": history.history["loss"],
}))
"""


@pytest.fixture(scope="module")
def tiny():
    model = nasnet_app.NASNet(
        num_blocks=1, penultimate_filters=48, stem="cifar", stem_filters=12, classes=3,
        input_shape=(32, 32, 3),
    )  # fmt: skip
    images = np.random.RandomState(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    return model, images


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    model, _ = tiny
    return hub.export_hub(model, tmp_path_factory.mktemp("hub") / "module")


def test_saved_model_has_a_serving_signature(tiny, tmp_path):
    model, images = tiny
    out = hub.export_saved_model(model, tmp_path / "saved")
    loaded = tf.saved_model.load(out)
    outputs = loaded.signatures["serving_default"](tf.constant(images))
    (result,) = outputs.values()
    np.testing.assert_allclose(result, model(images), atol=1e-6)
    with pytest.raises(FileExistsError, match="must not exist"):
        hub.export_saved_model(model, out)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".saved.")] == []


def test_hub_layout_and_reuse_in_keras3(tiny, exported):
    model, images = tiny
    assert sorted(os.listdir(exported)) == ["classification", "feature_vector"]
    features = hub.load_hub(os.path.join(exported, "feature_vector"))
    np.testing.assert_allclose(features(images), model.endpoints(images)["global_pool"], atol=1e-5)
    head = keras.Sequential([keras.Input((32, 32, 3)), features, keras.layers.Dense(4)])
    assert features.trainable_weights == [] and not features.trainable
    head.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = features(images)
    head.fit(images, np.arange(8) % 4, epochs=1, batch_size=4, verbose=0)
    np.testing.assert_allclose(features(images), before)  # frozen: BN statistics untouched
    classification = hub.load_hub(os.path.join(exported, "classification"))
    np.testing.assert_allclose(classification(images), model(images), atol=1e-5)


def test_hub_keras_layer_fine_tunes_under_tf_keras(tiny, exported, tmp_path):
    model, images = tiny
    np.save(tmp_path / "images.npy", images)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, str(exported), str(tmp_path / "images.npy")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(report["predictions"], model(images), atol=1e-5)
    assert report["features_shape"] == [8, 48]
    assert report["trainable"] == len(model.trainable_weights)
    assert report["trainable_changed"] == report["trainable"]
    assert report["frozen_changed"] > 0  # BatchNormalization statistics updated in training


def test_missing_hub_module_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        hub.load_hub(str(tmp_path / "nowhere"))
