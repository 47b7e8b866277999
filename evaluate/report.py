"""Evaluation reports: accuracy, per-class metrics, size, cost and speed of a model on a dataset.

`evaluate_model(model, data, out_dir)` writes `out_dir/report.json` (`top1`,
`top5`, per-class precision and recall, the confusion matrix, parameters,
Mult-Adds, measured latency at batch 1 and 32), `confusion_matrix.png` and
`misclassified.png` (a grid of wrongly classified images).

Example:

>>> from nasnet_app.evaluate.report import evaluate_model, load_model_with_classes
>>> model, classes = load_model_with_classes("runs/demo/model.keras")  # doctest: +SKIP
>>> report = evaluate_model(model, "demo", "reports/demo", class_names=classes)  # doctest: +SKIP
>>> report["top1"]  # doctest: +SKIP
0.61
"""

import os
import platform
import time

import numpy as np

from nasnet_app import data as data_lib
from nasnet_app.evaluate import plots
from nasnet_app.evaluate.flops import count_mult_adds
from nasnet_app.evaluate.metrics import classification_summary, measure_latency
from nasnet_app.io_utils import atomic_write_json


def load_model_with_classes(path):
    """A `.keras` model and its class names (carried by the model, else from
    `classes.json` beside it, else `None`)."""
    from nasnet_app.model import load_model, model_class_names

    model = load_model(path)
    return model, model_class_names(model, path)


def _model_input_size(model, fallback):
    shape = getattr(model, "_input_shape_arg", None)
    if shape is None:
        try:
            shape = tuple(model.input_shape)[1:]
        except (AttributeError, ValueError):
            shape = None
    if shape is None or shape[0] is None or shape[1] is None:
        return tuple(fallback)
    return (int(shape[0]), int(shape[1]))


def _label_map(data_classes, model_classes, outputs):
    """Data label -> model output index, by class name (identity when the model has none)."""
    if model_classes is None:
        if outputs != len(data_classes):
            raise ValueError(
                f"The model has {outputs} outputs but the data has {len(data_classes)} classes; "
                "pass `class_names` (the model's classes, by output index)."
            )
        return np.arange(len(data_classes)), list(data_classes)
    if len(model_classes) != outputs:
        raise ValueError(
            f"`class_names` must name the model's {outputs} outputs. "
            f"Received: {len(model_classes)} names"
        )
    index = {name: i for i, name in enumerate(model_classes)}
    unknown = [name for name in data_classes if name not in index]
    if unknown:
        raise ValueError(
            f"The data's classes {unknown[:10]} are not classes of the model "
            f"(model classes begin {list(model_classes)[:10]})."
        )
    return np.array([index[name] for name in data_classes]), list(model_classes)


def _as_probabilities(outputs, model):
    activation = getattr(model, "classifier_activation", None)
    name = getattr(activation, "__name__", activation)
    if name == "softmax" or (
        np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1, atol=1e-3)
    ):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def predict_split(
    model, data, split, batch_size=32, value_range=(-1.0, 1.0), crop_fraction=1.0, converter=None
):
    """Class probabilities and labels for a whole split, in evaluation order.

    Images are prepared by `converter`, by default the model's own
    (`model.preprocessor`, what `classify` uses); `value_range` and
    `crop_fraction` apply to models without one.
    """
    import tensorflow as tf

    converter = converter or _own_converter(model)
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    pipeline = data.dataset(
        split, batch_size, value_range=value_range, crop_fraction=crop_fraction,
        converter=converter,
    )  # fmt: skip
    outputs, labels = [], []
    try:
        for images, batch_labels in pipeline:
            outputs.append(np.asarray(forward(images), np.float32))
            labels.append(batch_labels.numpy())
    except tf.errors.InvalidArgumentError:
        data.check_images([split])  # names the file that TensorFlow could not decode
        raise
    return _as_probabilities(np.concatenate(outputs), model), np.concatenate(labels)


def _compute_dtype(model):
    """The dtype the model's layers compute in (`"float32"`, `"bfloat16"`, ...)."""
    dtypes = {layer.compute_dtype for layer in model._flatten_layers() if layer.weights}
    lower = sorted(dtypes - {"float32"})
    return lower[0] if lower else "float32"


def _own_converter(model):
    from nasnet_app.preprocessing import NASNetImageConverter

    own = getattr(model, "preprocessor", None)
    return own if isinstance(own, NASNetImageConverter) else None


def _misclassified(data, split, probabilities, labels, class_names, limit):
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    # Most confident mistakes first: the most informative to look at.
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]], kind="stable")][:limit]
    records = [
        {
            "index": int(i),
            "source": data.source_name(split, int(i)),
            "true": class_names[labels[i]],
            "predicted": class_names[predictions[i]],
            "confidence": float(probabilities[i, predictions[i]]),
        }
        for i in wrong
    ]
    return wrong, records


