"""The preset registry: pretrained NASNet-A networks described as plain dicts.

A preset names everything needed to rebuild and use a network: the genotype,
the `nasnet_app.NASNet` keyword arguments, the input size and preprocessing,
the classes and their label offset, the parameter count, the published
accuracy and where its weights come from. Presets come from three places:

* the built-in ImageNet entries (`nasnet_a_mobile_imagenet`,
  `nasnet_a_large_imagenet`) with the official keras-applications `.h5` files
  and the official TF-Slim archives as weight sources;
* the project's own checkpoints, listed in `checkpoints/manifest.json`;
* `register_preset` / `preset_from_genotype` at run time.

Both ImageNet entries cover the model with and without its top layer: pass
`include_top` to `nasnet_app.zoo.load`; the sources list one file per case.

Example:

>>> from nasnet_app.zoo import presets
>>> "nasnet_a_mobile_imagenet" in presets.list_presets()
True
>>> presets.get_preset("nasnet_a_mobile_imagenet")["input_size"]
[224, 224]
"""

import copy
import json
import os

from nasnet_app import catalogue
from nasnet_app.genotype import Genotype, resolve_genotype

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"
SLIM_BASE_URL = "https://storage.googleapis.com/download.tensorflow.org/models/"
SLIM_HASH_NOTE = (
    "TF-Slim publishes no hash for its archives; the SHA-256 is recorded in the cache "
    "on first download and checked on every later use."
)
# TF-Slim's inception evaluation preprocessing, which keras.applications' "tf"
# mode shares for the scale: crop the central 87.5 %, resize, map [0, 255] to [-1, 1].
IMAGENET_PREPROCESSING = {
    "central_crop_fraction": 0.875,
    "resize": "bilinear",
    "scale": [-1.0, 1.0],
}
PRESET_KEYS = ("name", "genotype", "config", "input_size", "preprocessing", "classes", "weights")
WEIGHT_FORMATS = ("keras_h5", "slim", "keras", "weights_h5")
# Weights from keras.applications pad stride-2 pools with zeros; TF-Slim's do not.
SOURCE_PADDING = {"keras_h5": "zeros", "slim": "same"}

_REGISTRY = {}


def _keras_file(file_name, md5):
    return {"url": KERAS_BASE_URL + file_name, "file_name": file_name, "md5": md5}


def _imagenet_preset(name, description, size, config, parameters, accuracy, files, archive):
    top, no_top = files
    return {
        "name": name,
        "description": description,
        "genotype": "nasnet_a",
        "config": config,
        "input_size": [size, size],
        "preprocessing": dict(IMAGENET_PREPROCESSING),
        "classes": 1000,
        "labels": "imagenet",
        "label_offset": 0,
        "parameters": parameters,
        "accuracy": accuracy,
        "weights": {
            "keras": {
                "format": "keras_h5",
                "strided_pool_padding": "zeros",
                "classes": 1000,
                "label_offset": 0,
                "files": {"top": top, "no_top": no_top},
                "origin": "keras/src/applications/nasnet.py",
            },
            "slim": {
                "format": "slim",
                "strided_pool_padding": "same",
                "classes": 1001,
                "label_offset": 1,
                "files": {
                    "any": {
                        "url": SLIM_BASE_URL + archive,
                        "file_name": archive,
                        "md5": None,
                        "sha256": None,
                    }
                },
                "hash_note": SLIM_HASH_NOTE,
                "origin": "tensorflow/models research/slim (nets/nasnet)",
            },
        },
        "default_weights": "keras",
        "paper": "Zoph, Vasudevan, Shlens, Le. Learning Transferable Architectures for "
        "Scalable Image Recognition. CVPR 2018 (Table 2).",
    }


