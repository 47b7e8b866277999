"""`nasnet-app evaluate`: accuracy, per-class scores, cost and figures of a model on images.

nasnet-app evaluate (--model MODEL.keras | --model MODEL.tflite | --preset NAME) --data DIR
                    --out REPORT_DIR
"""

import os
import time

from nasnet_app.cli import _common


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers,
        "evaluate",
        help="evaluate a model on an image dataset and write a report",
        description="Top-1/top-5 accuracy, per-class precision and recall, parameters, "
        "Mult-Adds and latency; writes REPORT_DIR/report.json, a confusion matrix and a grid "
        "of misclassified images.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model", help="a saved .keras model (classes.json beside it is used) or a .tflite file"
    )
    source.add_argument("--preset", help="a zoo preset, with its pretrained weights")
    parser.add_argument("--data", required=True, help="folder of class folders, archive, ...")
    parser.add_argument("--out", required=True, help="the report folder")
    parser.add_argument("--split", help="default: test, else val, else all images")
    parser.add_argument("--batch-size", type=_common.positive_int, default=32)
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    _common.add_mixed_precision(parser, "run the model")
    _common.add_skip_bad_images(parser)
    parser.set_defaults(run=run, tensorflow=True)


def _preset_model(name):
    """`(model, class names, preprocessing dict)` of a zoo preset."""
    from nasnet_app import zoo

    preset = zoo.get_preset(_common.check_preset(name))
    model = zoo.load(name, weights="pretrained")
    labels = preset.labels
    if labels == "imagenet":
        from nasnet_app.classifier import imagenet_labels

        labels = imagenet_labels()
    return model, labels, preset.preprocessing.to_dict()


def _as_data_names(names, data_classes):
    """Class names as the data names them: (wnid, name) pairs become WordNet ids when the
    data's folders are named that way, else names."""
    if names is None or all(isinstance(name, str) for name in names):
        return names
    wnids = [wnid for wnid, _ in names]
    return wnids if set(data_classes) <= set(wnids) else [name for _, name in names]


def _check_outputs(model, path, class_names, data):
    outputs = int(model.output_shape[-1])
    if class_names is None and outputs != data.info.num_classes:
        raise _common.CommandFailed(
            f"{path} has {outputs} outputs but the data has {data.info.num_classes} classes, "
            f"and no {_common.CLASSES_FILE} beside the model names its classes."
        )


def _summary_line(report):
    return (
        f"top-1 {report['top1']:.4f}, top-{report['top5_k']} {report['top5']:.4f} on "
        f"{report['examples']} images ({report['split']}); report: {report['files']['report']}"
    )


def _run_tflite(args, data):
    """The report of `evaluate_model`, for a LiteRT file (no Mult-Adds: it has no Keras graph)."""
    from nasnet_app.evaluate.report import write_report
    from nasnet_app.zoo import tflite

    started = time.time()
    classifier = tflite.TFLiteClassifier(args.model, batch_size=args.batch_size)
    split = args.split or data.evaluation_split
    data = data.with_image_size(classifier.input_size)
    probabilities, labels = tflite.predict_tflite_split(classifier, data, split, args.batch_size)
    converter = classifier.converter
    header = {
        "model": args.model,
        "input_size": list(classifier.input_size),
        "value_range": None if converter.value_range is None else list(converter.value_range),
        "format": "tflite",
        "quantization": classifier.metadata.get("quantization"),
        "file_bytes": os.path.getsize(args.model),
    }
    extra = {}
    if not args.no_latency:
        extra["latency"] = tflite.measure_tflite_latency(classifier)
        extra["latency_ms_per_image"] = {k: v["ms_per_image"] for k, v in extra["latency"].items()}
    names = _as_data_names(classifier.metadata.get("class_names"), data.class_names)
    report = write_report(
        args.out, probabilities, labels, data, split, names, header, extra, started=started
    )
    print(_summary_line(report))
    return 0


def run(args):
    with _common.mixed_precision(args):
        return _run(args)


def _run(args):
    from nasnet_app.evaluate.report import evaluate_model

    data = _common.check_data_source(args.data, **_common.bad_image_options(args, args.out))
    if args.model and args.model.endswith(".tflite"):
        return _run_tflite(args, data)
    preprocessing = {}
    if args.preset:
        model, class_names, preprocessing = _preset_model(args.preset)
    else:
        model = _common.load_model(args.model)
        class_names = _common.model_class_names(model, args.model)
        _check_outputs(model, args.model, class_names, data)
    class_names = _as_data_names(class_names, data.class_names)
    report = evaluate_model(
        model,
        data,
        args.out,
        split=args.split,
        batch_size=args.batch_size,
        class_names=class_names,
        value_range=tuple(preprocessing.get("value_range") or (-1.0, 1.0)),
        crop_fraction=preprocessing.get("crop_fraction", 1.0),
        latency=not args.no_latency,
        model_name=args.preset or args.model,
    )
    print(_summary_line(report))
    return 0
