"""keras-hub style test helpers: one call checks a backbone, a task or a preset end to end.

Tiny configurations keep each call to seconds; every registered preset goes
through `run_preset_test` (see tests/test_zoo_presets.py): its record is frozen
and survives its dict form, its converter is the preset's preprocessing, its
architecture builds at a tiny width, and (with `full_build`) the real network
has the parameter count the record states.
"""

import dataclasses
import json

import keras
import numpy as np
import pytest

import nasnet_app
from nasnet_app.cells import cell_output_channels
from nasnet_app.genotype import resolve_genotype
from nasnet_app.presets import ModelConfig
from nasnet_app.zoo import presets

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


# ---------------------------------------------------------------------- presets

PRESET_INPUT = 32
TINY_STEM_FILTERS = 8


def tiny_architecture(architecture):
    """The same genotype, stem and BatchNorm settings at the smallest width and depth."""
    multiplier = architecture.filter_multiplier
    outputs = cell_output_channels(resolve_genotype(architecture.genotype).normal, 1)
    # F = 2 * m**2 keeps the ImageNet stem cells (F / m**2, F / m) at least 2 wide.
    return architecture.replace(
        num_blocks=1,
        penultimate_filters=outputs * multiplier**2 * 2 * multiplier**2,
        stem_filters=TINY_STEM_FILTERS,
        default_size=PRESET_INPUT,
    )


def check_record(preset):
    """Frozen, JSON-ready, and the same record after `to_dict` / `from_dict`."""
    assert isinstance(preset, presets.Preset)
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.classes = 3
    data = json.loads(json.dumps(preset.to_dict()))
    assert presets.Preset.from_dict(data) == preset
    assert isinstance(preset.architecture, ModelConfig)
    for source in preset.weights.values():
        assert source.format in presets.WEIGHT_FORMATS
        for entry in source.files.values():
            assert entry.file_name and (entry.url or entry.path)
    if preset.default_weights is not None:
        assert preset.default_weights in preset.weights


def check_converter(preset):
    converter = preset.converter()
    assert converter.image_size == preset.input_size
    settings = preset.preprocessing
    assert (converter.crop_fraction, converter.resize_mode, converter.antialias) == (
        settings.crop_fraction,
        settings.resize,
        settings.antialias,
    )
    assert converter.value_range == settings.value_range


def check_tiny_build(preset):
    """The preset's model at a tiny width: output shape, converter and class names attached."""
    from nasnet_app import zoo

    tiny = preset.replace(architecture=tiny_architecture(preset.architecture))
    model = zoo.build_model(tiny, input_shape=(PRESET_INPUT, PRESET_INPUT, 3))
    image = np.full((40, 52, 3), 128, "uint8")
    batch = model.preprocessor.convert_images([image])
    assert batch.shape == (1, PRESET_INPUT, PRESET_INPUT, 3)
    assert model(batch).shape == (1, preset.classes)
    if preset.labels is not None:
        assert len(model.class_names) == preset.classes


def check_parameter_count(preset):
    """The real network (at a small input: parameters do not depend on it) against the record."""
    size = min(64, *preset.input_size)
    kwargs = {**preset.model_kwargs(), "input_shape": (size, size, 3)}
    model = nasnet_app.NASNet(**kwargs)
    head = model.weight_map()
    head_size = int(np.prod(head["head/dense/kernel"].shape) + head["head/dense/bias"].shape[0])
    assert model.count_params() == preset.parameters.include_top
    assert model.count_params() - head_size == preset.parameters.no_top


# A detector with the preset's depth at a tenth of its width, on 256 px images.
TINY_DETECTOR = {"num_conv_filters": 8, "image_size": 256, "first_stage_max_proposals": 20}


def check_detection_record(preset):
    """Frozen, JSON-ready, and pointing at its archive."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.name = "renamed"
    data = json.loads(json.dumps(preset.to_dict()))
    assert (data["name"], data["task"]) == (preset.name, presets.DETECTION)
    assert preset.url.endswith("/" + preset.file_name)


def check_tiny_detector(preset):
    from nasnet_app.zoo.detection import load_detector

    detector = load_detector(preset, weights=None, config=TINY_DETECTOR)
    (found,) = detector.predict([np.full((64, 80, 3), 128, "uint8")])
    assert found.boxes.shape[1:] == (4,)
    assert found.boxes.size == 0 or (found.boxes.min() >= 0.0 and found.boxes.max() <= 1.0)


def check_detector_parameter_count(preset):
    """The real detector (at 256 px: parameters do not depend on it) against the record."""
    from nasnet_app.zoo.detection import load_detector

    detector = load_detector(preset, weights=None, config={"image_size": 256})
    assert detector.count_params() == preset.parameters


def parameter_count(preset):
    """The parameter count a record states (with the top layer), or None."""
    count = getattr(preset, "parameters", None)
    return getattr(count, "include_top", count)


def run_preset_test(preset_name, full_build=True):
    """Every check a registered preset must pass (`full_build`: the real parameter count)."""
    preset = presets.get_preset(preset_name)
    if preset.task == presets.DETECTION:
        check_detection_record(preset)
        check_tiny_detector(preset)
        if full_build and preset.parameters is not None:
            check_detector_parameter_count(preset)
        return
    check_record(preset)
    check_converter(preset)
    check_tiny_build(preset)
    if full_build and preset.parameters is not None:
        check_parameter_count(preset)


def load_benchmark(name):
    """A benchmark script of `evaluate/benchmarks/` as a module (they are not installed)."""
    import importlib.util
    import os

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "evaluate",
        "benchmarks",
        f"{name}.py",
    )
    spec = importlib.util.spec_from_file_location(f"benchmarks.{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_folder(root, classes=2, per_class=6, size=32):
    """`root/class_<c>/<i>.png`: random images, `per_class` of each class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def popen_interruptible(argv, **kwargs):
    """`subprocess.Popen(argv)` whose child takes Ctrl-C even when the tests run in the
    background: a shell starts background jobs with SIGINT ignored, and Python keeps an
    ignored SIGINT ignored, so the child would never see the test's SIGINT."""
    import signal
    import subprocess

    def default_sigint():
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(argv, preexec_fn=default_sigint, **kwargs)