def _builtin_presets():
    mobile = _imagenet_preset(
        "nasnet_a_mobile_imagenet",
        "NASNet-A Mobile (4 @ 1056), ImageNet, 224x224",
        224,
        {
            "num_blocks": 4,
            "penultimate_filters": 1056,
            "stem": "imagenet",
            "stem_filters": 32,
            "filter_multiplier": 2,
            "skip_reduction": False,
            "bn_momentum": 0.9997,
            "bn_epsilon": 1e-3,
        },
        {"include_top": 5_326_716, "no_top": 4_269_716},
        {"dataset": "imagenet", "top1": 74.0, "top5": 91.6},
        (
            _keras_file("NASNet-mobile.h5", "020fb642bf7360b370c678b08e0adf61"),
            _keras_file("NASNet-mobile-no-top.h5", "1ed92395b5b598bdda52abe5c0dbfd63"),
        ),
        "nasnet-a_mobile_04_10_2017.tar.gz",
    )
    large = _imagenet_preset(
        "nasnet_a_large_imagenet",
        "NASNet-A Large (6 @ 4032), ImageNet, 331x331",
        331,
        {
            "num_blocks": 6,
            "penultimate_filters": 4032,
            "stem": "imagenet",
            "stem_filters": 96,
            "filter_multiplier": 2,
            "skip_reduction": True,
            "bn_momentum": 0.9997,
            "bn_epsilon": 1e-3,
        },
        {"include_top": 88_949_818, "no_top": 84_916_818},
        {"dataset": "imagenet", "top1": 82.7, "top5": 96.2},
        (
            _keras_file("NASNet-large.h5", "11577c9a518f0070763c2b964a382f17"),
            _keras_file("NASNet-large-no-top.h5", "d81d89dc07e6e56530c4e77faddd61b5"),
        ),
        "nasnet-a_large_04_10_2017.tar.gz",
    )
    return {preset["name"]: preset for preset in (mobile, large)}


def _check_name(name):
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        raise ValueError(
            f"`name` must be a non-empty string of letters, digits and underscores. "
            f"Received: name={name!r}"
        )


def validate_preset(preset):
    """Checks a preset dict; raises a ValueError naming the first problem."""
    if not isinstance(preset, dict):
        raise ValueError(f"`preset` must be a dict. Received: preset={preset!r}")
    missing = [key for key in PRESET_KEYS if key not in preset]
    if missing:
        raise ValueError(
            f"`preset` must have the keys {', '.join(PRESET_KEYS)}. "
            f"Received a preset without {missing}"
        )
    _check_name(preset["name"])
    resolve_genotype(preset["genotype"])
    if not isinstance(preset["config"], dict):
        raise ValueError(f"`config` must be a dict. Received: config={preset['config']!r}")
    size = preset["input_size"]
    if not isinstance(size, (list, tuple)) or len(size) != 2 or min(size) < 32:
        raise ValueError(
            f"`input_size` must be [height, width], each at least 32. Received: input_size={size!r}"
        )
    for source_name, source in preset["weights"].items():
        if source.get("format") not in WEIGHT_FORMATS:
            raise ValueError(
                f"`weights[{source_name!r}]['format']` must be one of {WEIGHT_FORMATS}. "
                f"Received: {source.get('format')!r}"
            )
    return preset


def register_preset(preset, overwrite=False):
    """Adds a preset dict to the registry and returns its name.

    Args:
        preset: a dict with at least the keys in `PRESET_KEYS`.
        overwrite: replace an existing preset of the same name.

    Example:

    >>> from nasnet_app.zoo import presets
    >>> p = presets.preset_from_genotype("tiny_demo", "nasnet_a",
    ...     {"num_blocks": 1, "penultimate_filters": 48, "stem": "cifar",
    ...      "stem_filters": 12}, input_size=32, classes=10, register=False)
    >>> presets.register_preset(p, overwrite=True)
    'tiny_demo'
    """
    validate_preset(preset)
    name = preset["name"]
    _load_builtins()
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"`name` must not name an existing preset (pass overwrite=True to replace it). "
            f"Received: name={name!r}"
        )
    _REGISTRY[name] = copy.deepcopy(preset)
    return name


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
    """Makes a preset from a genotype (object, dict, catalogue name or JSON file) and a config.

    Args:
        name: preset name.
        genotype: anything `nasnet_app.genotype.resolve_genotype` accepts.
        config: `nasnet_app.NASNet` keyword arguments (architecture only).
        input_size: an int or `[height, width]`.
        classes: number of output classes.
        labels: class names (list), `"imagenet"`, or None for bare indices.
        preprocessing: dict as in `IMAGENET_PREPROCESSING`; by default scale
            to [-1, 1] without a crop.
        weights: optional dict of weight sources (see the ImageNet presets).
        register: add the preset to the registry (replacing one of the same name).
        description: free text.

    Returns:
        The preset dict.
    """
    resolved = resolve_genotype(genotype)
    is_catalogue_name = isinstance(genotype, str) and genotype in catalogue.GENOTYPES
    size = [input_size, input_size] if isinstance(input_size, int) else list(input_size)
    preset = {
        "name": name,
        "description": description or f"{resolved.name or 'custom'} genotype",
        "genotype": genotype if is_catalogue_name else resolved.to_dict(),
        "config": dict(config or {}),
        "input_size": size,
        "preprocessing": preprocessing or {"central_crop_fraction": 1.0, "scale": [-1.0, 1.0]},
        "classes": classes,
        "labels": labels,
        "label_offset": 0,
        "weights": weights or {},
    }
    if register:
        register_preset(preset, overwrite=True)
    return validate_preset(preset)


