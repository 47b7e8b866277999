"""Tests for nasnet_app.evaluate.cli_cells: the `draw` and `catalogue` subcommands."""

import argparse
import json

import pytest

from nasnet_app.catalogue import GENOTYPES
from nasnet_app.evaluate.cli_cells import add_commands
from nasnet_app.genotype import Genotype


def run(*argv):
    parser = argparse.ArgumentParser(prog="nasnet-app")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


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
    "genotype, out, message",
    [
        ("nasnet_z", "x.png", "nasnet_z"),
        ("missing.json", "x.png", "missing.json"),
        ("nasnet_a", "x.jpg", "`path` must be a file path ending in .png"),
    ],
)
def test_draw_errors_exit_2_with_a_message(tmp_path, capsys, genotype, out, message):
    assert run("draw", genotype, "--out", str(tmp_path / out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasnet-app draw: error:") and message in err
    assert list(tmp_path.iterdir()) == []


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
