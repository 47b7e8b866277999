"""`nasnet-app draw` and `nasnet-app catalogue`: cell drawings and the published cells.

Example (shell):

    nasnet-app catalogue
    nasnet-app draw nasnet_a --out nasnet_a.png
    nasnet-app draw my_genotype.json --out normal.png --cell normal
"""

import json
import sys

from nasnet_app.catalogue import GENOTYPES
from nasnet_app.evaluate.cells import draw_cell, draw_genotype
from nasnet_app.genotype import resolve_genotype

CELL_CHOICES = ("both", "normal", "reduction")


def add_commands(subparsers):
    """Registers the `draw` and `catalogue` subcommands on an argparse subparsers object."""
    draw = subparsers.add_parser(
        "draw",
        help="draw a genotype's cells as a graph PNG",
        description="Draw the normal and reduction cells of a genotype as a graph PNG.",
    )
    draw.add_argument(
        "genotype", help=f"a catalogue name ({', '.join(GENOTYPES)}) or a genotype JSON file"
    )
    draw.add_argument("--out", required=True, help="output PNG file")
    draw.add_argument(
        "--cell", choices=CELL_CHOICES, default="both", help="which cell to draw (default: both)"
    )
    draw.set_defaults(func=run_draw)

    catalogue = subparsers.add_parser(
        "catalogue",
        help="list the published cells and their hashes",
        description="List the catalogue of published cells with their genotype hashes.",
    )
    catalogue.add_argument(
        "--json", action="store_true", help="print every genotype as JSON instead of a table"
    )
    catalogue.set_defaults(func=run_catalogue)


def _error(command, error):
    print(f"nasnet-app {command}: error: {error}", file=sys.stderr)
    return 2


def run_draw(args):
    """Draws the genotype named by `args.genotype` to `args.out`; returns an exit code."""
    try:
        genotype = resolve_genotype(args.genotype)
        if args.cell == "both":
            path = draw_genotype(genotype, args.out)
        else:
            cell = getattr(genotype, args.cell)
            title = f"{genotype.name or 'genotype'}: {args.cell} cell"
            path = draw_cell(cell, args.out, title=title)
    except ValueError as error:
        return _error("draw", error)
    print(f"Wrote {path}")
    return 0


def run_catalogue(args):
    """Prints the catalogue names with their hashes (or everything as JSON)."""
    if args.json:
        entries = {
            name: {"hash": genotype.hash(), **genotype.to_dict()}
            for name, genotype in GENOTYPES.items()
        }
        print(json.dumps(entries, indent=2))
        return 0
    width = max(len(name) for name in GENOTYPES)
    print(f"{'name':<{width}}  hash              blocks")
    for name, genotype in GENOTYPES.items():
        print(f"{name:<{width}}  {genotype.hash()}  {len(genotype.normal.blocks)}")
    return 0
