import os
import subprocess
import sys

import numpy as np
from PIL import Image

TOOL = os.path.join(os.path.dirname(__file__), "..", "tools", "make_glyph_dataset.py")


def _run(*args):
    return subprocess.run(
        [sys.executable, TOOL, *args], capture_output=True, text=True, timeout=120
    )


def test_builds_train_and_test_folders_with_held_out_fonts(tmp_path):
    out = tmp_path / "glyphs"
    result = _run("--out", str(out), "--train-per-class", "2", "--test-per-class", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    train = sorted(os.listdir(out / "train"))
    assert train == sorted(os.listdir(out / "test"))
    assert len(train) == 10
    for name in train:
        assert len(os.listdir(out / "train" / name)) == 2
        assert len(os.listdir(out / "test" / name)) == 1
    image = np.asarray(Image.open(next((out / "train" / train[0]).iterdir())))
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image.std() > 5
    assert "held-out test fonts" in result.stdout


def test_fonts_of_train_and_test_are_disjoint():
    sys.path.insert(0, os.path.dirname(TOOL))
    try:
        import make_glyph_dataset as tool
    finally:
        sys.path.pop(0)
    fonts = [f"font{i}.ttf" for i in range(8)]
    train, test = tool.split_fonts(fonts)
    assert set(train).isdisjoint(test) and sorted(train + test) == fonts and len(test) == 2


def test_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = _run("--out", str(tmp_path))
    assert result.returncode == 2
    assert "--out must be a new or empty folder" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "x"
