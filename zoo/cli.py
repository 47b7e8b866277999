"""`nasnet-app zoo | classify | export` subcommands.

    nasnet-app zoo list [--json]
    nasnet-app zoo download NAME [--source keras|slim] [--no-top]
    nasnet-app zoo convert --preset NAME --weights FILE --out MODEL.keras [--no-top]
    nasnet-app classify IMAGE... (--preset NAME [--weights FILE] | --model MODEL.keras)
                        [--top K] [--json]
    nasnet-app export --model MODEL.keras --format savedmodel|hub --out DIR

`add_commands(subparsers)` registers them on the main `nasnet-app` parser;
every command returns an exit code and reports failures as one line on stderr.
"""

import argparse
import json
import sys

from nasnet_app.zoo import presets as registry

EXPECTED_ERRORS = (ValueError, OSError, KeyError)


def _fail(message):
    text = " ".join(str(message).split())
    print(f"nasnet-app: error: {text}", file=sys.stderr)
    return 1


def _guarded(function):
    """Runs a command, turning expected failures into a one-line message and exit code 1."""

    def run(args):
        try:
            return function(args)
        except EXPECTED_ERRORS as error:
            return _fail(error)

    run.__name__ = function.__name__
    return run


def _summary(preset):
    accuracy = preset.get("accuracy") or {}
    scores = ", ".join(f"{k} {v}" for k, v in accuracy.items() if k.startswith("top"))
    return {
        "name": preset["name"],
        "description": preset.get("description", ""),
        "input_size": preset["input_size"],
        "classes": preset["classes"],
        "parameters": preset.get("parameters"),
        "accuracy": scores,
        "weights": sorted(preset.get("weights", {})),
    }


@_guarded
def cmd_list(args):
    rows = [_summary(registry.get_preset(name)) for name in registry.list_presets()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        size = "x".join(str(s) for s in row["input_size"])
        sources = ", ".join(row["weights"]) or "none"
        print(f"{row['name']:28s} {size:>8s}  {row['classes']:>5d} classes  weights: {sources}")
        if row["accuracy"]:
            print(f"{'':28s} {row['description']} ({row['accuracy']})")
    return 0


@_guarded
def cmd_download(args):
    from nasnet_app.zoo.api import fetch_weights

    path, _ = fetch_weights(args.name, args.source, include_top=not args.no_top)
    print(path)
    return 0


@_guarded
def cmd_convert(args):
    from nasnet_app.zoo.api import convert

    out = convert(
        args.preset,
        args.weights,
        args.out,
        include_top=not args.no_top,
        include_background=args.include_background,
    )
    print(out)
    return 0


def _model_classifier(path, batch_size):
    import keras

    from nasnet_app.classifier import ImageClassifier

    model = keras.models.load_model(path)
    classes = getattr(model, "classes", None)
    if classes is None:
        classes = int(model.output_shape[-1])
    labels = "imagenet" if classes in (1000, 1001) else None
    return ImageClassifier(model, {"labels": labels}, batch_size=batch_size)


def _classifier(args):
    from nasnet_app.zoo.api import load_classifier

    if args.model:
        return _model_classifier(args.model, args.batch_size)
    weights = args.weights or "imagenet"
    return load_classifier(args.preset, weights=weights, batch_size=args.batch_size)


@_guarded
def cmd_classify(args):
    from nasnet_app.classifier import load_image

    if args.model and args.weights:
        return _fail("`--weights` goes with --preset, not with --model.")
    if args.top < 1:
        return _fail(f"`--top` must be a positive integer. Received: --top {args.top}")
    images = [load_image(path) for path in args.images]  # a bad file stops before any work
    classifier = _classifier(args)
    results = classifier.decode(classifier.predict(images), top=args.top)
    records = [
        {"file": path, "top": [prediction._asdict() for prediction in top]}
        for path, top in zip(args.images, results, strict=True)
    ]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for record in records:
        print(record["file"])
        for p in record["top"]:
            wnid = f" {p['wnid']}" if p["wnid"] else ""
            print(f"  {p['probability']:7.2%}  {p['index']:>4d}{wnid}  {p['name']}")
    return 0


@_guarded
def cmd_export(args):
    import keras

    from nasnet_app.zoo import hub

    model = keras.models.load_model(args.model)
    if args.format == "savedmodel":
        out = hub.export_saved_model(model, args.out, overwrite=args.overwrite)
    else:
        out = hub.export_hub(model, args.out, overwrite=args.overwrite)
    print(out)
    return 0


def _add_zoo(subparsers):
    zoo = subparsers.add_parser("zoo", help="pretrained presets: list, download, convert")
    commands = zoo.add_subparsers(dest="zoo_command", required=True)
    listing = commands.add_parser("list", help="list the registered presets")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)
    fetch = commands.add_parser("download", help="download a preset's weights into the cache")
    fetch.add_argument("name", help="preset name (see `zoo list`)")
    fetch.add_argument("--source", help="weight source: keras (default) or slim")
    fetch.add_argument("--no-top", action="store_true", help="the file without the top layer")
    fetch.set_defaults(func=cmd_download)
    convert = commands.add_parser("convert", help="weights file -> .keras model")
    convert.add_argument("--preset", required=True, help="preset name")
    convert.add_argument(
        "--weights", required=True, help=".h5, TF-Slim prefix or .tar.gz, .weights.h5, or URL"
    )
    convert.add_argument("--out", required=True, help="the .keras file to write")
    convert.add_argument("--no-top", action="store_true", help="leave out the top layer")
    convert.add_argument(
        "--include-background", action="store_true", help="keep TF-Slim's 1001-class head"
    )
    convert.set_defaults(func=cmd_convert)


def _add_classify(subparsers):
    classify = subparsers.add_parser("classify", help="classify image files")
    classify.add_argument("images", nargs="+", help="JPEG, PNG, BMP or GIF files")
    source = classify.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="preset name (with its published weights)")
    source.add_argument("--model", help="a .keras model")
    classify.add_argument("--weights", help="weights for --preset (file or URL)")
    classify.add_argument("--top", type=int, default=5, help="classes per image (default 5)")
    classify.add_argument("--batch-size", type=int, default=32, help="images per model call")
    classify.add_argument("--json", action="store_true", help="print JSON")
    classify.set_defaults(func=cmd_classify)


def _add_export(subparsers):
    export = subparsers.add_parser("export", help="export a .keras model as SavedModel / TF Hub")
    export.add_argument("--model", required=True, help="the .keras model")
    export.add_argument("--format", required=True, choices=("savedmodel", "hub"))
    export.add_argument("--out", required=True, help="folder to create")
    export.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    export.set_defaults(func=cmd_export)


def add_commands(subparsers):
    """Registers `zoo`, `classify` and `export` on an argparse subparsers object."""
    _add_zoo(subparsers)
    _add_classify(subparsers)
    _add_export(subparsers)


def main(argv=None):
    """Runs these commands without the main `nasnet-app` entry point."""
    parser = argparse.ArgumentParser(prog="nasnet-app")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
