"""nasnet_app's fused BatchNormalization computes keras.layers.BatchNormalization's function."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_app.ops import BatchNormalization


def _pair(shape, momentum=0.9, epsilon=1e-5):
    ours = BatchNormalization(momentum=momentum, epsilon=epsilon)
    reference = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    rng = np.random.RandomState(0)
    channels = shape[-1]
    for layer in (ours, reference):
        layer.build(shape)
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        value = rng.uniform(0.5, 1.5, channels).astype("float32")
        getattr(ours, name).assign(value)
        getattr(reference, name).assign(value)
    return ours, reference


def _inputs(shape, seed=1):
    return np.random.RandomState(seed).normal(2.0, 3.0, shape).astype("float32")


@pytest.mark.parametrize("training", [False, True])
def test_outputs_and_moving_statistics_match_keras(training):
    ours, reference = _pair((4, 6, 6, 8))
    for step in range(3):
        x = _inputs((4, 6, 6, 8), seed=step)
        np.testing.assert_allclose(
            ours(x, training=training), reference(x, training=training), atol=1e-5
        )
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(ours, name), getattr(reference, name), rtol=1e-6)


def test_gradients_match_keras():
    ours, reference = _pair((4, 5, 5, 8))
    x = tf.constant(_inputs((4, 5, 5, 8)))
    weights = tf.constant(_inputs((4, 5, 5, 8), seed=2))
    gradients = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * weights)
        gradients.append(tape.gradient(loss, [x, layer.gamma.value, layer.beta.value]))
    for a, b in zip(*gradients):
        scale = float(np.abs(b).max())
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_bfloat16_policy_keeps_float32_weights():
    layer = BatchNormalization(dtype="mixed_bfloat16")
    y = layer(_inputs((2, 4, 4, 3)), training=True)
    assert y.dtype == "bfloat16"
    assert layer.gamma.dtype == "float32"


def test_other_ranks_fall_back_to_keras():
    ours, reference = _pair((5, 8))
    x = _inputs((5, 8))
    np.testing.assert_allclose(ours(x, training=True), reference(x, training=True), atol=1e-6)


def test_config_round_trip():
    layer = BatchNormalization(momentum=0.97, epsilon=1e-4, name="bn")
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(again, BatchNormalization)
    assert (again.momentum, again.epsilon, again.name) == (0.97, 1e-4, "bn")
