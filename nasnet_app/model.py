"""`NASNet`: one call from a genotype to a classifier (backbone + head), keras.applications style.

`NASNet(genotype, num_blocks=..., include_top=..., classes=...)` builds a
`NASNetBackbone` and wraps it in a `NASNetImageClassifier`, taking the flat
arguments of keras.applications. Its configuration is flat too, so `.keras`
files stay readable; files written by nasnet-app 0.1 (a subclassed `NASNet`)
load through `nasnet_app.legacy`.
"""

import os

import keras

from nasnet_app.backbone import NASNetBackbone, check_input_shape
from nasnet_app.image_classifier import DropPathSchedule, NASNetImageClassifier

FORMAT = "nasnet_app.model/2"
BACKBONE_KEYS = (
    "genotype", "num_blocks", "penultimate_filters", "stem", "stem_filters", "filter_multiplier",
    "skip_reduction", "input_shape", "drop_path_keep_prob", "bn_momentum", "bn_epsilon",
    "strided_pool_padding", "seed",
)  # fmt: skip

CLASSES_FILE = "classes.json"  # written by `nasnet_app.finetune` beside `model.keras`

__all__ = ["NASNet", "DropPathSchedule", "load_model", "model_class_names"]


@keras.saving.register_keras_serializable(package="nasnet_app")
class NASNet(NASNetImageClassifier):
    """A NASNet network generated from a genotype (Zoph et al., 2018).

    Three stacks of `num_blocks` normal cells, with a reduction cell between
    stacks; filters double at each reduction. The stem is either the ImageNet
    stem (3x3/2 conv and two reduction cells) or the CIFAR stem (one 3x3 conv).
    The model is a `NASNetImageClassifier` over a `NASNetBackbone`
    (`model.backbone`).

    Args:
        genotype: a `Genotype`, its dict, a catalogue name (`"nasnet_a"`) or a
            path to a genotype JSON file.
        num_blocks, penultimate_filters, stem, stem_filters, filter_multiplier,
        skip_reduction, input_shape, drop_path_keep_prob, bn_momentum,
        bn_epsilon, strided_pool_padding, seed: see `NASNetBackbone`.
        include_top: whether to end with the classification layer.
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        classes: number of classes of the top layer.
        classifier_activation: activation of the top layer (`None` for logits).
        dropout, aux_head, aux_weight, drop_path_total_steps, preprocessor,
        class_names: see `NASNetImageClassifier`.

    Example:

    >>> import numpy as np, nasnet_app
    >>> model = nasnet_app.NASNet(num_blocks=1, penultimate_filters=48,
    ...     stem="cifar", stem_filters=12, input_shape=(32, 32, 3), classes=10)
    >>> model.predict(np.zeros((1, 32, 32, 3)), verbose=0).shape
    (1, 10)
    """

    def __init__(
        self,
        genotype="nasnet_a",
        num_blocks=4,
        penultimate_filters=1056,
        stem="imagenet",
        stem_filters=32,
        filter_multiplier=2,
        skip_reduction=False,
        # keras.applications' arguments
        include_top=True, input_shape=None, pooling=None, classes=1000,
        classifier_activation="softmax",
        # training
        dropout=0.0, drop_path_keep_prob=1.0, drop_path_total_steps=None, aux_head=False,
        aux_weight=0.4, bn_momentum=0.9997, bn_epsilon=1e-3, strided_pool_padding="same",
        seed=None,
        # images and classes
        preprocessor=None, class_names=None,
        name="nasnet",
        **kwargs,
    ):  # fmt: skip
        kwargs.pop("format", None)
        backbone = NASNetBackbone(
            genotype, num_blocks, penultimate_filters, stem, stem_filters, filter_multiplier,
            skip_reduction, check_input_shape(input_shape), drop_path_keep_prob, bn_momentum,
            bn_epsilon, strided_pool_padding, seed, name=f"{name}_backbone",
        )  # fmt: skip
        super().__init__(
            backbone,
            num_classes=classes if include_top else None,
            pooling=pooling,
            activation=classifier_activation,
            dropout=dropout,
            aux_head=aux_head,
            aux_weight=aux_weight,
            drop_path_total_steps=drop_path_total_steps,
            preprocessor=preprocessor,
            class_names=class_names,
            name=name,
            **kwargs,
        )
        self._include_top, self._classes = include_top, classes

    @property
    def include_top(self):
        return self._include_top

    @property
    def classes(self):
        return self._classes

    def __getattr__(self, name):
        # The architecture fields (num_blocks, stem, ...) read as on the backbone.
        if name in BACKBONE_KEYS and name != "input_shape":
            return getattr(self.backbone, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "format": FORMAT}
        config.update(self.backbone.architecture_config())
        config.update(
            include_top=self.include_top,
            pooling=self.pooling,
            classes=self.classes,
            classifier_activation=keras.activations.serialize(
                keras.activations.get(self.classifier_activation)
            ),
            dropout=self.dropout,
            drop_path_total_steps=self.drop_path_total_steps,
            aux_head=self.aux_head,
            aux_weight=self.aux_weight,
            preprocessor=keras.layers.serialize(self.preprocessor),
            class_names=self.class_names,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("dtype", None)
        if config.get("format") != FORMAT:
            from nasnet_app.legacy import LegacyNASNet

            return LegacyNASNet(config)
        if isinstance(config.get("classifier_activation"), dict):
            activation = keras.activations.deserialize(config["classifier_activation"])
            config["classifier_activation"] = activation
        if isinstance(config.get("preprocessor"), dict):
            config["preprocessor"] = keras.layers.deserialize(config["preprocessor"])
        return cls(**config)


def load_model(path, compile=True):
    """`keras.models.load_model` with a clear error for files that are not `.keras`
    archives, and files of nasnet-app 0.1 upgraded to today's `NASNet`."""
    import zipfile

    from nasnet_app.legacy import LegacyNASNet, upgrade

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`model` file {path!r} does not exist.")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise ValueError(
            f"`model` must be a .keras file saved by Keras 3. Received: model={path!r} "
            "(not a .keras archive)"
        )
    model = keras.models.load_model(path, compile=compile)
    return upgrade(model) if isinstance(model, LegacyNASNet) else model


def model_class_names(model, model_path=None):
    """The class names of a model, by output index, or None.

    From the model itself when it carries them, else from `classes.json` beside
    its file (what `finetune` writes for models that cannot carry names).
    `classify`, `evaluate`, `export` and the reports use this one helper.
    """
    import json

    names = getattr(model, "class_names", None)
    if names:  # names, or (wnid, name) pairs for ImageNet
        return [name if isinstance(name, str) else list(name) for name in names]
    if model_path is None:
        return None
    sidecar = os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_path))), CLASSES_FILE)
    if not os.path.isfile(sidecar):
        return None
    try:
        with open(sidecar, encoding="utf-8") as handle:
            names = json.load(handle)["class_names"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{sidecar} is not a readable classes file: {error}") from None
    return [str(name) for name in names]