def _cost(model, input_size, latency, latency_repeats):
    shape = (*input_size, 3)
    cost = {
        "parameters": int(model.count_params()),
        "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_weights)),
        "mult_adds": int(count_mult_adds(model, shape)),
    }
    if latency:
        measured = measure_latency(model, shape, batch_sizes=(1, 32), repeats=latency_repeats)
        cost["latency_ms_per_image"] = {k: v["ms_per_image"] for k, v in measured.items()}
        cost["latency"] = measured
        cost["latency_device"] = (
            f"{platform.machine()} {platform.processor()}, {os.cpu_count()} CPUs".strip()
        )
    return cost


def evaluate_model(
    model,
    data,
    out_dir,
    split=None,
    batch_size=32,
    class_names=None,
    value_range=(-1.0, 1.0),
    crop_fraction=1.0,
    converter=None,
    latency=True,
    latency_repeats=10,
    max_misclassified=25,
    model_name=None,
):
    """Evaluates `model` on one split of `data` and writes the report and figures.

    Args:
        model: a Keras classifier (softmax or logits outputs).
        data: an `ImageData` or anything `nasnet_app.data.load` accepts; a
            folder of class folders is evaluated whole.
        out_dir: the report folder.
        split: default `"test"`, else `"val"`, else `"train"` (all images).
        batch_size: images per model call.
        class_names: the model's classes by output index; data classes are
            matched to them by name. Default: the data's classes, same order.
        value_range: pixel scaling the model expects.
        crop_fraction: central crop before resizing (0.875 for ImageNet presets).
        converter: the `NASNetImageConverter` that prepares the images; by
            default the model's own (`value_range` and `crop_fraction` are
            then unused), as `classify` does.
        latency: measure latency at batch 1 and 32 (ms/image).
        latency_repeats: timed calls per batch size.
        max_misclassified: images in the misclassified grid.
        model_name: recorded in the report.

    Returns:
        The report dict (also written as `out_dir/report.json`).
    """
    started = time.time()
    data = data_lib.load(data)
    split = split or data.evaluation_split
    input_size = _model_input_size(model, data.info.image_size)
    data = data.with_image_size(input_size)
    converter = converter or _own_converter(model)
    probabilities, labels = predict_split(
        model, data, split, batch_size, value_range, crop_fraction, converter
    )
    if converter is not None:
        value_range = converter.value_range
    header = {
        "model": model_name or model.name,
        "input_size": list(input_size),
        "value_range": None if value_range is None else list(value_range),
        "compute_dtype": _compute_dtype(model),
    }
    return write_report(
        out_dir, probabilities, labels, data, split, class_names, header,
        extra=_cost(model, input_size, latency, latency_repeats),
        max_misclassified=max_misclassified, started=started,
    )  # fmt: skip


def write_report(
    out_dir, probabilities, labels, data, split, class_names=None, header=None, extra=None,
    max_misclassified=25, started=None,
):  # fmt: skip
    """Writes `report.json` and the figures for predictions of any runtime (Keras, LiteRT).

    Args:
        out_dir: the report folder.
        probabilities: `(N, outputs)` in evaluation order; `labels`: the data's labels.
        data, split: the `ImageData` and split they were made from.
        class_names: the model's classes by output index (matched to the data's by name).
        header: leading report fields (model, input size, format, ...).
        extra: more fields (cost, latency).
        max_misclassified: images in the misclassified grid.
        started: `time.time()` at the start, for the report's `seconds`.
    """
    label_map, names = _label_map(data.class_names, class_names, probabilities.shape[1])
    labels = label_map[labels]
    report = {**(header or {}), "data": data.info.source, "split": split}
    report.update(classification_summary(probabilities, labels, names))
    report.update(extra or {})
    wrong, report["misclassified"] = _misclassified(
        data, split, probabilities, labels, names, max_misclassified
    )
    report["files"] = _write_figures(out_dir, report, data, split, wrong)
    if started is not None:
        report["seconds"] = round(time.time() - started, 3)
    atomic_write_json(report["files"]["report"], report)
    return report


def _write_figures(out_dir, report, data, split, wrong):
    out_dir = os.fspath(out_dir)
    files = {
        "report": os.path.join(out_dir, "report.json"),
        "confusion_matrix": os.path.join(out_dir, "confusion_matrix.png"),
        "misclassified": os.path.join(out_dir, "misclassified.png"),
    }
    names = list(report["per_class"])
    title = f"{report['model']}: top-1 {report['top1']:.3f} on {report['examples']} images"
    plots.plot_confusion_matrix(
        report["confusion_matrix"], names, files["confusion_matrix"], title=title
    )
    records = report["misclassified"]
    plots.plot_misclassified(
        data.images(split, wrong),
        [r["true"] for r in records],
        [r["predicted"] for r in records],
        [r["confidence"] for r in records],
        files["misclassified"],
    )
    return files
