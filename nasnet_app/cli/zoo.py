"""`nasnet-app zoo list | download | convert`: the pretrained presets.

nasnet-app zoo list [--json]
nasnet-app zoo download NAME [--source keras|slim] [--no-top]
nasnet-app zoo convert --preset NAME --weights FILE --out MODEL.keras [--no-top]
"""

import json

from nasnet_app.cli import _common


def add_parser(subparsers):
    zoo = _common.command_parser(
        subparsers, "zoo", help="pretrained presets: list, download, convert"
    )
    commands = zoo.add_subparsers(
        dest="zoo_command", metavar="ACTION", required=True, parser_class=_common.Parser
    )
    listing = _common.command_parser(commands, "list", help="list the registered presets")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_list, tensorflow=True, command_name="zoo list")

    fetch = _common.command_parser(
        commands, "download", help="download a preset's weights into the cache"
    )
    fetch.add_argument("name", help="preset name (see `nasnet-app zoo list`)")
    fetch.add_argument("--source", help="weight source: keras (default) or slim")
    fetch.add_argument("--no-top", action="store_true", help="the file without the top layer")
    fetch.set_defaults(run=run_download, tensorflow=True, command_name="zoo download")

    convert = _common.command_parser(commands, "convert", help="weights file -> .keras model")
    convert.add_argument("--preset", required=True, help="preset name")
    convert.add_argument(
        "--weights", required=True, help=".h5, TF-Slim prefix or .tar.gz, .weights.h5, or URL"
    )
    convert.add_argument("--out", required=True, help="the .keras file to write")
    convert.add_argument("--no-top", action="store_true", help="leave out the top layer")
    convert.add_argument(
        "--include-background", action="store_true", help="keep TF-Slim's 1001-class head"
    )
    convert.add_argument(
        "--config",
        help="detection presets: JSON object (or file) overriding config fields by the OD API's "
        'names, e.g. \'{"num_conv_filters": 8, "image_size": 256}\'',
    )
    convert.set_defaults(run=run_convert, tensorflow=True, command_name="zoo convert")


def _summary(record):
    preset = record.to_dict()
    accuracy = preset.get("accuracy") or {}
    scores = ", ".join(f"{k} {v}" for k, v in accuracy.items() if k.startswith("top"))
    return {
        "name": preset["name"],
        "description": preset.get("description", ""),
        "task": preset.get("task"),
        "input_size": preset.get("input_size"),
        "classes": preset.get("classes"),
        "parameters": preset.get("parameters"),
        "accuracy": scores,
        "weights": sorted(preset.get("weights", {})),
    }


def run_list(args):
    from nasnet_app.zoo import presets

    rows = [_summary(presets.get_preset(name)) for name in presets.list_presets()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        size = "x".join(str(s) for s in row["input_size"] or ["any"])
        sources = ", ".join(row["weights"]) or "none"
        classes = f"{row['classes']:>5d} classes" if row["classes"] else ""
        print(f"{row['name']:28s} {size:>8s}  {classes}  weights: {sources}")
        if row["accuracy"]:
            print(f"{'':28s} {row['description']} ({row['accuracy']})")
    return 0


def run_download(args):
    from nasnet_app.zoo.api import fetch_weights

    path, _ = fetch_weights(
        _common.check_preset(args.name, "NAME"), args.source, include_top=not args.no_top
    )
    print(path)
    return 0


def run_convert(args):
    from nasnet_app.zoo import detection
    from nasnet_app.zoo.api import convert

    _common.check_output_folder(args.out)
    if detection.is_detection_preset(args.preset):
        from nasnet_app.cli.detect import parse_config

        config = parse_config(args.config)
        print(detection.convert_detector(args.preset, args.weights, args.out, config=config))
        return 0
    if args.config:
        raise _common.UsageError("`--config` goes with a detection preset.")
    out = convert(
        _common.check_preset(args.preset),
        args.weights,
        args.out,
        include_top=not args.no_top,
        include_background=args.include_background,
    )
    print(out)
    return 0
