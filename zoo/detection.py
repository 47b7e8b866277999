"""The OD API's `faster_rcnn_nas` checkpoints into `nasnet_app.detection.NASNetFasterRCNN`.

The conversion is a set of pure name-map functions on top of the TF-Slim map
(`nasnet_app.zoo.slim.slim_key`):

* `detection_key(name)`: one OD API variable name to the detector's weight
  key: `FirstStageFeatureExtractor/<slim name>` -> `first_stage/<slim key>`,
  `SecondStageFeatureExtractor/<slim name>` -> `second_stage/<slim key>`,
  `Conv` -> `rpn/conv`, `FirstStageBoxPredictor/{BoxEncodingPredictor,
  ClassPredictor}` -> `rpn/{box,class}`, `SecondStageBoxPredictor/...` ->
  `box_head/{box,class}`; `global_step` is ignored;
* `convert_detection(tensors, target_shapes)`: `{key: array}` with shape
  checks; a checkpoint of another architecture or size names the first
  mismatches.

`load_detection_checkpoint(model, path)` reads a checkpoint prefix, a folder
or the `.tar.gz` archive the TF1 detection model zoo ships, and
`load_detector(preset, weights, config)` builds the detector of a preset
(with any config fields overridden) and loads weights into it; `"pretrained"`
downloads the official archive into the cache (same cache, hash and offline
rules as every preset).

Example:

>>> from nasnet_app.zoo.detection import detection_key
>>> detection_key("SecondStageFeatureExtractor/cell_12/1x1/weights")
'second_stage/cell_12/base/conv/kernel'
>>> detection_key("FirstStageBoxPredictor/ClassPredictor/biases")
'rpn/class/bias'
"""

import dataclasses
import os

import numpy as np

from nasnet_app.zoo import slim

STAGE_PREFIXES = {
    "FirstStageFeatureExtractor/": "first_stage/",
    "SecondStageFeatureExtractor/": "second_stage/",
}
HEAD_SCOPES = {
    "Conv": "rpn/conv",
    "FirstStageBoxPredictor/BoxEncodingPredictor": "rpn/box",
    "FirstStageBoxPredictor/ClassPredictor": "rpn/class",
    "SecondStageBoxPredictor/BoxEncodingPredictor": "box_head/box",
    "SecondStageBoxPredictor/ClassPredictor": "box_head/class",
}
HEAD_LEAVES = {"weights": "kernel", "biases": "bias"}
IGNORED = ("global_step",)
TF1_ZOO_URL = "http://download.tensorflow.org/models/object_detection/"
ARCHIVE = "faster_rcnn_nas_coco_2018_01_28.tar.gz"
PRESET_NAME = "faster_rcnn_nasnet_a_coco"


class UnknownDetectionName(ValueError):
    """A checkpoint name that no weight of the detector corresponds to."""


def detection_key(name):
    """The detector weight key of an OD API variable name, or None for names to ignore.

    Raises:
        UnknownDetectionName: the name matches no detector weight.
    """
    if name in IGNORED:
        return None
    for prefix, stage in STAGE_PREFIXES.items():
        if name.startswith(prefix):
            try:
                key = slim.slim_key(name[len(prefix) :])
            except slim.UnknownSlimName:
                raise UnknownDetectionName(name) from None
            if key is None:
                raise UnknownDetectionName(name)
            return stage + key
    scope, _, leaf = name.rpartition("/")
    if scope in HEAD_SCOPES and leaf in HEAD_LEAVES:
        return f"{HEAD_SCOPES[scope]}/{HEAD_LEAVES[leaf]}"
    raise UnknownDetectionName(name)


def match_names(source_shapes, target_shapes, source="OD API checkpoint"):
    """Which stored name fills each detector weight, checked by name and shape.

    Args:
        source_shapes: `{stored name: shape}` of the checkpoint (EMA shadows
            are preferred if present).
        target_shapes: `{key: shape}` of the detector (from `weight_map()`).
        source: a name for error messages (the checkpoint path).

    Returns:
        `{model key: stored name}`, one entry for every key of `target_shapes`.

    Raises:
        ValueError: variables are missing, unused or of the wrong shape; the
            message names the first ones with both shapes.
    """
    matched, unused, mismatched = {}, [], []
    for plain, stored in slim.select_names(source_shapes.keys()).items():
        shape = list(source_shapes[stored])
        try:
            key = detection_key(plain)
        except UnknownDetectionName:
            unused.append(f"{plain} (no detector weight has this name)")
            continue
        if key is None:
            continue
        if key not in target_shapes:
            unused.append(f"{plain} {shape}")
            continue
        if tuple(shape) != tuple(target_shapes[key]):
            mismatched.append(
                f"{key}: checkpoint {plain} has shape {shape}, "
                f"the model expects {list(target_shapes[key])}"
            )
            continue
        matched[key] = stored
    reported = {entry.split(":", 1)[0] for entry in mismatched}
    missing = [
        f"{key} {list(shape)}"
        for key, shape in target_shapes.items()
        if key not in matched and key not in reported
    ]
    slim._raise_if_incompatible(source, missing, mismatched, unused)
    return matched


