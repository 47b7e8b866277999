"""The preset registry: pretrained networks as typed, frozen records, defined once.

A `Preset` names everything needed to rebuild and use a network: its
architecture (a `nasnet_app.presets.ModelConfig`, derived from the published
`ARCHITECTURES`), the input size and preprocessing (the arguments of
`NASNetImageConverter`), the classes and their labels, the parameter count,
the published accuracy and its `WeightSource`s. Records come from three places:

* the built-in ImageNet presets (`nasnet_a_mobile_imagenet`,
  `nasnet_a_large_imagenet`) with the official keras-applications `.h5` files
  and the official TF-Slim archives as weight sources;
* the project's own checkpoints, listed in `checkpoints/manifest.json` (one
  `Preset.to_dict()` per entry, file paths relative to the manifest);
* `register_preset` / `preset_from_genotype` at run time.

Nothing is registered when a module is imported: the registry fills itself on
first use (`list_presets`, `get_preset`, `register_preset`), reading the
manifest then. Detector presets (`task="object_detection"`, such as those of
`nasnet_app.zoo.detection`) live in the same registry; `list_presets(task)`
filters by task.

Both ImageNet presets cover the model with and without its top layer: pass
`include_top` to `nasnet_app.zoo.load`; the sources list one file per case.

Example:

>>> from nasnet_app.zoo import presets
>>> "nasnet_a_mobile_imagenet" in presets.list_presets()
True
>>> preset = presets.get_preset("nasnet_a_mobile_imagenet")
>>> preset.input_size, preset.architecture.num_blocks, preset.preprocessing.crop_fraction
((224, 224), 4, 0.875)
"""

import dataclasses
import json
import os
import types

from nasnet_app import catalogue
from nasnet_app.genotype import resolve_genotype
from nasnet_app.presets import (
    ARCHITECTURES,
    IMAGENET_PREPROCESSING,
    KERAS_WEIGHT_FILES,
    ModelConfig,
    Preprocessing,
    WeightFile,
    record_from_dict,
)

SLIM_BASE_URL = "https://storage.googleapis.com/download.tensorflow.org/models/"
SLIM_HASH_NOTE = (
    "TF-Slim publishes no hash for its archives; the SHA-256 is recorded in the cache "
    "on first download and checked on every later use."
)
PAPER = (
    "Zoph, Vasudevan, Shlens, Le. Learning Transferable Architectures for Scalable Image "
    "Recognition. CVPR 2018 (Table 2)."
)
CLASSIFICATION = "image_classification"
DETECTION = "object_detection"
TASKS = (CLASSIFICATION, DETECTION)
WEIGHT_FORMATS = ("keras_h5", "slim", "keras", "weights_h5")
# Weights from keras.applications pad stride-2 pools with zeros; TF-Slim's do not.
SOURCE_PADDING = {"keras_h5": "zeros", "slim": "same"}
FILE_KEYS = ("any", "top", "no_top")

__all__ = [
    "Accuracy",
    "ParameterCount",
    "Preprocessing",
    "Preset",
    "WeightSource",
    "get_preset",
    "list_presets",
    "manifest_entry",
    "preset_from_genotype",
    "presets_from_manifest",
    "register_preset",
    "remove_preset",
]


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


def _freeze(value):
    """JSON-like data as read-only mappings and tuples (records stay immutable)."""
    if isinstance(value, (dict, types.MappingProxyType)):
        return types.MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value):
    """The inverse of `_freeze`: plain dicts and lists, for JSON."""
    if isinstance(value, types.MappingProxyType):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


def _set(record, name, value):
    object.__setattr__(record, name, value)


