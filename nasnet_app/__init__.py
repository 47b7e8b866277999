"""nasnet-app: NASNet networks built from genotypes, a model zoo and cell search.

The public names load on first use (PEP 562), so that `import nasnet_app` and
`nasnet-app --help` do not start TensorFlow. The Keras classes register as soon
as Keras is imported, so `keras.models.load_model` works after `import nasnet_app`.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.2.0"

# Public name -> the module that defines it (add a new public name here).
_EXPORTS = {
    "NASNET_A": "nasnet_app.genotype",
    "OPS": "nasnet_app.genotype",
    "Block": "nasnet_app.genotype",
    "Cell": "nasnet_app.genotype",
    "Genotype": "nasnet_app.genotype",
    "NASNetCIFAR": "nasnet_app.applications",
    "NASNetLarge": "nasnet_app.applications",
    "NASNetMobile": "nasnet_app.applications",
    "NASNetBackbone": "nasnet_app.backbone",
    "DropPathSchedule": "nasnet_app.image_classifier",
    "NASNetImageClassifier": "nasnet_app.image_classifier",
    "NASNet": "nasnet_app.model",
    "load_model": "nasnet_app.model",
    "NASNetImageConverter": "nasnet_app.preprocessing",
}
_SUBMODULES = ("weights",)
# The modules whose import registers the Keras classes of the core.
_KERAS_MODULES = (
    "nasnet_app.backbone",
    "nasnet_app.image_classifier",
    "nasnet_app.model",
    "nasnet_app.preprocessing",
)

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"nasnet_app.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nasnet_app' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])


def _importing_nasnet_app():
    """Whether a nasnet_app module is mid-import (importing the others now would be circular)."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith("nasnet_app.")
    )


def _register_keras_classes():
    if _importing_nasnet_app():
        return
    for module in _KERAS_MODULES:
        importlib.import_module(module)


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Registers the Keras classes right after `keras` itself has been imported."""

    finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self.finding:
            return None
        self.finding = True
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self.finding = False
        if spec is None or spec.loader is None:
            return spec
        exec_keras = spec.loader.exec_module

        def exec_module(module):
            exec_keras(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _register_keras_classes()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_keras_classes()
elif not any(isinstance(finder, _RegisterWhenKerasLoads) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
