"""Pretrained presets, weight converters and TF-Hub export (`nasnet_app.zoo`).

The core builds architectures (`NASNetBackbone.from_preset("mobile")`,
`NASNetMobile(weights="imagenet")`) and never imports this package; the zoo
adds pretrained presets (`get_preset`, typed frozen records), every weight
format (`load`, `convert`) and export.

Example:

>>> from nasnet_app import zoo
>>> "nasnet_a_large_imagenet" in zoo.list_presets()
True
>>> model = zoo.load("nasnet_a_mobile_imagenet", weights="imagenet")  # doctest: +SKIP
"""

from nasnet_app.zoo.api import (
    build_model,
    convert,
    detect_format,
    fetch_weights,
    load,
    load_classifier,
    save_model,
)
from nasnet_app.zoo.presets import (
    Preset,
    WeightSource,
    get_preset,
    list_presets,
    preset_from_genotype,
    register_preset,
    remove_preset,
)
from nasnet_app.zoo.slim import convert_slim, load_slim_checkpoint, slim_key

_HUB_NAMES = ("export_hub", "export_saved_model", "load_hub", "HubImageModule")


def __getattr__(name):
    # The hub module imports TensorFlow; load it only when it is used.
    if name in _HUB_NAMES:
        from nasnet_app.zoo import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'nasnet_app.zoo' has no attribute {name!r}")


__all__ = [
    "Preset",
    "WeightSource",
    "build_model",
    "convert",
    "convert_slim",
    "detect_format",
    "fetch_weights",
    "get_preset",
    "list_presets",
    "load",
    "load_classifier",
    "load_slim_checkpoint",
    "preset_from_genotype",
    "register_preset",
    "remove_preset",
    "save_model",
    "slim_key",
    *_HUB_NAMES,
]
