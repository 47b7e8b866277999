"""`NASNetFasterRCNN`: the TF Object Detection API's `faster_rcnn_nas` at inference.

The stages, as `faster_rcnn_meta_arch.py` with the NASNet feature extractor
runs them:

1. `preprocess`: resize to the fixed `image_size` (bilinear, TF1's
   `resize_images`) and map [0, 255] to [-1, 1];
2. `first_stage`: NASNet-A Large up to `cell_11`; the feature map is
   `concat(cell_10, cell_11)`; the RPN is a 3x3 ReLU6 conv and two 1x1 convs
   (box encodings, [background, object] logits) over grid anchors;
3. `proposals`: decoded RPN boxes, softmax objectness, NMS (IoU 0.7, at most
   500), clipped to the image;
4. `second_stage`: `crop_and_resize` of the feature map to 17 x 17 per
   proposal, split back into the two states, `reduction_cell_1`,
   `cell_12 .. cell_17`, ReLU, spatial mean, then a dense layer of per-class
   box encodings and one of class logits; it runs `second_stage_chunk_size`
   proposals at a time, so the crops (2.3 GB for 500 full-width ones) never
   exist all at once;
5. `postprocess`: per-class decoding, softmax, per-class NMS (IoU 0.6, 100 a
   class, 100 in all), boxes normalised to the image.

Weights keep the OD API's split in their keys: `first_stage/...` (the
NASNet cells up to `cell_11`), `rpn/...`, `second_stage/...` and
`box_head/...`; `nasnet_app.zoo.detection` maps checkpoint names onto them.

Example:

>>> import numpy as np
>>> from nasnet_app.detection import NASNetFasterRCNN
>>> detector = NASNetFasterRCNN({"num_conv_filters": 8, "image_size": 64,
...     "first_stage_max_proposals": 10})
>>> found = detector.predict([np.zeros((80, 60, 3), "uint8")])
>>> found[0].boxes_pixels.shape[1]
4
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from nasnet_app.backbone import make_cell, make_stem, plan_cells, run_cells
from nasnet_app.detection import box_coder
from nasnet_app.detection.anchors import image_anchors
from nasnet_app.detection.coco_labels import class_name
from nasnet_app.detection.config import FasterRCNNConfig
from nasnet_app.detection.postprocess import multiclass_nms
from nasnet_app.genotype import resolve_genotype

FIRST_STAGE_LAST_CELL = "cell_11"
FEATURE_CELLS = ("cell_10", "cell_11")
BUILD_IMAGE_SIZE = 32  # the smallest input NASNet's ImageNet stem and reductions accept


@dataclasses.dataclass
class Detections:
    """The detections of one image, most confident first.

    `boxes` are `(ymin, xmin, ymax, xmax)` normalised to [0, 1] of the image,
    `boxes_pixels` the same in the image's own pixels, `class_ids` COCO
    category ids (1-based, as the label map), `names` their names.
    """

    boxes: np.ndarray
    boxes_pixels: np.ndarray
    class_ids: np.ndarray
    names: list
    scores: np.ndarray

    def __len__(self):
        return len(self.scores)

    def to_json(self):
        """A list of `{"box", "box_pixels", "class_id", "name", "score"}` dicts."""
        return [
            {
                "box": [float(v) for v in box],
                "box_pixels": [float(v) for v in pixels],
                "class_id": int(class_id),
                "name": name,
                "score": float(score),
            }
            for box, pixels, class_id, name, score in zip(
                self.boxes, self.boxes_pixels, self.class_ids, self.names, self.scores
            )
        ]


def _as_config(config):
    if isinstance(config, FasterRCNNConfig):
        return config
    if config is None:
        return FasterRCNNConfig()
    return FasterRCNNConfig.from_overrides(dict(config))


def to_rgb(image, index=0):
    """One image as a float32 `(H, W, 3)` array: gray repeated, alpha dropped.

    Raises:
        ValueError: the array is not an image (named by its position).
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(
            f"`images[{index}]` must be an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array. "
            f"Received: images[{index}].shape={array.shape}"
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array[..., :3].astype(np.float32)


@keras.saving.register_keras_serializable(package="nasnet_app")
class NASNetFasterRCNN(keras.Model):
    """Faster R-CNN with NASNet-A (the NASNet paper's COCO detector), inference only.

    Args:
        config: a `FasterRCNNConfig`, or a dict of its fields overriding the
            published COCO config (OD API names).
        second_stage_chunk_size: proposals per second-stage call; the crop
            memory is `chunk x 17 x 17 x 2 x cell width` floats.
    """

    def __init__(self, config=None, second_stage_chunk_size=50, name="faster_rcnn_nas", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = _as_config(config)
        if not isinstance(second_stage_chunk_size, int) or second_stage_chunk_size < 1:
            raise ValueError(
                "`second_stage_chunk_size` must be a positive integer. "
                f"Received: second_stage_chunk_size={second_stage_chunk_size!r}"
            )
        self.second_stage_chunk_size = second_stage_chunk_size
        self.genotype = resolve_genotype("nasnet_a")
        self._make_layers()
        self.build((None,) + self.config.image_size + (3,))

    # Layers ---------------------------------------------------------------

    def _make_layers(self):
        config = self.config
        plans = plan_cells(
            self.genotype,
            num_blocks=6,
            penultimate_filters=config.penultimate_filters,
            stem="imagenet",
            stem_filters=config.stem_filters,
            skip_reduction=True,
        )
        split = next(i for i, p in enumerate(plans) if p.name == FIRST_STAGE_LAST_CELL) + 1
        self.first_plans, self.second_plans = plans[:split], plans[split:]
        self.feature_indices = [
            2 + next(i for i, p in enumerate(plans) if p.name == name) for name in FEATURE_CELLS
        ]
        self.feature_channels = [plans[i - 2].out_channels for i in self.feature_indices]
        self.stem_conv, self.stem_bn = make_stem(
            "imagenet", config.stem_filters, config.bn_decay, config.bn_epsilon
        )
        cells = [
            make_cell(plan, self.genotype, "same", config.bn_decay, config.bn_epsilon)
            for plan in plans
        ]
        self.first_cells, self.second_cells = cells[:split], cells[split:]
        anchors = config.num_anchors
        self.rpn_conv = layers.Conv2D(
            config.first_stage_box_predictor_depth,
            config.first_stage_box_predictor_kernel_size,
            padding="same",
            activation="relu6",
            name="rpn_conv",
        )
        self.rpn_box = layers.Conv2D(anchors * 4, 1, name="rpn_box")
        self.rpn_class = layers.Conv2D(anchors * 2, 1, name="rpn_class")
        self.box_head_box = layers.Dense(config.num_classes * 4, name="box_head_box")
        self.box_head_class = layers.Dense(config.num_classes + 1, name="box_head_class")

    def build(self, input_shape):
        # Creates every variable with one pass over a tiny zero image and one crop:
        # variable shapes do not depend on the image size, and eager layer calls
        # build much faster than a symbolic trace of this many layers.
        size = self.config.initial_crop_size
        self._first_stage_raw(tf.zeros((1, BUILD_IMAGE_SIZE, BUILD_IMAGE_SIZE, 3)))
        self._second_stage_raw(tf.zeros((1, size, size, self.crop_channels)))
        self._build_shapes_dict = {"input_shape": tuple(input_shape)}
        self.built = True

    def build_from_config(self, config):
        if not self.built:  # the constructor already built every variable
            super().build_from_config(config)

    @property
    def crop_channels(self):
        return sum(self.feature_channels)

    # Stages ---------------------------------------------------------------

    def preprocess(self, images):
        """Raw `[B, H, W, 3]` pixels (0..255) to the network's `[B, *image_size, 3]` input."""
        images = tf.convert_to_tensor(images, tf.float32)
        height, width = self.config.image_size
        if tuple(images.shape[1:3]) != (height, width):
            images = tf.compat.v1.image.resize_images(
                images, [height, width], method=tf.image.ResizeMethod.BILINEAR
            )
        return (2.0 / 255.0) * images - 1.0

    def _first_stage_raw(self, preprocessed):
        x = self.stem_bn(self.stem_conv(preprocessed), training=False)
        outputs = run_cells(x, self.first_cells, self.first_plans)
        features = tf.concat([outputs[i] for i in self.feature_indices], axis=-1)
        rpn = self.rpn_conv(features)
        batch = tf.shape(features)[0]
        box_encodings = tf.reshape(self.rpn_box(rpn), [batch, -1, 4])
        objectness = tf.reshape(self.rpn_class(rpn), [batch, -1, 2])
        return features, box_encodings, objectness

    def first_stage(self, preprocessed):
        """`{"rpn_features_to_crop", "rpn_box_encodings",
        "rpn_objectness_predictions_with_background", "anchors"}` for a batch."""
        features, box_encodings, objectness = self._first_stage_raw(preprocessed)
        return {
            "rpn_features_to_crop": features,
            "rpn_box_encodings": box_encodings,
            "rpn_objectness_predictions_with_background": objectness,
            "anchors": self.anchors(int(features.shape[1]), int(features.shape[2])),
        }

    def anchors(self, grid_height=None, grid_width=None):
        """The clipped RPN anchors `[N, 4]` (pixels of the network input)."""
        height, width = self.config.image_size
        stride = self.config.first_stage_features_stride
        grid_height = grid_height or -(-height // stride)
        grid_width = grid_width or -(-width // stride)
        return image_anchors(grid_height, grid_width, height, width, self.config)

    def proposals(self, box_encodings, objectness, anchors):
        """First-stage NMS of one image: `(boxes [K, 4] in pixels, scores [K])`."""
        config = self.config
        boxes = box_coder.decode(box_encodings, anchors, config.box_coder_scales)
        scores = tf.nn.softmax(objectness)[:, 1]
        height, width = config.image_size
        result = multiclass_nms(
            boxes[:, None, :],
            scores[:, None],
            config.first_stage_nms_score_threshold,
            config.first_stage_nms_iou_threshold,
            config.first_stage_max_proposals,
            config.first_stage_max_proposals,
            clip_window=(0.0, 0.0, float(height), float(width)),
        )
        return result.boxes, result.scores

    def normalize(self, boxes):
        """Pixel boxes of the network input to [0, 1] (the OD API multiplies by 1/size)."""
        height, width = self.config.image_size
        scale = tf.constant([1.0 / height, 1.0 / width, 1.0 / height, 1.0 / width], tf.float32)
        return tf.convert_to_tensor(boxes, tf.float32) * scale

    def crop(self, features, boxes_normalized):
        """The `[K, 17, 17, C]` crops of one image's feature map (`features [1, h, w, C]`)."""
        size = self.config.initial_crop_size
        boxes = tf.convert_to_tensor(boxes_normalized, tf.float32)
        indices = tf.zeros([tf.shape(boxes)[0]], tf.int32)
        crops = tf.image.crop_and_resize(features, boxes, indices, [size, size])
        kernel, stride = self.config.maxpool_kernel_size, self.config.maxpool_stride
        if kernel > 1 or stride > 1:
            crops = tf.nn.max_pool2d(crops, kernel, stride, "VALID")
        return crops

    def _second_stage_raw(self, crops):
        hidden_previous, hidden = tf.split(crops, self.feature_channels, axis=-1)
        outputs = [None] * (2 + len(self.first_plans))
        outputs[self.feature_indices[0]] = hidden_previous
        outputs[self.feature_indices[1]] = hidden
        outputs = run_cells(None, self.second_cells, self.second_plans, outputs)
        pooled = tf.reduce_mean(tf.nn.relu(outputs[-1]), axis=[1, 2])
        box_encodings = tf.reshape(self.box_head_box(pooled), [-1, self.config.num_classes, 4])
        return box_encodings, self.box_head_class(pooled)

    def second_stage(self, features, boxes_normalized):
        """`(refined_box_encodings [K, classes, 4], class_predictions_with_background
        [K, classes + 1])` of one image's proposals, `second_stage_chunk_size` at a time."""
        boxes = np.asarray(boxes_normalized, np.float32).reshape(-1, 4)
        encodings, logits = [], []
        for start in range(0, len(boxes), self.second_stage_chunk_size):
            chunk = boxes[start : start + self.second_stage_chunk_size]
            box_encodings, class_logits = self._second_stage_raw(self.crop(features, chunk))
            encodings.append(box_encodings.numpy())
            logits.append(class_logits.numpy())
        if not encodings:
            classes = self.config.num_classes
            return np.zeros((0, classes, 4), np.float32), np.zeros((0, classes + 1), np.float32)
        return np.concatenate(encodings), np.concatenate(logits)

    def convert_scores(self, logits):
        converter = self.config.score_converter
        if converter == "SOFTMAX":
            return tf.nn.softmax(logits)
        if converter == "SIGMOID":
            return tf.sigmoid(logits)
        return tf.convert_to_tensor(logits)

    def postprocess(self, refined_box_encodings, class_logits, proposal_boxes):
        """Final detections of one image: an `NMSResult` with normalised boxes."""
        config = self.config
        proposals = tf.convert_to_tensor(proposal_boxes, tf.float32)
        encodings = tf.convert_to_tensor(refined_box_encodings, tf.float32)
        boxes = box_coder.decode(encodings, proposals[:, None, :], config.box_coder_scales)
        scores = self.convert_scores(class_logits)[:, 1:]
        height, width = config.image_size
        return multiclass_nms(
            boxes,
            scores,
            config.second_stage_score_threshold,
            config.second_stage_iou_threshold,
            config.max_detections_per_class,
            config.max_total_detections,
            clip_window=(0.0, 0.0, float(height), float(width)),
            change_coordinate_frame=True,
        )

    def detect_preprocessed(self, preprocessed):
        """Every stage's outputs for a batch of preprocessed images (a list of dicts)."""
        first = self.first_stage(preprocessed)
        results = []
        for i in range(int(first["rpn_features_to_crop"].shape[0])):
            features = first["rpn_features_to_crop"][i : i + 1]
            proposal_boxes, proposal_scores = self.proposals(
                first["rpn_box_encodings"][i],
                first["rpn_objectness_predictions_with_background"][i],
                first["anchors"],
            )
            encodings, logits = self.second_stage(features, self.normalize(proposal_boxes))
            results.append(
                {
                    "proposal_boxes": proposal_boxes,
                    "proposal_scores": proposal_scores,
                    "refined_box_encodings": encodings,
                    "class_predictions_with_background": logits,
                    "detections": self.postprocess(encodings, logits, proposal_boxes),
                }
            )
        return first, results

    def call(self, images):
        """Detections of a batch of raw images as padded tensors (the OD API's outputs).

        Returns:
            `{"detection_boxes" [B, max_total, 4] (normalised), "detection_scores",
            "detection_classes" (0-based), "num_detections"}`.
        """
        _, results = self.detect_preprocessed(self.preprocess(images))
        total = self.config.max_total_detections
        boxes = np.zeros((len(results), total, 4), np.float32)
        scores = np.zeros((len(results), total), np.float32)
        classes = np.zeros((len(results), total), np.float32)
        counts = np.zeros((len(results),), np.float32)
        for i, result in enumerate(results):
            found = result["detections"]
            n = len(found.scores)
            boxes[i, :n], scores[i, :n], classes[i, :n], counts[i] = (
                found.boxes, found.scores, found.classes, n
            )  # fmt: skip
        return {
            "detection_boxes": boxes,
            "detection_scores": scores,
            "detection_classes": classes,
            "num_detections": counts,
        }

    # Use ------------------------------------------------------------------

    def predict(self, images, score_threshold=0.0, verbose=None):
        """Detections of images of any size: a list of `Detections`, one per image.

        Args:
            images: a list of `(H, W)`, `(H, W, 1|3|4)` arrays (0..255), or one
                `[B, H, W, 3]` array.
            score_threshold: keep detections scoring at least this.
        """
        del verbose  # Keras' `predict` argument, kept for a drop-in call
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        found = []
        for index, image in enumerate(images):
            rgb = to_rgb(image, index)
            _, results = self.detect_preprocessed(self.preprocess(rgb[None]))
            found.append(self._detections(results[0]["detections"], rgb.shape, score_threshold))
        return found

    def _detections(self, result, shape, score_threshold):
        keep = result.scores >= score_threshold
        boxes = np.clip(result.boxes[keep], 0.0, 1.0)
        height, width = shape[:2]
        pixels = boxes * np.array([height, width, height, width], np.float32)
        class_ids = result.classes[keep] + 1
        return Detections(
            boxes=boxes,
            boxes_pixels=pixels,
            class_ids=class_ids,
            names=[class_name(int(c)) for c in class_ids],
            scores=result.scores[keep],
        )

    # Weights and saving ---------------------------------------------------

    def named_layers(self):
        """Every weighted layer under its stable key (see `weight_map`)."""
        named = {"first_stage/stem/conv": self.stem_conv, "first_stage/stem/bn": self.stem_bn}
        for stage, cells in (
            ("first_stage", self.first_cells),
            ("second_stage", self.second_cells),
        ):
            for cell in cells:
                for key, sub in cell.named_layers().items():
                    named[f"{stage}/{cell.name}/{key}"] = sub
        named.update(
            {
                "rpn/conv": self.rpn_conv,
                "rpn/box": self.rpn_box,
                "rpn/class": self.rpn_class,
                "box_head/box": self.box_head_box,
                "box_head/class": self.box_head_class,
            }
        )
        return named

    def weight_map(self):
        """Every variable under a stable key, e.g. `first_stage/cell_0/base/conv/kernel`."""
        weights = {}
        for key, layer in self.named_layers().items():
            for variable in layer.weights:
                weights[f"{key}/{variable.name}"] = variable
        return weights

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "config": self.config.to_dict(),
            "second_stage_chunk_size": self.second_stage_chunk_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("dtype", None)
        return cls(**config)
