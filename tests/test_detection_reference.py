"""Faster R-CNN NASNet-A against the original OD API code: names, shapes and every stage.

The reference set (`tests/data/od_reference`, see its README) was written by
the TF Object Detection API's own `faster_rcnn_nas` graph at reduced width.
"""

import functools
import hashlib
import os
import re
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from nasnet_app.detection import box_coder
from nasnet_app.detection.postprocess import box_iou
from nasnet_app.zoo import detection

REFERENCE_CONFIG = {"num_conv_filters": 8, "image_size": 256, "first_stage_max_proposals": 500}
TOLERANCE = 1e-4


def reference_path(*parts):
    """A file of the shipped OD API reference set (checked against its SHA256SUMS once)."""
    folder = os.path.join(os.path.dirname(__file__), "data", "od_reference")
    _check_sums(folder)
    return os.path.join(folder, *parts)


@functools.cache
def _check_sums(folder):
    with open(os.path.join(folder, "SHA256SUMS"), encoding="utf-8") as handle:
        for line in handle:
            digest, name = line.split()
            with open(os.path.join(folder, name), "rb") as data:
                assert hashlib.sha256(data.read()).hexdigest() == digest, f"{name} is damaged"


def read_listing(path):
    """`{name: shape}` of a `name<TAB>[shape]` variable listing."""
    shapes = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            name, shape = line.rstrip("\n").split("\t")
            shapes[name] = tuple(int(s) for s in re.findall(r"\d+", shape))
    return shapes


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def match_one_to_one(boxes, reference):
    """IoU of each box with its best reference box, asserting the pairing is a bijection."""
    iou = box_iou(boxes, reference)
    best = iou.argmax(axis=1)
    assert len(set(best.tolist())) == len(reference) == len(boxes)
    return iou[np.arange(len(boxes)), best], best


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(reference_path("faster_rcnn_nas_f8", "outputs.npz")))


@pytest.fixture(scope="module")
def detector():
    return detection.load_detector(
        weights=reference_path("faster_rcnn_nas_f8", "ckpt", "model.ckpt"), config=REFERENCE_CONFIG
    )


@pytest.fixture(scope="module")
def first_stage(detector, reference):
    return detector.first_stage(detector.preprocess(reference["image"]))


