"""`nasnet-app export`: a `.keras` model as a SavedModel, TF-Hub modules or LiteRT, with metadata.

    nasnet-app export (--model MODEL.keras | --preset NAME) --format savedmodel|hub --out DIR
    nasnet-app export (--model MODEL.keras | --preset NAME) --format tflite
                      [--quantize none|float16|dynamic|int8] [--calibration DIR] --out FILE.tflite

Besides the SavedModel(s), the folder holds `metadata.json`: what the
exported graph expects as input (its size, float32 values already scaled to
the value range, how to resize and crop) and the class names by output
index. The graph does not preprocess: feed it images prepared as written there.
A `.tflite` file carries the same facts inside it (`nasnet_app.zoo.tflite`).
"""

import os

from nasnet_app.cli import _common

METADATA_FILE = "metadata.json"
METADATA_FORMAT = "nasnet_app.export/1"
TFLITE_QUANTIZATIONS = ("none", "float16", "dynamic", "int8")  # nasnet_app.zoo.tflite's


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers, "export", help="export a model as SavedModel / TF Hub / LiteRT (.tflite)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="the .keras model")
    source.add_argument("--preset", help="a zoo preset, with its pretrained weights")
    parser.add_argument("--format", required=True, choices=("savedmodel", "hub", "tflite"))
    parser.add_argument("--out", required=True, help="folder to create (tflite: a .tflite file)")
    parser.add_argument(
        "--quantize", choices=TFLITE_QUANTIZATIONS, help="tflite: the quantisation (default none)"
    )
    parser.add_argument(
        "--calibration", help="tflite int8: a folder of images (searched recursively), or archive"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    parser.set_defaults(run=run, tensorflow=True)


def _converter_settings(model):
    """The preprocessing a model carries (its image converter's settings), or None."""
    for name in ("preprocessor", "image_converter", "converter"):
        converter = getattr(model, name, None)
        if converter is not None and hasattr(converter, "get_config"):
            return converter.get_config()
    return None


def _sidecar(model_path):
    import json

    if model_path is None:
        return {}
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), _common.CLASSES_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def export_metadata(model, model_path, export_format):
    """The JSON record written beside an export (see the module docstring)."""
    shape = [None if s is None else int(s) for s in model.input_shape[1:]]
    settings = _converter_settings(model) or {}
    sidecar = _sidecar(model_path)
    size = settings.get("image_size") or sidecar.get("image_size") or shape[:2]
    return {
        "format": METADATA_FORMAT,
        "export_format": export_format,
        "source_model": os.path.abspath(model_path) if model_path else model.name,
        "input": {
            "shape": [None, *shape],
            "dtype": "float32",
            "image_size": list(size),
            "value_range": list(
                settings.get("value_range") or sidecar.get("value_range") or [-1, 1]
            ),
            "pixels": "RGB; scale 0-255 pixels linearly to value_range before feeding",
            "resize": settings.get("resize", "crop"),
            "central_crop_fraction": settings.get("crop_fraction", 1.0),
        },
        "outputs": int(model.output_shape[-1]),
        "class_names": _common.model_class_names(model, model_path),
    }


def _check_tflite_options(args):
    if args.format != "tflite":
        if args.quantize or args.calibration:
            raise _common.UsageError("`--quantize` and `--calibration` go with --format tflite.")
        return
    if (args.quantize == "int8") != bool(args.calibration):
        raise _common.UsageError(
            "`--calibration` must be given with --quantize int8, and only then. "
            f"Received: --quantize {args.quantize or 'none'}"
        )
    if not args.out.endswith(".tflite"):
        raise _common.UsageError(f"`--out` must be a .tflite file. Received: {args.out}")
    if args.calibration and not os.path.exists(args.calibration):
        raise _common.CommandFailed(f"`--calibration` {args.calibration} does not exist.")


def _source_model(args):
    if args.model:
        return _common.load_model(args.model)
    from nasnet_app import zoo

    return zoo.load(_common.check_preset(args.preset), weights="pretrained")


def _export_tflite(model, args):
    from nasnet_app.zoo.tflite import export_tflite

    export_tflite(
        model,
        args.out,
        args.quantize or "none",
        calibration=args.calibration,
        class_names=_common.model_class_names(model, args.model),
        name=args.preset or os.path.basename(args.model),
    )
    print(args.out)
    return 0


def run(args):
    from nasnet_app.io_utils import atomic_write_json
    from nasnet_app.zoo import hub

    _check_tflite_options(args)
    if os.path.exists(args.out) and not args.overwrite:
        raise _common.CommandFailed(
            f"`--out` {args.out} must not exist; pass --overwrite to replace it."
        )
    _common.check_output_folder(args.out)
    model = _source_model(args)
    if args.format == "tflite":
        return _export_tflite(model, args)
    metadata = export_metadata(model, args.model, args.format)
    if args.format == "savedmodel":
        out = hub.export_saved_model(model, args.out, overwrite=args.overwrite)
    else:
        out = hub.export_hub(model, args.out, overwrite=args.overwrite)
    atomic_write_json(os.path.join(out, METADATA_FILE), metadata)
    print(out)
    return 0
