"""`nasnet-app detect` and `nasnet-app evaluate-detection` on the reduced-width reference detector."""

import json

import numpy as np
import pytest
from PIL import Image

import nasnet_app.cli as cli
from nasnet_app.cli import detect, evaluate_detection
from tests.test_detection_reference import REFERENCE_CONFIG, reference_path

CONFIG = json.dumps({**REFERENCE_CONFIG, "first_stage_max_proposals": 20})


def preset_args():
    checkpoint = reference_path("faster_rcnn_nas_f8", "ckpt", "model.ckpt")
    return ["--preset", "faster_rcnn_nasnet_a_coco", "--weights", checkpoint, "--config", CONFIG]


@pytest.fixture
def run(monkeypatch):
    """Runs `nasnet-app ARGV` in-process; returns the exit code."""
    modules = tuple(cli.COMMAND_MODULES)
    missing = tuple(m for m in (detect, evaluate_detection) if m not in modules)
    monkeypatch.setattr(cli, "COMMAND_MODULES", modules + missing)
    return cli.main


def test_commands_are_wired_into_nasnet_app():
    assert detect in cli.COMMAND_MODULES and evaluate_detection in cli.COMMAND_MODULES


@pytest.fixture
def images(tmp_path):
    rng = np.random.RandomState(0)
    paths = []
    for name, shape in (("a.png", (120, 160, 3)), ("b.jpg", (90, 70))):
        path = tmp_path / name
        Image.fromarray(rng.randint(0, 256, shape).astype(np.uint8)).save(path)
        paths.append(str(path))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    return paths, str(tmp_path / "broken.png")


@pytest.mark.slow
def test_detect_json_and_annotated_pngs(run, images, tmp_path, capsys):
    paths, broken = images
    out = tmp_path / "out"
    code = run(["detect", *paths, broken, *preset_args(), "--score-threshold", "0.03",
                "--json", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1  # one image was unreadable
    error_lines = [line for line in captured.err.splitlines() if "error" in line]
    assert len(error_lines) == 1 and "broken.png" in error_lines[0]
    records = json.loads(captured.out)
    assert [r["file"] for r in records] == paths
    for record in records:
        scores = [d["score"] for d in record["detections"]]
        assert scores == sorted(scores, reverse=True) and min(scores) >= 0.03
        for found in record["detections"]:
            assert list(found) == ["box", "box_pixels", "class_id", "name", "score"]
            assert all(0.0 <= v <= 1.0 for v in found["box"]) and 1 <= found["class_id"] <= 90
    assert json.loads((out / "detections.json").read_text()) == records
    for name in ("a.png", "b.png"):
        assert Image.open(out / name).size == Image.open(paths[name == "b.png"]).size


def test_detect_with_only_bad_images_fails_before_loading_a_model(run, images, capsys):
    _, broken = images
    assert run(["detect", broken, "--preset", "no_such_preset"]) == 1
    assert "broken.png" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "m.keras", "--weights", "w.ckpt"], "`--weights` goes with --preset"),
        (["--preset", "faster_rcnn_nasnet_a_coco", "--config", "{bad"], "`--config` must be"),
        (["--preset", "faster_rcnn_nasnet_a_coco", "--config", "[1]"], "`--config` must be"),
    ],
)
def test_detect_usage_errors_exit_2(run, images, capsys, extra, message):
    paths, _ = images
    assert run(["detect", paths[0], *extra]) == 2
    assert message in capsys.readouterr().err


def test_detect_unknown_preset_is_a_usage_error(run, images, capsys):
    paths, _ = images
    assert run(["detect", paths[0], "--preset", "nasnet_a_mobile_imagenet"]) == 2
    assert "`--preset` must be one of faster_rcnn_nasnet_a_coco" in capsys.readouterr().err


@pytest.mark.slow
def test_zoo_convert_with_config_then_detect_with_the_model(run, images, tmp_path, capsys):
    paths, _ = images
    model = tmp_path / "detector.keras"
    assert run(["zoo", "convert", *preset_args(), "--out", str(model)]) == 0
    assert capsys.readouterr().out.strip() == str(model)
    assert run(["detect", paths[0], *preset_args(), "--score-threshold", "0", "--json"]) == 0
    from_preset = json.loads(capsys.readouterr().out)
    assert run(["detect", paths[0], "--model", str(model), "--score-threshold", "0", "--json"]) == 0
    from_model = json.loads(capsys.readouterr().out)
    assert from_model == from_preset


def _annotations_from(records, folder):
    """COCO annotations whose ground truth is exactly the given detections."""
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        width, height = Image.open(record["file"]).size
        images.append({"id": image_id, "file_name": record["file"].rsplit("/", 1)[-1],
                       "height": height, "width": width})  # fmt: skip
        for found in record["detections"]:
            ymin, xmin, ymax, xmax = found["box_pixels"]
            box = [xmin, ymin, xmax - xmin, ymax - ymin]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": found["class_id"], "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})  # fmt: skip
    categories = [{"id": i, "name": f"c{i}"} for i in range(1, 91)]
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))  # fmt: skip
    return path


@pytest.mark.slow
def test_evaluate_detection_scores_one_on_its_own_detections(run, images, tmp_path, capsys):
    paths, _ = images
    assert run(["detect", paths[0], *preset_args(), "--score-threshold", "0", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    annotations = _annotations_from(records, tmp_path)
    report = tmp_path / "report"
    code = run(["evaluate-detection", "--annotations", str(annotations), "--images",
                str(tmp_path), *preset_args(), "--out", str(report)])  # fmt: skip
    assert code == 0
    written = json.loads((report / "report.json").read_text())
    assert written["stats"]["AP"] == pytest.approx(1.0)
    assert written["stats"]["AP50"] == pytest.approx(1.0)
    assert written["images"] == 1
    assert json.loads(capsys.readouterr().out)["AP"] == pytest.approx(1.0)
    assert (report / "precision_recall.png").exists()


def test_evaluate_detection_names_missing_images_before_any_work(run, tmp_path, capsys):
    annotations = tmp_path / "instances.json"
    annotations.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "gone.jpg", "height": 10, "width": 10}],
        "annotations": [], "categories": [{"id": 1, "name": "person"}],
    }))  # fmt: skip
    code = run(["evaluate-detection", "--annotations", str(annotations), "--images",
                str(tmp_path), "--preset", "no_such", "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 1
    assert "1 annotated images are not in" in capsys.readouterr().err
