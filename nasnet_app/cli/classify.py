"""`nasnet-app classify`: the top classes of image files.

    nasnet-app classify IMAGE_OR_FOLDER... (--preset NAME [--weights FILE] | --model MODEL.keras
                        | --model MODEL.tflite)
                        [--top K] [--json]

A fine-tuned model's class names come with it (`classes.json` beside the
model, as `finetune` writes it). An unreadable image is named on stderr; the
others are still answered, and the exit code is 1.
"""

import json

from nasnet_app.cli import _common


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers, "classify", help="classify image files (or the images in a folder)"
    )
    parser.add_argument("images", nargs="+", help="JPEG, PNG, BMP or GIF files, or folders")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="preset name (with its published weights)")
    source.add_argument("--model", help="a .keras model or a .tflite file")
    parser.add_argument("--weights", help="weights for --preset (file or URL)")
    parser.add_argument(
        "--top", type=_common.positive_int, default=5, help="classes per image (default 5)"
    )
    parser.add_argument(
        "--batch-size", type=_common.positive_int, default=32, help="images per model call"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    _common.add_mixed_precision(parser, "run the model")
    parser.set_defaults(run=run, tensorflow=True)


def _model_labels(model, path):
    names = _common.model_class_names(model, path)
    outputs = int(model.output_shape[-1])
    if names is not None:
        if len(names) != outputs:
            raise _common.CommandFailed(
                f"{path} has {outputs} outputs but its class names list {len(names)} classes."
            )
        return names
    return "imagenet" if outputs in (1000, 1001) else None


def _classifier(args):
    from nasnet_app.classifier import ImageClassifier

    if args.model and args.model.endswith(".tflite"):
        from nasnet_app.zoo.tflite import TFLiteClassifier

        return TFLiteClassifier(args.model, batch_size=args.batch_size)
    if args.model:
        model = _common.load_model(args.model)
        labels = _model_labels(model, args.model)
        return ImageClassifier(model, {"labels": labels}, batch_size=args.batch_size)
    from nasnet_app.zoo.api import load_classifier

    return load_classifier(
        _common.check_preset(args.preset),
        weights=args.weights or "imagenet",
        batch_size=args.batch_size,
    )


def _print(records, as_json):
    if as_json:
        print(json.dumps(records, indent=2))
        return
    for record in records:
        print(record["file"])
        for p in record["top"]:
            wnid = f" {p['wnid']}" if p["wnid"] else ""
            print(f"  {p['probability']:7.2%}  {p['index']:>4d}{wnid}  {p['name']}")


def run(args):
    with _common.mixed_precision(args):
        return _run(args)


def _run(args):
    if args.model and args.weights:
        raise _common.UsageError("`--weights` goes with --preset, not with --model.")
    images, bad = _common.read_images(_common.image_files(args.images))
    if images:
        classifier = _classifier(args)
        results = classifier.decode(classifier.predict(list(images.values())), top=args.top)
        records = [
            {"file": path, "top": [prediction._asdict() for prediction in top]}
            for path, top in zip(images, results, strict=True)
        ]
        _print(records, args.json)
    if bad:
        count = f"{len(bad)} of {len(bad) + len(images)} images unreadable: " if images else ""
        raise _common.CommandFailed(count + "; ".join(bad))
    return 0