@dataclasses.dataclass(frozen=True)
class ParameterCount:
    """Parameters of the built model, with and without its top layer."""

    include_top: int
    no_top: int


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """A published or measured score (percent for the paper's, a fraction for ours)."""

    dataset: str | None = None
    top1: float | None = None
    top5: float | None = None
    test_images: int | None = None
    measured_by: str | None = None  # the command that measured it (our checkpoints)

    def to_dict(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _weight_file(data, folder=None):
    if isinstance(data, WeightFile):
        return data
    data = {"url": None, **data}
    if not data.get("file_name"):
        data["file_name"] = os.path.basename(data.get("path") or data.get("url") or "")
    if folder and data.get("path") and not os.path.isabs(data["path"]):
        data["path"] = os.path.join(folder, data["path"])
    return record_from_dict(WeightFile, data, "files")


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """Where a preset's weights come from and what they were trained with.

    Args:
        format: `"keras_h5"` (keras.applications), `"slim"` (TF-Slim
            checkpoint), `"keras"` (a whole `.keras` model) or `"weights_h5"`.
        files: `{"any": WeightFile}`, or `{"top": ..., "no_top": ...}` when
            the source ships a file with and one without the top layer.
        strided_pool_padding: the stride-2 pool padding of the trained network
            (default: by format, see `SOURCE_PADDING`).
        classes, label_offset: the head of the stored weights (TF-Slim: 1001
            classes, index 0 the background).
        origin, hash_note: where the source is documented; why it has no hash.
    """

    format: str
    files: dict
    strided_pool_padding: str | None = None
    classes: int | None = None
    label_offset: int = 0
    origin: str = ""
    hash_note: str = ""

    def __post_init__(self):
        if self.format not in WEIGHT_FORMATS:
            _fail("format", f"one of {', '.join(WEIGHT_FORMATS)}", self.format)
        files = dict(self.files)
        if not files or set(files) - set(FILE_KEYS):
            _fail("files", "a dict with the keys 'any', or 'top' and 'no_top'", files)
        _set(self, "files", types.MappingProxyType({k: _weight_file(v) for k, v in files.items()}))
        if self.strided_pool_padding is None:
            _set(self, "strided_pool_padding", SOURCE_PADDING.get(self.format))

    def file(self, include_top=True):
        """The `WeightFile` of the model with (or without) its top layer."""
        if "any" in self.files:
            return self.files["any"]
        return self.files["top" if include_top else "no_top"]

    def to_dict(self):
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["files"] = {key: dataclasses.asdict(entry) for key, entry in self.files.items()}
        return data

    @classmethod
    def from_dict(cls, data, folder=None):
        """A source from its dict form; relative file paths are resolved in `folder`."""
        if isinstance(data, WeightSource):
            return data
        data = dict(data)
        files = data.get("files") or {}
        data["files"] = {key: _weight_file(entry, folder) for key, entry in files.items()}
        return record_from_dict(cls, data, "weights")


def _architecture(value, name, input_size):
    """A `ModelConfig` from itself, an `ARCHITECTURES` name or a dict of fields.

    A dict may name a `"base"` architecture (default `"mobile"`, NASNet's
    defaults) whose fields it overrides.
    """
    if isinstance(value, ModelConfig):
        return value
    if isinstance(value, str):
        if value not in ARCHITECTURES:
            _fail("architecture", f"one of {', '.join(ARCHITECTURES)} or a dict", value)
        return ARCHITECTURES[value]
    fields = dict(value or {})
    base = fields.pop("base", "mobile")
    if base not in ARCHITECTURES:
        _fail("base", f"one of {', '.join(ARCHITECTURES)}", base)
    fields.setdefault("name", name)
    if input_size is not None and input_size[0] == input_size[1]:
        fields.setdefault("default_size", input_size[0])
    return record_from_dict(ModelConfig, {**ARCHITECTURES[base].to_dict(), **fields}, "config")


def _input_size(value):
    size = (value, value) if isinstance(value, int) else value
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(s, int) and s >= 32 for s in size)
    ):
        _fail("input_size", "[height, width], each at least 32", value)
    return tuple(size)


def _record(cls, value, what):
    if value is None or isinstance(value, cls):
        return value
    return record_from_dict(cls, dict(value), what)


