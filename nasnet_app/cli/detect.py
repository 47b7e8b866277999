"""`nasnet-app detect`: COCO objects in image files, as JSON and annotated PNGs.

    nasnet-app detect IMAGE... (--preset NAME [--weights FILE] [--config JSON] | --model FILE)
                      [--score-threshold T] [--json] [--out DIR]

`--json` prints one object per image, `{"file", "detections": [{"box" (ymin,
xmin, ymax, xmax, normalised), "box_pixels", "class_id" (COCO id), "name",
"score"}, ...]}`, most confident first. `--out DIR` writes `detections.json`
and one annotated `<image name>.png` per image. An unreadable image is named on
stderr; the others are still answered, and the exit code is 1.
"""

import json
import os

from nasnet_app.cli import _common

DEFAULT_PRESET = "faster_rcnn_nasnet_a_coco"


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers, "detect", help="detect COCO objects in image files (Faster R-CNN NASNet-A)"
    )
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF, ...)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help=f"detection preset (e.g. {DEFAULT_PRESET})")
    source.add_argument("--model", help="a .keras detector (from `zoo convert`)")
    parser.add_argument(
        "--weights", help="OD API checkpoint, folder or .tar.gz for --preset (default: download)"
    )
    parser.add_argument("--config", help="JSON object (or file) overriding preset config fields")
    parser.add_argument(
        "--score-threshold", type=_common.non_negative_float, default=0.5,
        help="keep detections scoring at least this (default 0.5)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--out", help="folder for detections.json and annotated PNGs")
    parser.set_defaults(run=run, tensorflow=True)


def parse_config(text, option="--config"):
    """A JSON object given inline or as a file path."""
    if text is None:
        return None
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as handle:
            text = handle.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _common.UsageError(
            f"`{option}` must be a JSON object. Received: {text!r} ({error})"
        ) from None
    if not isinstance(value, dict):
        raise _common.UsageError(f"`{option}` must be a JSON object. Received: {text!r}")
    return value


def load_detector(args, config):
    """The detector named by `--preset/--weights/--config` (parsed: `config`) or `--model`."""
    if args.model:
        if args.weights or args.config:
            raise _common.UsageError("`--weights` and `--config` go with --preset, not --model.")
        model = _common.load_model(args.model)
        if not hasattr(model, "detect_preprocessed"):
            raise _common.CommandFailed(f"{args.model} is not a detector (NASNetFasterRCNN).")
        return model
    from nasnet_app.zoo import detection

    if not detection.is_detection_preset(args.preset):
        raise _common.UsageError(
            f"`--preset` must be one of {', '.join(detection.DETECTION_PRESETS)}. "
            f"Received: {args.preset}"
        )
    return detection.load_detector(args.preset, weights=args.weights or "pretrained", config=config)


def png_names(paths):
    """One distinct `<stem>.png` per image (a number is added where stems repeat)."""
    names, seen = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(f"{stem}.png" if count == 0 else f"{stem}_{count}.png")
    return names


def _print_text(records):
    for record in records:
        print(f"{record['file']}: {len(record['detections'])} detections")
        for found in record["detections"]:
            box = ", ".join(f"{v:.0f}" for v in found["box_pixels"])
            print(f"  {found['score']:6.3f}  {found['class_id']:>3d} {found['name']:16s} [{box}]")


def run(args):
    from nasnet_app.io_utils import atomic_write_json

    if args.weights and args.model:
        raise _common.UsageError("`--weights` goes with --preset, not with --model.")
    if args.out:
        _common.check_output_folder(args.out)
    config = parse_config(args.config)
    images, bad = _common.read_images(_common.image_files(args.images))
    if images:
        detector = load_detector(args, config)
        found = detector.predict(list(images.values()), score_threshold=args.score_threshold)
        records = [
            {"file": path, "detections": detections.to_json()}
            for path, detections in zip(images, found, strict=True)
        ]
        if args.out:
            from nasnet_app.detection.draw import save_annotated

            os.makedirs(args.out, exist_ok=True)
            atomic_write_json(os.path.join(args.out, "detections.json"), records)
            for name, image, detections in zip(png_names(images), images.values(), found):
                save_annotated(os.path.join(args.out, name), image, detections)
        if args.json:
            print(json.dumps(records, indent=2))
        else:
            _print_text(records)
    if bad:
        count = f"{len(bad)} of {len(bad) + len(images)} images unreadable: " if images else ""
        raise _common.CommandFailed(count + "; ".join(bad))
    return 0
