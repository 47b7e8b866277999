"""The detector's parts: config record, anchors, box coder, NMS, labels, drawing, `predict`."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasnet_app.detection import (
    Detections,
    FasterRCNNConfig,
    NASNetFasterRCNN,
    box_coder,
    category_names,
    class_name,
)
from nasnet_app.detection.anchors import grid_anchors, image_anchors
from nasnet_app.detection.draw import annotate
from nasnet_app.detection.faster_rcnn import to_rgb
from nasnet_app.detection.postprocess import multiclass_nms
from tests.test_detection_reference import REFERENCE_CONFIG, reference_path

# ----------------------------------------------------------------------------- config


def test_defaults_are_the_published_od_api_config():
    config = FasterRCNNConfig()
    assert config.image_size == (1200, 1200) and config.num_conv_filters == 168
    assert config.penultimate_filters == 4032 and config.stem_filters == 96
    assert config.scales == (0.25, 0.5, 1.0, 2.0) and config.aspect_ratios == (0.5, 1.0, 2.0)
    assert config.box_coder_scales == (10.0, 10.0, 5.0, 5.0)
    assert (config.first_stage_nms_iou_threshold, config.first_stage_max_proposals) == (0.7, 500)
    assert (config.second_stage_iou_threshold, config.max_detections_per_class) == (0.6, 100)
    assert config.initial_crop_size == 17 and config.num_classes == 90
    assert dataclasses.is_dataclass(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_classes = 3


def test_overrides_use_od_api_names_and_round_trip():
    config = FasterRCNNConfig.from_overrides(REFERENCE_CONFIG)
    assert config.image_size == (256, 256) and config.num_conv_filters == 8
    assert FasterRCNNConfig.from_dict(config.to_dict()) == config
    assert FasterRCNNConfig(image_size=[300, 200]).image_size == (300, 200)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_filters": 8}, r"unknown fields: \['num_filters'\]"),
        ({"image_size": 16}, r"`image_size` must be .* at least 32. Received: image_size=16"),
        ({"first_stage_max_proposals": 0}, r"`first_stage_max_proposals` must be a positive"),
        ({"second_stage_iou_threshold": 1.5}, r"`second_stage_iou_threshold` must be in \(0, 1\]"),
        ({"score_converter": "TANH"}, r"`score_converter` must be one of SOFTMAX"),
        ({"scales": []}, r"`scales` must be a non-empty list"),
    ],
)
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        FasterRCNNConfig.from_overrides(overrides)


# ----------------------------------------------------------------------------- anchors, boxes


def test_grid_anchors_are_ratio_major_scale_minor_per_location():
    config = FasterRCNNConfig(scales=(0.5, 1.0), aspect_ratios=(1.0, 4.0))
    anchors = grid_anchors(1, 2, config).numpy()
    assert anchors.shape == (8, 4)
    # location (0, 0): ratio 1 scale 0.5 (128 x 128), ratio 1 scale 1 (256 x 256), ratio 4 ...
    np.testing.assert_allclose(anchors[0], [-64, -64, 64, 64])
    np.testing.assert_allclose(anchors[1], [-128, -128, 128, 128])
    np.testing.assert_allclose(anchors[2], [-32, -128, 32, 128])  # h = 128 / 2, w = 128 * 2
    np.testing.assert_allclose(anchors[4], anchors[0] + [0, 16, 0, 16])  # next column


def test_image_anchors_are_clipped_to_the_image():
    anchors = image_anchors(4, 4, 64, 64, FasterRCNNConfig()).numpy()
    assert anchors.shape == (4 * 4 * 12, 4)
    assert anchors.min() == 0.0 and anchors.max() == 64.0


def test_box_coder_round_trips_and_zero_codes_give_the_anchors():
    anchors = tf.constant([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 8.0, 4.0]])
    boxes = tf.constant([[12.0, 18.0, 60.0, 90.0], [1.0, 1.0, 5.0, 9.0]])
    codes = box_coder.encode(boxes, anchors)
    np.testing.assert_allclose(box_coder.decode(codes, anchors), boxes, atol=1e-4)
    np.testing.assert_allclose(box_coder.decode(tf.zeros([2, 4]), anchors), anchors)
    # scales [10, 10, 5, 5]: a 1-anchor-height move down is ty = 10
    moved = box_coder.decode(tf.constant([[10.0, 0.0, 0.0, 0.0]]), anchors[:1])
    np.testing.assert_allclose(moved, [[50.0, 20.0, 90.0, 100.0]])


# ----------------------------------------------------------------------------- NMS


def test_nms_per_class_sort_clip_and_total():
    boxes = np.array(
        [
            [[0, 0, 10, 10], [0, 0, 10, 10]],
            [[1, 1, 11, 11], [1, 1, 11, 11]],  # overlaps box 0 (IoU 0.68)
            [[20, 20, 40, 40], [-5, -5, 0, 10]],  # class 1: zero area once clipped
        ],
        np.float32,
    )
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.95]], np.float32)
    found = multiclass_nms(boxes, scores, 0.0, 0.6, 10, 10, clip_window=(0, 0, 30, 30))
    assert found.scores.tolist() == pytest.approx([0.9, 0.7, 0.3])
    assert found.classes.tolist() == [0, 1, 0] and found.indices.tolist() == [0, 1, 2]
    np.testing.assert_allclose(found.boxes[2], [20, 20, 30, 30])  # clipped to the window
    loose = multiclass_nms(boxes, scores, 0.0, 0.7, 10, 2, clip_window=(0, 0, 30, 30))
    assert loose.scores.tolist() == pytest.approx([0.9, 0.8])  # IoU 0.68 < 0.7 kept; total 2
    normalised = multiclass_nms(
        boxes[:1], scores[:1], 0.0, 0.6, 10, 10, (0, 0, 20, 40), change_coordinate_frame=True
    )
    np.testing.assert_allclose(normalised.boxes[0], [0, 0, 0.5, 0.25])


# ----------------------------------------------------------------------------- labels, images


def test_label_map_has_90_ids_and_80_names():
    names = category_names()
    assert len(names) == 80 and max(names) == 90 and min(names) == 1
    assert (class_name(1), class_name(18), class_name(90)) == ("person", "dog", "toothbrush")
    assert [i for i in range(1, 91) if i not in names] == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]
    assert class_name(12) == "unused_12"
    with pytest.raises(ValueError, match="`category_id` must be in 1..90. Received: category_id=0"):
        class_name(0)


def test_images_of_any_mode_become_rgb():
    assert to_rgb(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert to_rgb(np.zeros((5, 6, 1), np.uint8)).shape == (5, 6, 3)
    rgba = to_rgb(np.full((5, 6, 4), 7, np.uint8))
    assert rgba.shape == (5, 6, 3) and rgba.dtype == np.float32 and rgba.max() == 7
    with pytest.raises(ValueError, match=r"`images\[3\]` must be .* Received: images\[3\]\.shape="):
        to_rgb(np.zeros((5, 6, 2)), 3)


def test_annotation_draws_each_box_in_its_colour():
    found = Detections(
        boxes=np.array([[0.1, 0.1, 0.5, 0.5]]),
        boxes_pixels=np.array([[10.0, 10.0, 50.0, 50.0]]),
        class_ids=np.array([1]),
        names=["person"],
        scores=np.array([0.9]),
    )
    image = np.asarray(annotate(np.zeros((100, 100, 3), np.uint8), found))
    assert image[30, 10].any() and image[50, 30].any()  # left and bottom edges
    assert not image[30, 30].any() and not image[80, 80].any()  # inside and outside


# ----------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def small_detector():
    from nasnet_app.zoo.detection import load_detector

    config = {**REFERENCE_CONFIG, "first_stage_max_proposals": 20}
    return load_detector(weights=reference_path("faster_rcnn_nas_f8", "ckpt", "model.ckpt"),
                         config=config)  # fmt: skip


@pytest.mark.slow
def test_predict_takes_images_of_any_size_and_mode(small_detector):
    rng = np.random.RandomState(1)
    images = [
        rng.randint(0, 256, (300, 200, 3)).astype(np.uint8),
        rng.randint(0, 256, (90, 120)).astype(np.uint8),
        rng.randint(0, 256, (256, 256, 4)).astype(np.uint8),
    ]
    found = small_detector.predict(images)
    assert len(found) == 3
    for detections, image in zip(found, images):
        height, width = image.shape[:2]
        assert 0 < len(detections) <= 100
        assert detections.boxes.min() >= 0.0 and detections.boxes.max() <= 1.0
        np.testing.assert_allclose(
            detections.boxes_pixels, detections.boxes * [height, width, height, width], rtol=1e-6
        )
        assert np.all(np.diff(detections.scores) <= 0)
        assert all(1 <= c <= 90 for c in detections.class_ids)
        assert detections.names == [class_name(int(c)) for c in detections.class_ids]
    record = found[0].to_json()[0]
    assert list(record) == ["box", "box_pixels", "class_id", "name", "score"]


@pytest.mark.slow
def test_score_threshold_keeps_the_confident_ones(small_detector):
    image = np.random.RandomState(2).randint(0, 256, (128, 128, 3)).astype(np.uint8)
    (everything,) = small_detector.predict([image])
    cut = float(np.median(everything.scores))
    (confident,) = small_detector.predict([image], score_threshold=cut)
    assert len(confident) == int(np.sum(everything.scores >= cut)) < len(everything)


@pytest.mark.slow
def test_call_returns_padded_od_api_outputs(small_detector):
    image = np.random.RandomState(3).uniform(0, 255, (2, 256, 256, 3)).astype(np.float32)
    outputs = small_detector(image)
    assert outputs["detection_boxes"].shape == (2, 100, 4)
    assert outputs["num_detections"].tolist() == [100.0, 100.0]
    assert outputs["detection_classes"].max() <= 89


@pytest.mark.slow
def test_keras_file_round_trip_keeps_config_and_detections(small_detector, tmp_path):
    path = str(tmp_path / "detector.keras")
    small_detector.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, NASNetFasterRCNN) and loaded.config == small_detector.config
    image = np.random.RandomState(4).randint(0, 256, (64, 80, 3)).astype(np.uint8)
    (a,), (b,) = small_detector.predict([image]), loaded.predict([image])
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-6)
    np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_bad_chunk_size_is_named():
    with pytest.raises(ValueError, match="`second_stage_chunk_size` must be a positive integer"):
        NASNetFasterRCNN(REFERENCE_CONFIG, second_stage_chunk_size=0)
