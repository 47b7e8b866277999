"""`nasnet-app draw` and `nasnet-app catalogue`: architecture drawings and the published cells.

    nasnet-app catalogue [--json]
    nasnet-app draw nasnet_a --out nasnet_a.png
    nasnet-app draw my_genotype.json --out normal.png --cell normal
    nasnet-app draw runs/nb201/best_cell.json --out nb201.png    # NAS-Bench-201 or macro runs

`draw` takes a catalogue name, a genotype JSON file, or the `best_cell.json`
of any search (NASNet genotype, NAS-Bench-201 cell, macro network).
"""

import json
import os

from nasnet_app.cli import _common

CELL_CHOICES = ("both", "normal", "reduction")


def add_parser(subparsers):
    draw = _common.command_parser(
        subparsers,
        "draw",
        help="draw a genotype's cells (or a search's best_cell.json) as a PNG",
        description="Draw a NASNet genotype's normal and reduction cells, a NAS-Bench-201 cell "
        "or a macro network as a graph PNG.",
    )
    draw.add_argument("genotype", help="a catalogue name, a genotype JSON or a best_cell.json")
    draw.add_argument("--out", required=True, help="output PNG file (in an existing folder)")
    draw.add_argument(
        "--cell", choices=CELL_CHOICES, default="both", help="which cell to draw (default: both)"
    )
    draw.set_defaults(run=run_draw)

    catalogue = _common.command_parser(
        subparsers,
        "catalogue",
        help="list the published cells and their hashes",
        description="List the catalogue of published cells with their genotype hashes.",
    )
    catalogue.add_argument(
        "--json", action="store_true", help="print every genotype as JSON instead of a table"
    )
    catalogue.set_defaults(run=run_catalogue)


def _looks_like_file(text):
    return text.endswith(".json") or os.sep in text or os.path.exists(text)


def _read_json(path):
    if not os.path.isfile(path):
        raise _common.CommandFailed(f"the file {path} does not exist.")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise _common.CommandFailed(f"{path} is not a JSON file: {error}") from None


def _search_architecture(data, source):
    """`(space name, validated architecture)` of a search's `best_cell.json`."""
    from nasnet_app.search import spaces

    name = data["space"]
    if name not in ("nasbench201", "macro"):
        raise _common.CommandFailed(
            f"{source} is from the {name!r} space; draw knows nasnet, nasbench201 and macro."
        )
    try:
        if name == "nasbench201":
            return name, spaces.NASBench201Space().from_data(data.get("architecture"))
        return name, spaces.MacroArchitecture.from_dict(data.get("architecture")).to_dict()
    except ValueError as error:
        raise _common.CommandFailed(f"{source}: {_common.one_line(error)}") from None


def _check_out(args):
    if not args.out.lower().endswith(".png"):
        raise _common.UsageError(f"`--out` must be a file ending in .png. Received: {args.out}")
    _common.check_output_folder(args.out)


def _draw_genotype(genotype, args):
    from nasnet_app.evaluate.cells import draw_cell, draw_genotype

    if args.cell == "both":
        return draw_genotype(genotype, args.out)
    title = f"{genotype.name or 'genotype'}: {args.cell} cell"
    return draw_cell(getattr(genotype, args.cell), args.out, title=title)


def _resolve(text):
    from nasnet_app.genotype import resolve_genotype

    try:
        return resolve_genotype(text)
    except ValueError as error:
        if _looks_like_file(text):
            raise _common.CommandFailed(f"{text}: {_common.one_line(error)}") from None
        raise _common.UsageError(_common.one_line(error)) from None


def run_draw(args):
    _check_out(args)
    data = _read_json(args.genotype) if _looks_like_file(args.genotype) else None
    if isinstance(data, dict) and "space" in data:
        from nasnet_app.evaluate import cells

        if args.cell != "both":
            raise _common.UsageError("--cell applies to NASNet genotypes only.")
        space, architecture = _search_architecture(data, args.genotype)
        draw = cells.draw_nasbench201 if space == "nasbench201" else cells.draw_macro
        path = draw(architecture, args.out)
    else:
        path = _draw_genotype(_resolve(args.genotype), args)
    print(f"Wrote {path}")
    return 0


def run_catalogue(args):
    """Prints the catalogue names with their hashes (or everything as JSON)."""
    from nasnet_app.catalogue import GENOTYPES

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