def manifest_path():
    """`checkpoints/manifest.json` of the installed package."""
    from nasnet_app import checkpoints

    return os.path.join(os.path.dirname(checkpoints.__file__), "manifest.json")


def presets_from_manifest(path):
    """Presets for the project's own checkpoints listed in a manifest file.

    The manifest maps a preset name to `{file, sha256, genotype, config,
    input_size, classes, accuracy, ...}`; `file` is relative to the manifest
    (a `.keras` model or `.weights.h5` weights), or `url` gives a download.
    """
    with open(path, encoding="utf-8") as handle:
        try:
            manifest = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"Invalid checkpoint manifest {path}: {error}") from None
    folder = os.path.dirname(os.path.abspath(path))
    return {name: _manifest_entry(name, entry, folder) for name, entry in manifest.items()}


def _manifest_entry(name, entry, folder):
    if not isinstance(entry, dict) or ("file" not in entry and "url" not in entry):
        raise ValueError(
            f"Checkpoint manifest entry {name!r} must be a dict with a `file` or `url`. "
            f"Received: {entry!r}"
        )
    file_name = entry.get("file") or entry["url"].rsplit("/", 1)[-1]
    source = {
        "format": "weights_h5" if file_name.endswith(".weights.h5") else "keras",
        "files": {
            "any": {
                "path": os.path.join(folder, entry["file"]) if "file" in entry else None,
                "url": entry.get("url"),
                "file_name": file_name,
                "sha256": entry.get("sha256"),
            }
        },
    }
    preset = preset_from_genotype(
        name,
        entry.get("genotype", "nasnet_a"),
        entry.get("config"),
        input_size=entry.get("input_size", 32),
        classes=entry.get("classes", 10),
        labels=entry.get("labels"),
        preprocessing=entry.get("preprocessing"),
        weights={"project": source},
        register=False,
        description=entry.get("description", ""),
    )
    for key in ("accuracy", "parameters", "dataset", "trained"):
        if key in entry:
            preset[key] = entry[key]
    preset["default_weights"] = "project"
    return preset


def _load_builtins():
    if _REGISTRY:
        return
    _REGISTRY.update(_builtin_presets())
    path = manifest_path()
    if os.path.exists(path):
        _REGISTRY.update(presets_from_manifest(path))


def list_presets():
    """Names of every registered preset, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_preset(name):
    """A copy of the preset `name` (a preset dict is returned as given, after checks)."""
    if isinstance(name, dict):
        return validate_preset(copy.deepcopy(name))
    _load_builtins()
    if name not in _REGISTRY:
        raise ValueError(
            f"`preset` must be one of {', '.join(sorted(_REGISTRY))}. Received: preset={name!r}"
        )
    return copy.deepcopy(_REGISTRY[name])


def genotype_of(preset):
    """The `Genotype` a preset names."""
    value = preset["genotype"]
    return value if isinstance(value, Genotype) else resolve_genotype(value)


def model_config(preset, include_top=True, source=None, **overrides):
    """`nasnet_app.NASNet` keyword arguments for a preset.

    Args:
        preset: a preset dict.
        include_top: keep the classification layer.
        source: name of a weight source in `preset["weights"]`; it sets the
            stride-2 pool padding those weights were trained with and, for
            TF-Slim, nothing else (the background class is dropped on load).
        **overrides: any other NASNet argument (`input_shape`, `classes`, ...).
    """
    config = dict(preset["config"])
    config["genotype"] = preset["genotype"]
    config["include_top"] = include_top
    config["classes"] = preset["classes"]
    config["input_shape"] = tuple(preset["input_size"]) + (3,)
    if source is not None:
        weights = preset["weights"][source]
        padding = weights.get("strided_pool_padding") or SOURCE_PADDING.get(weights["format"])
        if padding is not None:
            config["strided_pool_padding"] = padding
    config.update(overrides)
    return config


def source_file(preset, source, include_top=True):
    """The file entry (`url`, `file_name`, hashes or `path`) of a weight source."""
    if source not in preset["weights"]:
        raise ValueError(
            f"`source` must be one of {', '.join(preset['weights']) or '(none)'} for preset "
            f"{preset['name']!r}. Received: source={source!r}"
        )
    files = preset["weights"][source]["files"]
    if "any" in files:
        return files["any"]
    return files["top" if include_top else "no_top"]
