"""keras-hub style test helpers: one call checks a backbone, a task or a preset end to end.

Tiny configurations keep each call to seconds; every registered preset goes
through `run_preset_test` (see tests/test_zoo_presets.py).
"""

import keras
import numpy as np

# The smallest honest NASNet: 1 cell per stack, 32 px, few filters.
TINY_BACKBONE = dict(
    genotype="nasnet_a",
    num_blocks=1,
    penultimate_filters=48,
    stem="cifar",
    stem_filters=12,
    input_shape=(32, 32, 3),
)


def random_images(n=2, size=32, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def run_backbone_test(cls, init_kwargs, input_data, expected_output_shape, tmp_path=None):
    """Builds `cls(**init_kwargs)` and checks what every backbone must do.

    Output shape; the functional graph (`inputs`, `outputs`, `get_layer(...).output`
    of every feature output, a feature extractor made with `keras.Model`); the
    config round trip; a `.keras` round trip with identical outputs (if
    `tmp_path`); every weight under a stable key.
    """
    backbone = cls(**init_kwargs)
    output = backbone.predict(input_data, verbose=0)
    assert output.shape == expected_output_shape, output.shape
    assert backbone.inputs and backbone.outputs
    names = list(backbone.feature_outputs)
    extractor = keras.Model(backbone.inputs, [backbone.feature_outputs[n] for n in names])
    features = extractor.predict(input_data, verbose=0)
    assert len(features) == len(names)
    for plan in backbone.plans:
        assert tuple(backbone.get_layer(plan.name).output.shape)[-1] == plan.out_channels
    clone = cls.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    assert clone.count_params() == backbone.count_params()
    assert len(backbone.weight_map()) == len(backbone.weights)
    if tmp_path is not None:
        _check_keras_round_trip(backbone, input_data, tmp_path)
    return backbone


def run_task_test(task, input_data, labels, tmp_path=None):
    """Fits a task for one step, checks predict shapes and the `.keras` round trip."""
    task.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = task.fit(input_data, labels, epochs=1, batch_size=len(labels), verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    output = task.predict(input_data, verbose=0)
    assert output.shape == (len(input_data), task.num_classes)
    if tmp_path is not None:
        _check_keras_round_trip(task, input_data, tmp_path)
    return task


def _check_keras_round_trip(model, input_data, tmp_path):
    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(
        loaded.predict(input_data, verbose=0), model.predict(input_data, verbose=0)
    )
