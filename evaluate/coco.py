"""COCO detection evaluation with pycocotools: the 12 COCO stats, per-class AP and a PR plot.

pycocotools (the COCO team's API, maintained on PyPI with wheels for every
current Python) is the evaluator the TF Object Detection API itself used for
the published COCO numbers, including the NASNet paper's 43.1 mAP, so figures
from here are comparable with those; faster-coco-eval is a faster
re-implementation, which matters for training loops, not for one evaluation
run of a model this slow.

Detections go in COCO's result format: `{"image_id", "category_id", "bbox":
[x, y, width, height] (pixels), "score"}`.

Example:

>>> from nasnet_app.evaluate import coco
>>> coco.STAT_NAMES[:3]
('AP', 'AP50', 'AP75')
"""

import contextlib
import io
import json
import os

import numpy as np

from nasnet_app.io_utils import atomic_path, atomic_write_json

STAT_NAMES = (
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
)  # fmt: skip
REPORT_FILE = "report.json"
PR_PLOT_FILE = "precision_recall.png"


def read_annotations(source):
    """A `pycocotools.coco.COCO` from an `instances.json` path or its dict.

    Raises:
        ValueError: the file is missing, not JSON, or lacks `images`,
            `annotations` or `categories` (named in the message).
    """
    from pycocotools.coco import COCO

    if isinstance(source, dict):
        data, name = source, "annotations"
    else:
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise ValueError(f"`annotations` file {name} does not exist.")
        try:
            with open(name, encoding="utf-8") as handle:
                data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"`annotations` file {name} is not JSON: {error}") from None
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if not isinstance(data, dict) or missing:
        raise ValueError(
            f"`annotations` {name} must be COCO instances JSON with images, annotations and "
            f"categories. Received one without {missing}"
        )
    ground_truth = COCO()
    ground_truth.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
    return ground_truth


def to_coco_results(image_id, detections):
    """COCO result dicts of one image's `nasnet_app.detection.Detections`."""
    results = []
    for box, class_id, score in zip(
        detections.boxes_pixels, detections.class_ids, detections.scores
    ):
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        results.append(
            {
                "image_id": int(image_id),
                "category_id": int(class_id),
                "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                "score": float(score),
            }
        )
    return results


def evaluate(ground_truth, results, image_ids=None):
    """COCO bbox evaluation of `results` (COCO result dicts) against `ground_truth`.

    Args:
        ground_truth: a `COCO` (see `read_annotations`), a path or a dict.
        results: a list of COCO result dicts.
        image_ids: evaluate these images only (default: every annotated image).

    Returns:
        `{"stats": {name: value}, "per_class_ap": {name: AP}, "precision":
        [10 IoUs, 101 recalls, classes] array, "summary": pycocotools' text}`.
    """
    from pycocotools.cocoeval import COCOeval

    if not hasattr(ground_truth, "getImgIds"):
        ground_truth = read_annotations(ground_truth)
    categories = ground_truth.loadCats(ground_truth.getCatIds())
    if not results:
        return _empty_result(categories)
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        detections = ground_truth.loadRes([dict(r) for r in results])
        evaluator = COCOeval(ground_truth, detections, "bbox")
        if image_ids is not None:
            evaluator.params.imgIds = sorted(int(i) for i in image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # area all, 100 detections
    return {
        "stats": {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats)},
        "per_class_ap": _per_class_ap(precision, categories, evaluator.params.catIds),
        "precision": precision,
        "recall_thresholds": np.asarray(evaluator.params.recThrs),
        "summary": text.getvalue().strip().splitlines()[-12:],
    }


def _per_class_ap(precision, categories, category_ids):
    names = {c["id"]: c["name"] for c in categories}
    ap = {}
    for k, category_id in enumerate(category_ids):
        values = precision[:, :, k]
        values = values[values > -1]
        ap[names[category_id]] = float(values.mean()) if values.size else None
    return ap


def _empty_result(categories):
    return {
        "stats": {name: 0.0 for name in STAT_NAMES},
        "per_class_ap": {c["name"]: 0.0 for c in categories},
        "precision": np.zeros((10, 101, len(categories))),
        "recall_thresholds": np.linspace(0.0, 1.0, 101),
        "summary": ["no detections: every precision and recall is 0"],
    }


def plot_precision_recall(result, path):
    """Writes the class-averaged precision-recall curves at IoU 0.5, 0.75 and 0.5:0.95."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    precision, recall = result["precision"], result["recall_thresholds"]
    figure, axes = plt.subplots(figsize=(5, 4))
    for label, rows in (("IoU 0.50", [0]), ("IoU 0.75", [5]), ("IoU 0.50:0.95", range(10))):
        values = np.where(precision[list(rows)] > -1, precision[list(rows)], np.nan)
        with np.errstate(all="ignore"), _quiet_nan_mean():
            curve = np.nanmean(values, axis=(0, 2))
        axes.plot(recall, np.nan_to_num(curve), label=label)
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    axes.set_title(f"COCO bbox, AP {result['stats']['AP']:.3f}")
    axes.legend(loc="lower left")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path


@contextlib.contextmanager
def _quiet_nan_mean():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def write_report(result, out_dir, extra=None):
    """`report.json` (stats, per-class AP, pycocotools' summary) and the PR plot in `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    report = {
        "stats": result["stats"],
        "per_class_ap": result["per_class_ap"],
        "summary": result["summary"],
        "precision_recall_plot": PR_PLOT_FILE,
        **(extra or {}),
    }
    atomic_write_json(os.path.join(out_dir, REPORT_FILE), report)
    plot_precision_recall(result, os.path.join(out_dir, PR_PLOT_FILE))
    return report


def image_files(ground_truth, images_dir):
    """`[(image id, path)]` of every annotated image, and the paths that do not exist."""
    pairs, missing = [], []
    for image in ground_truth.loadImgs(ground_truth.getImgIds()):
        path = os.path.join(images_dir, image["file_name"])
        (pairs if os.path.isfile(path) else missing).append((image["id"], path))
    return pairs, [path for _, path in missing]


def evaluate_detector(detector, ground_truth, images, read_image, score_threshold=0.0):
    """Runs `detector.predict` on `images` (`[(id, path)]`) and evaluates the detections.

    Returns:
        `(result, unreadable)`: the `evaluate` result over the images read,
        and one message per image that could not be read.
    """
    results, evaluated, unreadable = [], [], []
    for image_id, path in images:
        try:
            image = read_image(path)
        except (OSError, ValueError) as error:
            unreadable.append(str(error))
            continue
        found = detector.predict([image], score_threshold=score_threshold)[0]
        results += to_coco_results(image_id, found)
        evaluated.append(image_id)
    if not evaluated:
        return None, unreadable
    return evaluate(ground_truth, results, image_ids=evaluated), unreadable
