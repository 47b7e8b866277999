"""Tests of `nasnet-app draw` and `nasnet-app catalogue` (nasnet_app/cli/draw.py)."""

import json

import pytest

from nasnet_app.catalogue import GENOTYPES
from nasnet_app.cli import main
from nasnet_app.genotype import Genotype


def run(*argv):
    return main(list(argv))


def is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_a_catalogue_name(tmp_path, capsys):
    out = tmp_path / "nasnet_a.png"
    assert run("draw", "nasnet_a", "--out", str(out)) == 0
    assert is_png(out)
    assert str(out) in capsys.readouterr().out


def test_draw_one_cell_of_a_json_file(tmp_path):
    source = tmp_path / "enas.json"
    GENOTYPES["enas"].save(source)
    out = tmp_path / "reduction.png"
    assert run("draw", str(source), "--out", str(out), "--cell", "reduction") == 0
    assert is_png(out)


@pytest.mark.parametrize(
    "genotype, out, code, message",
    [
        ("nasnet_z", "x.png", 2, "nasnet_z"),
        ("missing.json", "x.png", 1, "missing.json"),
        ("nasnet_a", "x.jpg", 2, "`--out` must be a file ending in .png"),
        ("nasnet_a", "no_folder/x.png", 1, "no_folder does not exist"),
    ],
)
def test_draw_errors_exit_with_one_line(tmp_path, capsys, genotype, out, code, message):
    genotype = str(tmp_path / genotype) if genotype.endswith(".json") else genotype
    assert run("draw", genotype, "--out", str(tmp_path / out)) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("nasnet-app draw: error:") and message in err
    assert len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


NB201_ARCH = (
    "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
)
MACRO = {
    "format": "nasnet_app.macro/1",
    "layers": [
        {"filter_height": 3, "filter_width": 3, "filters": 24, "stride": 1, "inputs": []},
        {"filter_height": 5, "filter_width": 3, "filters": 36, "stride": 1, "inputs": [0]},
        {"filter_height": 1, "filter_width": 7, "filters": 48, "stride": 1, "inputs": [0, 1]},
        {"filter_height": 3, "filter_width": 3, "filters": 24, "stride": 1, "inputs": [1]},
    ],
}


@pytest.mark.parametrize("space, architecture", [("nasbench201", NB201_ARCH), ("macro", MACRO)])
def test_draw_the_best_cell_of_nasbench201_and_macro_searches(
    tmp_path, capsys, space, architecture
):
    source = tmp_path / "best_cell.json"
    source.write_text(json.dumps({"space": space, "architecture": architecture}))
    out = tmp_path / f"{space}.png"
    assert run("draw", str(source), "--out", str(out)) == 0
    assert is_png(out) and str(out) in capsys.readouterr().out


def test_draw_a_broken_search_cell_names_the_file(tmp_path, capsys):
    source = tmp_path / "best_cell.json"
    source.write_text(json.dumps({"space": "nasbench201", "architecture": "|conv_9x9~0|"}))
    assert run("draw", str(source), "--out", str(tmp_path / "x.png")) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(source) in err
    assert run("draw", str(source), "--out", str(tmp_path / "x.png"), "--cell", "normal") == 2


def test_draw_requires_out():
    with pytest.raises(SystemExit):
        run("draw", "nasnet_a")


def test_catalogue_lists_names_and_hashes(capsys):
    assert run("catalogue") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + len(GENOTYPES)
    for name, genotype in GENOTYPES.items():
        assert any(line.split()[:2] == [name, genotype.hash()] for line in lines[1:])


def test_catalogue_json_round_trips(capsys):
    assert run("catalogue", "--json") == 0
    entries = json.loads(capsys.readouterr().out)
    assert set(entries) == set(GENOTYPES)
    for name, entry in entries.items():
        assert entry.pop("hash") == GENOTYPES[name].hash()
        assert Genotype.from_dict(entry) == GENOTYPES[name]