def _check_name(name):
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        _fail("name", "a non-empty string of letters, digits and underscores", name)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A pretrained (or trainable) image classifier: architecture, data and weights.

    Args:
        name: the registry name.
        architecture: a `nasnet_app.presets.ModelConfig` (also accepted: an
            `ARCHITECTURES` name, or a dict of its fields with an optional
            `"base"` architecture they override).
        description: free text.
        input_size: `(height, width)` of the model input.
        preprocessing: a `nasnet_app.presets.Preprocessing` (or its dict).
        classes: classes of the top layer.
        labels: `"imagenet"`, the class names in output order, or None.
        label_offset: output columns before the first label (1 when a
            TF-Slim background class is kept).
        parameters: a `ParameterCount` of the built model.
        accuracy: an `Accuracy`.
        weights: `{source name: WeightSource}` (dicts are converted).
        default_weights: the source `weights="pretrained"` loads.
        paper, dataset: where the network and its weights come from.
        trained: free-form training record (command, history, machine).
        task: `"image_classification"`.
    """

    name: str
    architecture: ModelConfig
    description: str = ""
    input_size: tuple = (224, 224)
    preprocessing: Preprocessing = Preprocessing()
    classes: int = 1000
    labels: str | tuple | None = None
    label_offset: int = 0
    parameters: ParameterCount | None = None
    accuracy: Accuracy | None = None
    weights: dict = dataclasses.field(default_factory=dict)
    default_weights: str | None = None
    paper: str = ""
    dataset: str = ""
    trained: dict | None = None
    task: str = CLASSIFICATION

    def __post_init__(self):
        _check_name(self.name)
        if self.task != CLASSIFICATION:
            _fail("task", f"{CLASSIFICATION!r} for a Preset", self.task)
        _set(self, "input_size", _input_size(self.input_size))
        _set(self, "architecture", _architecture(self.architecture, self.name, self.input_size))
        resolve_genotype(self.architecture.genotype)
        _set(self, "preprocessing", _record(Preprocessing, self.preprocessing, "preprocessing"))
        if not isinstance(self.classes, int) or self.classes < 1:
            _fail("classes", "a positive integer", self.classes)
        self._set_labels()
        _set(self, "parameters", _record(ParameterCount, self.parameters, "parameters"))
        _set(self, "accuracy", _record(Accuracy, self.accuracy, "accuracy"))
        sources = {k: WeightSource.from_dict(v) for k, v in dict(self.weights).items()}
        _set(self, "weights", types.MappingProxyType(sources))
        if self.default_weights is not None and self.default_weights not in sources:
            _fail("default_weights", f"None or one of {sorted(sources)}", self.default_weights)
        _set(self, "trained", _freeze(self.trained))

    def _set_labels(self):
        labels = self.labels
        if labels is None or (labels == "imagenet" and self.classes == 1000):
            return
        if isinstance(labels, str) or len(labels) != self.classes:
            _fail("labels", f"None, 'imagenet' (1000 classes) or {self.classes} names", labels)
        _set(self, "labels", _freeze(labels))

    # ------------------------------------------------------------------ derived

    @property
    def genotype(self):
        """The `Genotype` of the architecture."""
        return resolve_genotype(self.architecture.genotype)

    def replace(self, **changes):
        """A copy with some fields changed (dict fields are converted to records)."""
        return dataclasses.replace(self, **changes)

    def weight_source(self, source):
        """The `WeightSource` named `source`."""
        if source not in self.weights:
            raise ValueError(
                f"`source` must be one of {', '.join(self.weights) or '(none)'} for preset "
                f"{self.name!r}. Received: source={source!r}"
            )
        return self.weights[source]

    def weight_file(self, source, include_top=True):
        """The `WeightFile` (URL, cache name, hashes or a shipped path) of a source."""
        return self.weight_source(source).file(include_top)

    def model_kwargs(self, include_top=True, source=None):
        """`nasnet_app.NASNet` arguments for this preset.

        Args:
            include_top: keep the classification layer.
            source: a weight source name; it sets the stride-2 pool padding
                those weights were trained with (for TF-Slim, nothing else:
                the background class is dropped on load).
        """
        kwargs = self.architecture.model_kwargs()
        kwargs.update(
            input_shape=(*self.input_size, 3), include_top=include_top, classes=self.classes
        )
        padding = None if source is None else self.weight_source(source).strided_pool_padding
        if padding is not None:
            kwargs["strided_pool_padding"] = padding
        return kwargs

    def converter(self, image_size=None):
        """The `NASNetImageConverter` of this preset (for `image_size`, default `input_size`)."""
        return self.preprocessing.converter(image_size or self.input_size)

    def class_names(self, classes=None):
        """The labels as `NASNet(class_names=...)` takes them, or None when there are
        none or the model has another number of classes (`classes`, default the preset's)."""
        if self.labels is None or (classes or self.classes) != self.classes:
            return None
        if self.labels == "imagenet":
            from nasnet_app.classifier import imagenet_labels

            return [list(pair) for pair in imagenet_labels()]
        return _thaw(self.labels)

    def load(self, weights=None, **kwargs):
        """`nasnet_app.zoo.load(self, weights, **kwargs)` (what core `from_preset` calls)."""
        from nasnet_app.zoo.api import load

        return load(self, weights, **kwargs)

    # ------------------------------------------------------------------ dict form

    def to_dict(self):
        """A JSON-ready dict (the `checkpoints/manifest.json` entry and `zoo list --json`)."""
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "architecture": self.architecture.to_dict(),
            "input_size": list(self.input_size),
            "preprocessing": self.preprocessing.to_dict(),
            "classes": self.classes,
            "labels": _thaw(self.labels),
            "label_offset": self.label_offset,
            "parameters": None if self.parameters is None else dataclasses.asdict(self.parameters),
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "weights": {name: source.to_dict() for name, source in self.weights.items()},
            "default_weights": self.default_weights,
            "paper": self.paper,
            "dataset": self.dataset,
            "trained": _thaw(self.trained),
        }

    @classmethod
    def from_dict(cls, data, folder=None):
        """A preset from `to_dict()`'s form; relative weight paths are resolved in `folder`."""
        data = dict(data)
        sources = data.get("weights") or {}
        data["weights"] = {k: WeightSource.from_dict(v, folder) for k, v in sources.items()}
        return record_from_dict(cls, data, "preset")


