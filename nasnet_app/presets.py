"""The published NASNet-A architectures as typed, frozen records (defined once).

`ModelConfig` holds what defines a network's architecture: genotype, N, P,
stem, widths, BatchNorm settings and its native input size. The three
configurations of the NASNet paper (Mobile 4 @ 1056, Large 6 @ 4032, CIFAR
6 @ 768) live here; `NASNetMobile/Large/CIFAR`, the zoo's pretrained presets
(`nasnet_app.zoo.presets`, which add weights, labels and preprocessing) and
the search's proxy children all derive from these records.

`Preprocessing` holds how a preset's raw images become its input (the
arguments of `NASNetImageConverter`); `IMAGENET_PREPROCESSING` is TF-Slim's
ImageNet evaluation (the zoo's ImageNet presets).

`KERAS_WEIGHT_FILES` lists the official keras-applications `.h5` files of
Mobile and Large (URL and MD5, as keras.applications names them), used by
`NASNetMobile(weights="imagenet")` and by the zoo.

Example:

>>> from nasnet_app.presets import ARCHITECTURES
>>> ARCHITECTURES["mobile"].penultimate_filters
1056
>>> ARCHITECTURES["mobile"].replace(num_blocks=2).num_blocks
2
"""

import dataclasses

from nasnet_app.genotype import Genotype

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"


def record_from_dict(cls, data, what):
    """`cls(**data)` for a frozen record, naming unknown fields (`what` names the argument)."""
    if not isinstance(data, dict):
        raise ValueError(f"`{what}` must be a dict. Received: {what}={data!r}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(
            f"`{what}` must only have the fields {', '.join(sorted(fields))}. "
            f"Received unknown fields: {unknown}"
        )
    missing = [f.name for f in dataclasses.fields(cls) if _required(f) and f.name not in data]
    if missing:
        raise ValueError(f"`{what}` must have the fields {missing}. Received: {what}={data!r}")
    return cls(**data)


