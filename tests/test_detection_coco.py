"""COCO evaluation (pycocotools) on annotations made here: exact, known-off and empty cases."""

import json

import numpy as np
import pytest

from nasnet_app.detection import Detections
from nasnet_app.evaluate import coco

CATEGORIES = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
# (image id, category id, [x, y, w, h]); every box is "large" or "medium" in COCO's areas.
BOXES = [
    (1, 1, [10.0, 20.0, 100.0, 150.0]),
    (1, 3, [150.0, 40.0, 120.0, 80.0]),
    (2, 1, [30.0, 30.0, 60.0, 90.0]),
    (2, 3, [100.0, 120.0, 150.0, 100.0]),
    (2, 3, [5.0, 200.0, 80.0, 60.0]),
]


def annotations():
    images = [{"id": i, "file_name": f"{i}.png", "height": 300, "width": 320} for i in (1, 2)]
    anns = [
        {"id": n + 1, "image_id": image, "category_id": category, "bbox": box,
         "area": box[2] * box[3], "iscrowd": 0}
        for n, (image, category, box) in enumerate(BOXES)
    ]  # fmt: skip
    return {"images": images, "annotations": anns, "categories": CATEGORIES}


def results(boxes=BOXES, score=0.9):
    return [
        {"image_id": image, "category_id": category, "bbox": list(box), "score": score}
        for image, category, box in boxes
    ]


def test_detections_equal_to_the_ground_truth_score_one():
    result = coco.evaluate(annotations(), results())
    for name in ("AP", "AP50", "AP75", "AR10", "AR100"):
        assert result["stats"][name] == pytest.approx(1.0), name
    # One detection per image and class: image 2's second car cannot count.
    assert result["stats"]["AR1"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert result["per_class_ap"] == {"person": pytest.approx(1.0), "car": pytest.approx(1.0)}


def _widened(box, iou):
    """A box with the same top-left corner and `iou` with `box` (wider by 1 / iou)."""
    x, y, w, h = box
    return [x, y, w / iou, h]


def test_boxes_at_known_iou_score_the_thresholds_they_pass():
    # IoU 0.62 passes the thresholds 0.50, 0.55 and 0.60 of the ten 0.50:0.95.
    shifted = [(i, c, _widened(b, 0.62)) for i, c, b in BOXES]
    stats = coco.evaluate(annotations(), results(shifted))["stats"]
    assert stats["AP50"] == pytest.approx(1.0)
    assert stats["AP75"] == pytest.approx(0.0)
    assert stats["AP"] == pytest.approx(0.3)


def test_missed_boxes_and_false_positives_lower_recall_and_precision():
    found = results(BOXES[:3])  # both cars of image 2 missed
    stats = coco.evaluate(annotations(), found)
    # person: 2 of 2 found (AP 1); car: 1 of 3 found at precision 1 (AP ~ 1/3 of the recall axis)
    assert stats["per_class_ap"]["person"] == pytest.approx(1.0)
    assert stats["per_class_ap"]["car"] == pytest.approx(34 / 101)
    assert stats["stats"]["AR100"] == pytest.approx((1.0 + 1 / 3) / 2)
    wrong_class = [(i, 1 if c == 3 else 3, b) for i, c, b in BOXES]
    assert coco.evaluate(annotations(), results(wrong_class))["stats"]["AP"] == 0.0


def test_no_detections_score_zero():
    result = coco.evaluate(annotations(), [])
    assert result["stats"]["AP"] == 0.0 and result["per_class_ap"]["car"] == 0.0


def test_detections_convert_to_coco_results():
    found = Detections(
        boxes=np.array([[0.1, 0.2, 0.5, 0.6]], np.float32),
        boxes_pixels=np.array([[20.0, 10.0, 170.0, 110.0]], np.float32),
        class_ids=np.array([1]),
        names=["person"],
        scores=np.array([0.75], np.float32),
    )
    (entry,) = coco.to_coco_results(7, found)
    assert entry == {"image_id": 7, "category_id": 1, "bbox": [10.0, 20.0, 100.0, 150.0],
                     "score": pytest.approx(0.75)}  # fmt: skip


def test_report_has_the_twelve_stats_per_class_ap_and_a_plot(tmp_path):
    result = coco.evaluate(annotations(), results())
    report = coco.write_report(result, tmp_path / "report", {"images": 2})
    written = json.loads((tmp_path / "report" / "report.json").read_text())
    assert written == json.loads(json.dumps(report))
    assert list(written["stats"]) == list(coco.STAT_NAMES) and len(coco.STAT_NAMES) == 12
    assert (tmp_path / "report" / "precision_recall.png").read_bytes()[:4] == b"\x89PNG"


class FakeDetector:
    """Returns the ground truth of each image (by file name) as detections."""

    def __init__(self, per_file):
        self.per_file = per_file

    def predict(self, images, score_threshold=0.0):
        (image,) = images
        boxes = self.per_file[image]
        pixels = np.array([[y, x, y + h, x + w] for _, (x, y, w, h) in boxes], np.float32)
        return [
            Detections(
                boxes=pixels / np.array([300, 320, 300, 320], np.float32),
                boxes_pixels=pixels,
                class_ids=np.array([c for c, _ in boxes]),
                names=["x"] * len(boxes),
                scores=np.full(len(boxes), 0.8, np.float32),
            )
        ]


def test_evaluate_detector_reads_each_image_and_names_unreadable_ones(tmp_path):
    for i in (1, 2):
        (tmp_path / f"{i}.png").write_bytes(b"x")
    ground_truth = coco.read_annotations(annotations())
    pairs, missing = coco.image_files(ground_truth, str(tmp_path))
    assert missing == [] and [i for i, _ in pairs] == [1, 2]
    per_file = {str(tmp_path / f"{i}.png"): [(c, b) for j, c, b in BOXES if j == i] for i in (1, 2)}

    def read(path):
        if path.endswith("2.png"):
            raise ValueError(f"Cannot read image {path!r}")
        return path

    result, unreadable = coco.evaluate_detector(FakeDetector(per_file), ground_truth, pairs, read)
    assert len(unreadable) == 1 and "2.png" in unreadable[0]
    assert result["stats"]["AP"] == pytest.approx(1.0)  # image 2 is left out, not counted missed


def test_bad_annotation_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        coco.read_annotations(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json is not JSON"):
        coco.read_annotations(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text('{"images": []}')
    with pytest.raises(ValueError, match=r"without \['annotations', 'categories'\]"):
        coco.read_annotations(tmp_path / "partial.json")