# ---------------------------------------------------------------------- built-in presets


def _imagenet_preset(architecture, description, parameters, accuracy, archive):
    keras_files = KERAS_WEIGHT_FILES[architecture.name]
    size = architecture.default_size
    sources = {
        "keras": WeightSource(
            "keras_h5",
            dict(keras_files),
            classes=1000,
            origin="keras/src/applications/nasnet.py",
        ),
        "slim": WeightSource(
            "slim",
            {"any": WeightFile(SLIM_BASE_URL + archive, archive)},
            classes=1001,
            label_offset=1,
            origin="tensorflow/models research/slim (nets/nasnet)",
            hash_note=SLIM_HASH_NOTE,
        ),
    }
    return Preset(
        name=f"nasnet_a_{architecture.name}_imagenet",
        architecture=architecture,
        description=description,
        input_size=(size, size),
        preprocessing=IMAGENET_PREPROCESSING,
        classes=1000,
        labels="imagenet",
        parameters=parameters,
        accuracy=accuracy,
        weights=sources,
        default_weights="keras",
        paper=PAPER,
        dataset="imagenet",
    )


def imagenet_presets():
    """The built-in ImageNet presets, over `ARCHITECTURES["mobile"]` and `["large"]`."""
    mobile = _imagenet_preset(
        ARCHITECTURES["mobile"],
        "NASNet-A Mobile (4 @ 1056), ImageNet, 224x224",
        ParameterCount(include_top=5_326_716, no_top=4_269_716),
        Accuracy("imagenet", top1=74.0, top5=91.6),
        "nasnet-a_mobile_04_10_2017.tar.gz",
    )
    large = _imagenet_preset(
        ARCHITECTURES["large"],
        "NASNet-A Large (6 @ 4032), ImageNet, 331x331",
        ParameterCount(include_top=88_949_818, no_top=84_916_818),
        Accuracy("imagenet", top1=82.7, top5=96.2),
        "nasnet-a_large_04_10_2017.tar.gz",
    )
    return [mobile, large]


def detection_presets():
    """The detector records of `nasnet_app.zoo.detection` that carry a `task`."""
    from nasnet_app.zoo import detection

    records = detection.DETECTION_PRESETS.values()
    return [record for record in records if getattr(record, "task", None) == DETECTION]


# ---------------------------------------------------------------------- manifest


def manifest_path():
    """`checkpoints/manifest.json` of the installed package."""
    from nasnet_app import checkpoints

    return os.path.join(os.path.dirname(checkpoints.__file__), "manifest.json")


def presets_from_manifest(path):
    """The presets of the project's own checkpoints listed in a manifest file.

    The manifest maps a preset name to its `Preset.to_dict()` form (without
    `name`); weight file paths are relative to the manifest, or a `url`
    gives a download.
    """
    with open(path, encoding="utf-8") as handle:
        try:
            manifest = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"Invalid checkpoint manifest {path}: {error}") from None
    folder = os.path.dirname(os.path.abspath(path))
    presets = {}
    for name, entry in manifest.items():
        if not isinstance(entry, dict):
            raise ValueError(
                f"Checkpoint manifest entry {name!r} must be a dict. Received: {entry!r}"
            )
        try:
            presets[name] = Preset.from_dict({**entry, "name": name}, folder)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Invalid checkpoint manifest {path}, entry {name!r}: {error}"
            ) from None
    return presets


def manifest_entry(preset, folder):
    """The manifest form of a preset: `to_dict()` without the name, paths relative to `folder`."""
    entry = preset.to_dict()
    del entry["name"]
    for source in entry["weights"].values():
        for file in source["files"].values():
            if file.get("path"):
                file["path"] = os.path.relpath(file["path"], folder)
    return entry


