import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import nasnet_app
from nasnet_app.catalogue import GENOTYPES
from tests.conftest import TINY


def tiny(**overrides):
    return nasnet_app.NASNet(**{**TINY, **overrides})


def images(n=2, size=32, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def test_forward_shapes_and_softmax():
    model = tiny()
    out = model.predict(images(), verbose=0)
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_every_catalogue_genotype_builds_and_runs(name):
    genotype = GENOTYPES[name]
    outputs = len(genotype.normal.output_indices())
    model = nasnet_app.NASNet(genotype, **{**TINY, "penultimate_filters": outputs * 4 * 2})
    assert np.isfinite(model.predict(images(1), verbose=0)).all()


def test_imagenet_stem_any_size_and_dynamic_shape():
    model = nasnet_app.NASNet(
        num_blocks=1, penultimate_filters=96, stem_filters=8, input_shape=(None, None, 3),
        include_top=False, pooling="avg",
    )  # fmt: skip
    for size in (32, 47, 64):
        assert model.predict(images(1, size), verbose=0).shape == (1, 96)


def test_include_top_false_returns_feature_map():
    model = tiny(include_top=False)
    assert model.predict(images(1), verbose=0).shape == (1, 8, 8, 48)


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = tiny(aux_head=True, drop_path_keep_prob=0.7, classifier_activation=None)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, nasnet_app.NASNet)
    assert loaded.genotype == model.genotype
    np.testing.assert_array_equal(
        loaded.predict(images(), verbose=0), model.predict(images(), verbose=0)
    )


def test_config_round_trip():
    model = tiny(genotype="darts_v2", penultimate_filters=64, dropout=0.2)
    clone = nasnet_app.NASNet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()


def test_drop_path_only_while_training():
    model = tiny(drop_path_keep_prob=0.5, seed=1)
    x = images()
    inference = [model(x, training=False).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*inference)
    training = [model(x, training=True).numpy() for _ in range(2)]
    assert not np.allclose(*training)


def test_drop_path_ramps_with_training_progress():
    model = tiny(drop_path_keep_prob=0.5, drop_path_total_steps=100)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert float(model._drop_path_progress(True)) == 0.0
    model.optimizer.iterations.assign(50)
    assert float(model._drop_path_progress(True)) == pytest.approx(0.5)
    model.optimizer.iterations.assign(500)
    assert float(model._drop_path_progress(True)) == 1.0


def test_fit_with_aux_head_and_drop_path_schedule():
    model = tiny(aux_head=True, drop_path_keep_prob=0.8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    labels = np.array([0, 1, 2, 3])
    history = model.fit(
        images(4), labels, epochs=2, batch_size=2, verbose=0,
        callbacks=[nasnet_app.DropPathSchedule()],
    )  # fmt: skip
    assert model.drop_path_total_steps == 4
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(images(1), verbose=0).shape == (1, 10)


def test_endpoints_have_slim_names():
    model = tiny(classifier_activation=None)
    points = model.endpoints(images(1))
    expected = ["Stem", "Cell_0", "Reduction_Cell_0", "Cell_1", "Reduction_Cell_1", "Cell_2"]
    assert list(points)[:6] == expected
    # Eager endpoints and the traced predict sum in different orders: a logit near zero
    # differs by ~5e-8, so the tolerance needs an absolute part.
    logits = model.predict(images(1), verbose=0)
    np.testing.assert_allclose(points["Logits"], logits, rtol=1e-5, atol=1e-6)


def test_weight_map_keys_are_stable_and_cover_every_weight():
    model = tiny()
    keys = model.weight_map()
    assert len(keys) == len(model.weights)
    assert "cell_0/block0/left/sep_conv_5x5/sep1/depthwise_kernel" in keys
    assert "reduction_cell_1/block3/right/avg_pool_3x3/proj_conv/kernel" not in keys


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(num_blocks=0), "num_blocks"),
        (dict(stem="mnist"), "stem"),
        (dict(pooling="median"), "pooling"),
        (dict(penultimate_filters=50), "penultimate_filters"),
        (dict(input_shape=(16, 16, 3)), "input_shape"),
        (dict(input_shape=(32, 32)), "input_shape"),
        (dict(drop_path_keep_prob=0.0), "drop_path_keep_prob"),
        (dict(strided_pool_padding="reflect"), "strided_pool_padding"),
        (dict(genotype="nasnet_z"), "genotype"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        tiny(**kwargs)


def test_published_parameter_counts():
    assert nasnet_app.NASNetMobile().count_params() == 5_326_716
    assert nasnet_app.NASNetMobile(include_top=False).count_params() == 4_269_716


@pytest.mark.slow
def test_large_parameter_count():
    assert nasnet_app.NASNetLarge().count_params() == 88_949_818


@pytest.mark.slow
def test_trains_under_mirrored_strategy_on_two_logical_cpus():
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import nasnet_app
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            model = nasnet_app.NASNet(num_blocks=1, penultimate_filters=48, stem="cifar",
                stem_filters=12, input_shape=(32, 32, 3), classes=10, aux_head=True,
                drop_path_keep_prob=0.8)
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        x = np.random.uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
        y = np.arange(8) % 10
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        print("OK", strategy.num_replicas_in_sync)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK 2" in result.stdout


def test_xla_off_by_default_on_cpu_and_keras_file_keeps_optimizer(tmp_path):
    model = tiny()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert model.jit_compile is False  # no GPU here: "auto" must not pick XLA
    model.fit(images(4), np.arange(4), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.compiled and int(loaded.optimizer.iterations.numpy()) == 1
