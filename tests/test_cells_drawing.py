"""Tests for nasnet_app.evaluate.cells: cell and genotype drawings as PNG files."""

import numpy as np
import pytest
from PIL import Image

from nasnet_app.catalogue import GENOTYPES
from nasnet_app.evaluate.cells import draw_cell, draw_genotype
from nasnet_app.genotype import NASNET_A, Block, Cell

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def ink_fraction(pixels):
    return float((pixels < 200).mean())


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_every_catalogue_genotype_draws(tmp_path, name):
    path = tmp_path / f"{name}.png"
    assert draw_genotype(name, path) == str(path)
    pixels = read_png(path)
    assert pixels.shape[0] > 400 and pixels.shape[1] > 400
    assert 0.01 < ink_fraction(pixels) < 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.png"]


def test_draw_cell_writes_a_png(tmp_path):
    path = tmp_path / "sub" / "normal.png"
    draw_cell(NASNET_A.normal, path, title="NASNet-A normal cell")
    assert read_png(path).size > 0


def test_different_cells_draw_differently(tmp_path):
    tiny = Cell([Block((0, 1), ("identity", "max_pool_3x3"))])
    draw_cell(tiny, tmp_path / "tiny.png")
    draw_cell(NASNET_A.normal, tmp_path / "nasnet.png")
    tiny_pixels = read_png(tmp_path / "tiny.png")
    assert tiny_pixels.shape != read_png(tmp_path / "nasnet.png").shape
    assert ink_fraction(tiny_pixels) > 0.005


def test_cells_with_deep_chains_and_concat_combine_draw(tmp_path):
    chain = Cell(
        [
            Block((0, 1), ("sep_conv_3x3", "identity")),
            Block((2, 2), ("conv_1x7_7x1", "dil_conv_3x3"), "concat"),
            Block((3, 1), ("none", "conv_3x3")),
        ],
        concat=[0, 1, 2, 4],
    )
    draw_cell(chain, tmp_path / "chain.png")
    assert ink_fraction(read_png(tmp_path / "chain.png")) > 0.01


def test_draw_cell_accepts_the_list_form(tmp_path):
    draw_cell([[0, "identity", 1, "avg_pool_3x3"]], tmp_path / "list.png")
    assert read_png(tmp_path / "list.png").size > 0


def test_draw_genotype_accepts_a_json_file(tmp_path):
    source = tmp_path / "g.json"
    GENOTYPES["darts_v2"].save(source)
    draw_genotype(str(source), tmp_path / "g.png")
    assert read_png(tmp_path / "g.png").size > 0


@pytest.mark.parametrize("path", ["cell.jpg", "cell", 3])
def test_path_must_end_in_png(tmp_path, path):
    target = tmp_path / path if isinstance(path, str) else path
    with pytest.raises(ValueError, match="`path` must be a file path ending in .png"):
        draw_cell(NASNET_A.normal, target)


def test_bad_cell_and_genotype_are_named(tmp_path):
    with pytest.raises(ValueError, match="`cell` must be a Cell"):
        draw_cell("nasnet_a", tmp_path / "x.png")
    with pytest.raises(ValueError, match="nasnet_z"):
        draw_genotype("nasnet_z", tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_drawing_leaves_the_old_file(tmp_path):
    path = tmp_path / "keep.png"
    draw_cell(NASNET_A.normal, path)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        draw_cell([[0, "not_an_op", 1, "identity"]], path)
    assert path.read_bytes() == before