# ---------------------------------------------------------------------- the registry

_REGISTRY = {}


def _ensure_loaded():
    """Fills the registry on first use: the built-in records, then the manifest's."""
    if _REGISTRY:
        return
    records = [*imagenet_presets(), *detection_presets()]
    path = manifest_path()
    if os.path.exists(path):
        records.extend(presets_from_manifest(path).values())
    _REGISTRY.update({record.name: record for record in records})


def _check_record(record):
    if isinstance(record, Preset):
        return
    if getattr(record, "task", None) not in TASKS or not hasattr(record, "name"):
        raise ValueError(
            f"`preset` must be a Preset or a record with a `name` and a `task` in {TASKS}. "
            f"Received: preset={record!r}"
        )
    _check_name(record.name)


def register_preset(preset, overwrite=False):
    """Adds a record to the registry and returns its name.

    Args:
        preset: a `Preset` (a dict in its `to_dict()` form is converted), or a
            detector record with `name` and `task="object_detection"`.
        overwrite: replace an existing preset of the same name.

    Example:

    >>> from nasnet_app.zoo import presets
    >>> p = presets.preset_from_genotype("tiny_demo", "nasnet_a",
    ...     {"num_blocks": 1, "penultimate_filters": 48, "stem": "cifar",
    ...      "stem_filters": 12}, input_size=32, classes=10, register=False)
    >>> presets.register_preset(p, overwrite=True)
    'tiny_demo'
    >>> presets.remove_preset("tiny_demo")
    """
    if isinstance(preset, dict):
        preset = Preset.from_dict(preset)
    _check_record(preset)
    _ensure_loaded()
    if preset.name in _REGISTRY and not overwrite:
        raise ValueError(
            "`name` must not name an existing preset (pass overwrite=True to replace it). "
            f"Received: name={preset.name!r}"
        )
    _REGISTRY[preset.name] = preset
    return preset.name


def remove_preset(name):
    """Removes a preset from the registry (nothing happens for an unknown name)."""
    _ensure_loaded()
    _REGISTRY.pop(name, None)


def list_presets(task=None):
    """Names of every registered preset (of one `task`, if given), sorted."""
    if task is not None and task not in TASKS:
        _fail("task", f"None or one of {', '.join(TASKS)}", task)
    _ensure_loaded()
    return sorted(name for name, record in _REGISTRY.items() if task in (None, record.task))


def get_preset(name):
    """The record registered as `name` (a `Preset`, or its dict form, is returned as a record)."""
    if isinstance(name, Preset):
        return name
    if isinstance(name, dict):
        return Preset.from_dict(name)
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ValueError(
            f"`preset` must be one of {', '.join(sorted(_REGISTRY))}. Received: preset={name!r}"
        )
    return _REGISTRY[name]


def preset_from_genotype(
    name,
    genotype,
    config=None,
    input_size=32,
    classes=10,
    labels=None,
    preprocessing=None,
    weights=None,
    register=True,
    description="",
):
    """A `Preset` from a genotype (object, dict, catalogue name or JSON file) and a config.

    Args:
        name: preset name.
        genotype: anything `nasnet_app.genotype.resolve_genotype` accepts.
        config: the architecture: a `ModelConfig`, an `ARCHITECTURES` name, or
            a dict of `ModelConfig` fields (over `"base"`, default `"mobile"`,
            i.e. NASNet's defaults); its genotype is replaced by `genotype`.
        input_size: an int or `(height, width)`.
        classes: number of output classes.
        labels: class names (list), `"imagenet"`, or None for bare indices.
        preprocessing: a `Preprocessing` or its dict; by default the central
            crop of the aspect-preserving resize, scaled to [-1, 1].
        weights: optional `{source name: WeightSource or its dict}`.
        register: add the preset to the registry (replacing one of the same name).
        description: free text.
    """
    resolved = resolve_genotype(genotype)
    is_catalogue_name = isinstance(genotype, str) and genotype in catalogue.GENOTYPES
    size = _input_size(input_size)
    architecture = _architecture(config, name, size).replace(
        genotype=genotype if is_catalogue_name else resolved.to_dict()
    )
    preset = Preset(
        name=name,
        architecture=architecture,
        description=description or f"{resolved.name or 'custom'} genotype",
        input_size=size,
        preprocessing=preprocessing or Preprocessing(),
        classes=classes,
        labels=labels,
        weights=weights or {},
    )
    if register:
        register_preset(preset, overwrite=True)
    return preset
