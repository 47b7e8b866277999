"""`FasterRCNNConfig`: the hyper-parameters of the OD API's `faster_rcnn_nas`, as one record.

Field names are those of the TF Object Detection API config
(`samples/configs/faster_rcnn_nas_coco.config` and its protos), flattened: the
`grid_anchor_generator` fields keep their leaf names (`scales`, `height_stride`,
...), the box coder its `y_scale` ... `width_scale`, the second-stage batch NMS
is `second_stage_*`. `image_size` is the `fixed_shape_resizer` size and
`num_conv_filters` NASNet-A Large's width (168 in the published model).

Example:

>>> from nasnet_app.detection import FasterRCNNConfig
>>> FasterRCNNConfig().image_size
(1200, 1200)
>>> FasterRCNNConfig.from_overrides({"num_conv_filters": 8, "image_size": 256}).image_size
(256, 256)
"""

import dataclasses
import numbers

SCORE_CONVERTERS = ("SOFTMAX", "SIGMOID", "IDENTITY")


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class FasterRCNNConfig:
    """The OD API `faster_rcnn_nas` configuration (defaults: the published COCO model)."""

    num_classes: int = 90
    image_size: tuple = (1200, 1200)
    num_conv_filters: int = 168
    stem_multiplier: float = 3.0
    bn_decay: float = 0.9997
    bn_epsilon: float = 1e-3
    first_stage_features_stride: int = 16
    scales: tuple = (0.25, 0.5, 1.0, 2.0)
    aspect_ratios: tuple = (0.5, 1.0, 2.0)
    height: int = 256
    width: int = 256
    height_stride: int = 16
    width_stride: int = 16
    height_offset: int = 0
    width_offset: int = 0
    first_stage_box_predictor_depth: int = 512
    first_stage_box_predictor_kernel_size: int = 3
    first_stage_nms_score_threshold: float = 0.0
    first_stage_nms_iou_threshold: float = 0.7
    first_stage_max_proposals: int = 500
    initial_crop_size: int = 17
    maxpool_kernel_size: int = 1
    maxpool_stride: int = 1
    y_scale: float = 10.0
    x_scale: float = 10.0
    height_scale: float = 5.0
    width_scale: float = 5.0
    second_stage_score_threshold: float = 0.0
    second_stage_iou_threshold: float = 0.6
    max_detections_per_class: int = 100
    max_total_detections: int = 100
    score_converter: str = "SOFTMAX"

    def __post_init__(self):
        size = self.image_size
        if isinstance(size, numbers.Integral):
            size = (size, size)
        if (
            not isinstance(size, (tuple, list))
            or len(size) != 2
            or not all(isinstance(s, numbers.Integral) and s >= 32 for s in size)
        ):
            _fail("image_size", "an int or [height, width], each at least 32", self.image_size)
        object.__setattr__(self, "image_size", (int(size[0]), int(size[1])))
        for name in ("scales", "aspect_ratios"):
            values = getattr(self, name)
            if not isinstance(values, (tuple, list)) or not values or min(values) <= 0:
                _fail(name, "a non-empty list of positive numbers", values)
            object.__setattr__(self, name, tuple(float(v) for v in values))
        for name in (
            "num_classes", "num_conv_filters", "first_stage_features_stride", "height", "width",
            "height_stride", "width_stride", "first_stage_box_predictor_depth",
            "first_stage_box_predictor_kernel_size", "first_stage_max_proposals",
            "initial_crop_size", "maxpool_kernel_size", "maxpool_stride",
            "max_detections_per_class", "max_total_detections",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                _fail(name, "a positive integer", value)
        for name in ("first_stage_nms_iou_threshold", "second_stage_iou_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                _fail(name, "in (0, 1]", getattr(self, name))
        if self.score_converter not in SCORE_CONVERTERS:
            _fail("score_converter", f"one of {', '.join(SCORE_CONVERTERS)}", self.score_converter)
        if self.first_stage_features_stride != 16:
            _fail("first_stage_features_stride", "16 (NASNet's Cell_11 stride)",
                  self.first_stage_features_stride)  # fmt: skip

    @property
    def num_anchors(self):
        """Anchors per feature-map location."""
        return len(self.scales) * len(self.aspect_ratios)

    @property
    def penultimate_filters(self):
        """NASNet-A Large's last-cell width for `num_conv_filters` (6 states x 4 x F)."""
        return 24 * self.num_conv_filters

    @property
    def stem_filters(self):
        """TF-Slim's ImageNet stem: `int(32 * stem_multiplier)`, whatever the width."""
        return int(32 * self.stem_multiplier)

    @property
    def box_coder_scales(self):
        return (self.y_scale, self.x_scale, self.height_scale, self.width_scale)

    def replace(self, **changes):
        """A copy with some fields changed (see `from_overrides` for checked names)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data):
        return cls().replace_checked(data)

    @classmethod
    def from_overrides(cls, overrides, base=None):
        """`base` (default: the published config) with fields overridden by OD API names.

        Raises:
            ValueError: an override names no field; the message lists them all.
        """
        return (base or cls()).replace_checked(overrides)

    def replace_checked(self, overrides):
        if not isinstance(overrides, dict):
            _fail("config", "a JSON object of OD API field names", overrides)
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(
                f"`config` must only use the fields {', '.join(fields)}. "
                f"Received unknown fields: {unknown}"
            )
        return self.replace(**overrides)