def _required(field):
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A NASNet architecture (see `nasnet_app.NASNetBackbone` for each field)."""

    name: str
    genotype: str | dict = "nasnet_a"
    num_blocks: int = 4
    penultimate_filters: int = 1056
    stem: str = "imagenet"
    stem_filters: int = 32
    filter_multiplier: int = 2
    skip_reduction: bool = False
    default_size: int = 224
    drop_path_keep_prob: float = 1.0
    aux_head: bool = False
    bn_momentum: float = 0.9997
    bn_epsilon: float = 1e-3

    def replace(self, **changes):
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def backbone_kwargs(self):
        """`NASNetBackbone` arguments (the input shape is the native size)."""
        genotype = self.genotype
        if isinstance(genotype, Genotype):
            genotype = genotype.to_dict()
        return {
            "genotype": genotype,
            "num_blocks": self.num_blocks,
            "penultimate_filters": self.penultimate_filters,
            "stem": self.stem,
            "stem_filters": self.stem_filters,
            "filter_multiplier": self.filter_multiplier,
            "skip_reduction": self.skip_reduction,
            "input_shape": (self.default_size, self.default_size, 3),
            "drop_path_keep_prob": self.drop_path_keep_prob,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
        }

    def model_kwargs(self):
        """`nasnet_app.NASNet` arguments (backbone ones plus the auxiliary head)."""
        return {**self.backbone_kwargs(), "aux_head": self.aux_head}

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return record_from_dict(cls, data, "config")


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One downloadable file: where it is, its name in the cache and its hashes."""

    url: str | None
    file_name: str
    md5: str | None = None
    sha256: str | None = None
    path: str | None = None  # a file that ships with the package


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How raw images become a network's input: `NASNetImageConverter`'s arguments
    other than the size (see `nasnet_app.preprocessing` for each field)."""

    crop_fraction: float = 1.0
    resize: str = "crop"
    antialias: bool = True
    value_range: tuple[float, float] | None = (-1.0, 1.0)

    def __post_init__(self):
        if self.value_range is not None:
            object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))

    def converter(self, image_size):
        """The `NASNetImageConverter` for inputs of `image_size` `(height, width)`."""
        from nasnet_app.preprocessing import NASNetImageConverter

        return NASNetImageConverter(tuple(image_size), **self.to_dict(), name="preprocessor")

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["value_range"] = None if self.value_range is None else list(self.value_range)
        return data

    @classmethod
    def from_dict(cls, data):
        return record_from_dict(cls, data, "preprocessing")


# TF-Slim's inception evaluation: the central 87.5 %, stretched to the input size
# (bilinear, no antialias), [0, 255] mapped to [-1, 1].
IMAGENET_PREPROCESSING = Preprocessing(crop_fraction=0.875, resize="stretch", antialias=False)

MOBILE = ModelConfig("mobile", num_blocks=4, penultimate_filters=1056, stem_filters=32)
LARGE = ModelConfig(
    "large", num_blocks=6, penultimate_filters=4032, stem_filters=96, skip_reduction=True,
    default_size=331,
)  # fmt: skip
# TF-Slim's CIFAR settings: drop path 0.6, the auxiliary head, BN momentum 0.9.
CIFAR = ModelConfig(
    "cifar", num_blocks=6, penultimate_filters=768, stem="cifar", stem_filters=96,
    default_size=32, drop_path_keep_prob=0.6, aux_head=True, bn_momentum=0.9, bn_epsilon=1e-5,
)  # fmt: skip
ARCHITECTURES = {config.name: config for config in (MOBILE, LARGE, CIFAR)}


def _keras_file(file_name, md5):
    return WeightFile(KERAS_BASE_URL + file_name, file_name, md5=md5)


KERAS_WEIGHT_FILES = {
    "mobile": {
        "top": _keras_file("NASNet-mobile.h5", "020fb642bf7360b370c678b08e0adf61"),
        "no_top": _keras_file("NASNet-mobile-no-top.h5", "1ed92395b5b598bdda52abe5c0dbfd63"),
    },
    "large": {
        "top": _keras_file("NASNet-large.h5", "11577c9a518f0070763c2b964a382f17"),
        "no_top": _keras_file("NASNet-large-no-top.h5", "d81d89dc07e6e56530c4e77faddd61b5"),
    },
}


def child_architecture(genotype, num_blocks=1, filters=8, stem_filters=None):
    """The search's proxy child: the CIFAR stem and `num_blocks` cells per stack whose
    first stack has `filters` filters (doubled at each reduction), as a `ModelConfig`."""
    from nasnet_app.cells import cell_output_channels
    from nasnet_app.genotype import resolve_genotype

    genotype = resolve_genotype(genotype)
    multiplier = CIFAR.filter_multiplier
    return CIFAR.replace(
        name="child",
        genotype=genotype.to_dict(),
        num_blocks=num_blocks,
        penultimate_filters=cell_output_channels(genotype.normal, filters) * multiplier**2,
        stem_filters=stem_filters or 3 * filters,
        drop_path_keep_prob=1.0,
        aux_head=False,
    )


def get_architecture(value):
    """A `ModelConfig` from itself, the name of a published one, or a record holding one
    as `architecture` (a `nasnet_app.zoo` preset; the core never imports the zoo)."""
    if isinstance(value, ModelConfig):
        return value
    if isinstance(getattr(value, "architecture", None), ModelConfig):
        return value.architecture
    if not isinstance(value, str) or value not in ARCHITECTURES:
        raise ValueError(
            f"`preset` must be a ModelConfig, a zoo preset record or one of "
            f"{', '.join(ARCHITECTURES)}. Received: preset={value!r} (pretrained zoo presets "
            "by name: nasnet_app.zoo.load(name) or nasnet_app.zoo.get_preset(name))"
        )
    return ARCHITECTURES[value]