def convert_detection(tensors, target_shapes, source="OD API checkpoint"):
    """OD API tensors (a mapping name -> array) to `{model key: array}`; see `match_names`."""
    arrays = {name: np.asarray(tensors[name]) for name in tensors.keys()}
    matched = match_names({n: a.shape for n, a in arrays.items()}, target_shapes, source)
    return {key: arrays[stored] for key, stored in matched.items()}


def load_detection_checkpoint(model, path, extract_to=None):
    """Assigns an OD API `faster_rcnn_nas` checkpoint to a detector and returns it.

    Args:
        model: a `NASNetFasterRCNN` of the checkpoint's config.
        path: a checkpoint prefix (`model.ckpt`), a folder holding one, or the
            zoo's `.tar.gz` archive.
        extract_to: folder for the extracted archive (default: the cache).
    """
    from nasnet_app.weights import assign_weights

    tensors = slim.read_slim_checkpoint(path, extract_to)
    shapes = {key: tuple(v.shape) for key, v in model.weight_map().items()}
    arrays = convert_detection(tensors, shapes, source=f"OD API checkpoint {path}")
    assign_weights(model, arrays, f"OD API checkpoint {path}")
    return model


@dataclasses.dataclass(frozen=True)
class DetectionPreset:
    """A pretrained detector: its config overrides and where its weights come from.

    `task` lets the zoo's preset registry (`nasnet_app.zoo.presets`) list it
    beside the classification presets.
    """

    name: str
    description: str
    config: dict
    url: str
    file_name: str
    sha256: str | None = None
    dataset: str = "coco"
    accuracy: dict = dataclasses.field(default_factory=dict)
    paper: str = ""
    parameters: int | None = None
    task: str = "object_detection"

    @property
    def input_size(self):
        return list(detector_config(self).image_size)

    def to_dict(self):
        """The record as plain data, with the fields the zoo's listing shows."""
        data = dataclasses.asdict(self)
        data.update(
            input_size=self.input_size,
            classes=detector_config(self).num_classes,
            weights={"od_api": {"url": self.url, "file_name": self.file_name}},
        )
        return data


FASTER_RCNN_NASNET_A_COCO = DetectionPreset(
    name=PRESET_NAME,
    description="Faster R-CNN, NASNet-A Large (6 @ 4032) features, COCO, 1200x1200 "
    "(TF1 detection model zoo faster_rcnn_nas_coco_2018_01_28)",
    config={},
    url=TF1_ZOO_URL + ARCHIVE,
    file_name=ARCHIVE,
    accuracy={"dataset": "coco test-dev", "mAP": 43.1},
    parameters=105_352_605,
    paper="Zoph, Vasudevan, Shlens, Le. Learning Transferable Architectures for Scalable "
    "Image Recognition. CVPR 2018 (Table 4).",
)
DETECTION_PRESETS = {FASTER_RCNN_NASNET_A_COCO.name: FASTER_RCNN_NASNET_A_COCO}


def get_detection_preset(name):
    """A `DetectionPreset` by name (or itself)."""
    if isinstance(name, DetectionPreset):
        return name
    if name not in DETECTION_PRESETS:
        raise ValueError(
            f"`preset` must be one of {', '.join(DETECTION_PRESETS)}. Received: preset={name!r}"
        )
    return DETECTION_PRESETS[name]


def is_detection_preset(name):
    return isinstance(name, DetectionPreset) or name in DETECTION_PRESETS


def detector_config(preset, overrides=None):
    """The preset's `FasterRCNNConfig` with OD API fields overridden."""
    from nasnet_app.detection import FasterRCNNConfig

    preset = get_detection_preset(preset)
    return FasterRCNNConfig.from_overrides({**preset.config, **(overrides or {})})


def fetch_detection_weights(preset, progress=True):
    """Local path of a preset's official archive, downloaded into the cache if needed."""
    from nasnet_app.download import fetch

    preset = get_detection_preset(preset)
    return fetch(preset.url, preset.file_name, sha256=preset.sha256, progress=progress)


def load_detector(preset=PRESET_NAME, weights=None, config=None, **kwargs):
    """A `NASNetFasterRCNN` for a preset, with weights.

    Args:
        preset: a detection preset name.
        weights: None (random), `"pretrained"` (the official archive, downloaded
            once into the cache), or a checkpoint prefix, folder or `.tar.gz`.
        config: OD API config fields overriding the preset's (e.g.
            `{"num_conv_filters": 8, "image_size": 256}`).
        **kwargs: `NASNetFasterRCNN` arguments (`second_stage_chunk_size`).
    """
    from nasnet_app.detection import NASNetFasterRCNN

    model = NASNetFasterRCNN(detector_config(preset, config), **kwargs)
    if weights is None:
        return model
    if weights in ("pretrained", "coco"):
        weights = fetch_detection_weights(preset)
    elif isinstance(weights, str) and "://" in weights:
        from nasnet_app.download import fetch

        weights = fetch(weights)
    return load_detection_checkpoint(model, os.fspath(weights))


def convert_detector(preset, weights, out, config=None):
    """Converts an OD API checkpoint to a `.keras` detector file (written atomically)."""
    from nasnet_app.zoo.api import save_model

    if weights is None:
        raise ValueError("`weights` must name the checkpoint to convert. Received: weights=None")
    return save_model(load_detector(preset, weights, config), out)