@pytest.mark.slow
def test_anchors_are_exact(first_stage, reference):
    np.testing.assert_array_equal(first_stage["anchors"].numpy(), reference["anchors"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "key",
    ["rpn_features_to_crop", "rpn_box_encodings", "rpn_objectness_predictions_with_background"],
)
def test_first_stage_outputs_match(first_stage, reference, key):
    assert relative_error(first_stage[key], reference[key]) < TOLERANCE


@pytest.mark.slow
def test_crops_match(detector, first_stage, reference):
    proposals = detector.normalize(reference["proposal_boxes"][0])
    ours = detector.crop(first_stage["rpn_features_to_crop"], proposals)
    indices = tf.zeros([proposals.shape[0]], tf.int32)
    theirs = tf.image.crop_and_resize(
        reference["rpn_features_to_crop"], proposals, indices, [17, 17]
    )
    assert ours.shape == (500, 17, 17, 192)
    assert relative_error(ours, theirs) < TOLERANCE


@pytest.mark.slow
def test_proposals_equal_the_reference_as_a_set(detector, first_stage, reference):
    boxes, scores = detector.proposals(
        first_stage["rpn_box_encodings"][0],
        first_stage["rpn_objectness_predictions_with_background"][0],
        first_stage["anchors"],
    )
    assert int(reference["num_proposals"][0]) == len(boxes) == 500
    ious, _ = match_one_to_one(boxes, reference["proposal_boxes"][0])
    assert ious.min() > 0.99
    assert np.all(np.diff(scores) <= 0)


@pytest.mark.slow
def test_second_stage_on_reference_proposals_matches(detector, first_stage, reference):
    encodings, logits = detector.second_stage(
        first_stage["rpn_features_to_crop"], detector.normalize(reference["proposal_boxes"][0])
    )
    assert relative_error(encodings, reference["refined_box_encodings"]) < TOLERANCE
    assert relative_error(logits, reference["class_predictions_with_background"]) < TOLERANCE


@pytest.mark.slow
def test_chunk_size_does_not_change_the_second_stage(detector, first_stage, reference):
    boxes = detector.normalize(reference["proposal_boxes"][0][:40])
    features = first_stage["rpn_features_to_crop"]
    whole = detector.second_stage(features, boxes)
    crop, crop_sizes = detector.crop, []

    def counting_crop(maps, chunk):
        crop_sizes.append(len(chunk))
        return crop(maps, chunk)

    detector.second_stage_chunk_size, detector.crop = 7, counting_crop
    try:
        chunked = detector.second_stage(features, boxes)
    finally:
        detector.second_stage_chunk_size = 50
        del detector.crop
    assert crop_sizes == [7] * 5 + [5]  # never more crops at once than one chunk
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_postprocess_of_reference_predictions_is_the_reference(detector, reference):
    found = detector.postprocess(
        reference["refined_box_encodings"],
        reference["class_predictions_with_background"],
        reference["proposal_boxes"][0],
    )
    assert len(found.scores) == int(reference["det_num_detections"][0])
    np.testing.assert_allclose(found.boxes, reference["det_detection_boxes"][0], atol=1e-6)
    np.testing.assert_allclose(found.scores, reference["det_detection_scores"][0], atol=1e-7)
    np.testing.assert_array_equal(found.classes, reference["det_detection_classes"][0])
    np.testing.assert_array_equal(found.indices, reference["det_detection_anchor_indices"][0])


@pytest.mark.slow
def test_raw_detections_match(detector, reference):
    proposals = reference["proposal_boxes"][0]
    boxes = box_coder.decode(reference["refined_box_encodings"], proposals[:, None, :]).numpy()
    logits = reference["class_predictions_with_background"]
    best = logits[:, 1:].argmax(axis=1)
    raw = np.clip(boxes[np.arange(len(best)), best] / 256.0, 0.0, 1.0)
    np.testing.assert_allclose(raw, reference["det_raw_detection_boxes"][0], atol=1e-6)
    scores = detector.convert_scores(logits).numpy()
    np.testing.assert_allclose(scores, reference["det_raw_detection_scores"][0], atol=1e-6)


@pytest.mark.slow
def test_end_to_end_detections_equal_the_reference_as_a_set(detector, reference):
    _, results = detector.detect_preprocessed(detector.preprocess(reference["image"]))
    found = results[0]["detections"]
    expected = reference["det_detection_boxes"][0]
    assert len(found.boxes) == len(expected) == 100
    ious, pairs = match_one_to_one(found.boxes, expected)
    assert ious.min() > 0.99
    np.testing.assert_array_equal(found.classes, reference["det_detection_classes"][0][pairs])
    np.testing.assert_allclose(found.scores, reference["det_detection_scores"][0][pairs], atol=1e-5)


@pytest.mark.slow
def test_checkpoint_names_and_shapes_map_one_to_one(detector):
    listing = read_listing(reference_path("faster_rcnn_nas_f8", "variables.txt"))
    targets = {key: tuple(v.shape) for key, v in detector.weight_map().items()}
    matched = detection.match_names(listing, targets)
    assert len(listing) == 1555 and len(matched) == len(targets) == 1554
    assert set(listing) - set(matched.values()) == {"global_step"}


@pytest.mark.slow
def test_every_full_width_tensor_maps_onto_the_full_width_model():
    from nasnet_app.detection import NASNetFasterRCNN

    listing = read_listing(reference_path("faster_rcnn_nas_full_width_variables.txt"))
    # Variable shapes do not depend on the image size: a small one keeps the build cheap.
    model = NASNetFasterRCNN({"image_size": 64})
    targets = {key: tuple(v.shape) for key, v in model.weight_map().items()}
    matched = detection.match_names(listing, targets)
    assert len(listing) == len(targets) == len(matched) == 1554
    assert sorted(matched.values()) == sorted(listing)
    assert sum(int(np.prod(s)) for s in listing.values()) == model.count_params() == 105_352_605


def _f8_shapes():
    listing = read_listing(reference_path("faster_rcnn_nas_f8", "variables.txt"))
    targets = {detection.detection_key(n): s for n, s in listing.items() if n != "global_step"}
    return listing, targets


def test_shape_mismatch_names_the_first_ones():
    listing, targets = _f8_shapes()
    listing["Conv/weights"] = (3, 3, 192, 256)
    with pytest.raises(ValueError, match=r"1 shape mismatches, first: rpn/conv/kernel.*256"):
        detection.match_names(listing, targets, source="ckpt X")


def test_other_architecture_names_missing_and_unused():
    listing, targets = _f8_shapes()
    del listing["SecondStageFeatureExtractor/cell_17/1x1/weights"]
    listing["FeatureExtractor/MobilenetV1/Conv2d_0/weights"] = (3, 3, 3, 32)
    with pytest.raises(ValueError) as error:
        detection.match_names(listing, targets, source="ckpt X")
    message = str(error.value)
    assert "ckpt X does not fit" in message
    assert "1 model weights missing from the checkpoint, first: second_stage/cell_17" in message
    assert "FeatureExtractor/MobilenetV1/Conv2d_0/weights (no detector weight" in message


def test_a_first_stage_cell_under_the_second_stage_prefix_is_unknown():
    with pytest.raises(detection.UnknownDetectionName):
        detection.detection_key("Sideways/cell_3/1x1/weights")
    assert detection.detection_key("SecondStageFeatureExtractor/cell_3/1x1/weights") == (
        "second_stage/cell_3/base/conv/kernel"
    )  # a name the model then lacks: reported as unused by `match_names`
    assert detection.detection_key("global_step") is None


def test_truncated_checkpoint_is_named(tmp_path):
    for name in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
        shutil.copy(reference_path("faster_rcnn_nas_f8", "ckpt", name), tmp_path / name)
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    tensors = detection.slim.read_slim_checkpoint(str(tmp_path / "model.ckpt"))
    with pytest.raises(ValueError, match=r"model\.ckpt.*truncated or corrupt"):
        detection.convert_detection(tensors, {})


def make_zoo_archive(path):
    """A `.tar.gz` laid out as the TF1 detection model zoo ships it."""
    with tarfile.open(path, "w:gz") as archive:
        for name in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
            archive.add(
                reference_path("faster_rcnn_nas_f8", "ckpt", name),
                arcname=f"faster_rcnn_nas_coco_2018_01_28/{name}",
            )
    return path


@pytest.mark.slow
def test_zoo_archive_loads(detector, tmp_path):
    archive = make_zoo_archive(tmp_path / detection.ARCHIVE)
    before = {k: v.numpy().copy() for k, v in detector.weight_map().items()}
    detection.load_detection_checkpoint(detector, str(archive), extract_to=tmp_path / "x")
    after = detector.weight_map()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)


def test_preset_points_at_the_tf1_detection_zoo():
    preset = detection.get_detection_preset("faster_rcnn_nasnet_a_coco")
    assert preset.url == (
        "http://download.tensorflow.org/models/object_detection/"
        "faster_rcnn_nas_coco_2018_01_28.tar.gz"
    )
    config = detection.detector_config(preset, {"num_conv_filters": 8})
    assert config.num_conv_filters == 8 and config.image_size == (1200, 1200)
    with pytest.raises(ValueError, match=r"unknown fields: \['num_filters'\]"):
        detection.detector_config(preset, {"num_filters": 8})


def test_preset_is_listed_by_the_zoo_registry():
    from nasnet_app.zoo import presets

    assert presets.list_presets(task="object_detection") == ["faster_rcnn_nasnet_a_coco"]
    record = presets.get_preset("faster_rcnn_nasnet_a_coco")
    assert record.to_dict()["input_size"] == [1200, 1200] and record.parameters == 105_352_605
