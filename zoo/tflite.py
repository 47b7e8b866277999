"""LiteRT (TFLite) export with float16, dynamic-range or int8 quantisation, and a runner.

* `export_tflite(model, out, quantize=...)` writes a `.tflite` file of a Keras
  image classifier: float32 (`"none"`), float16 weights (`"float16"`), int8
  weights with float activations (`"dynamic"`) or full-integer int8
  post-training quantisation (`"int8"`: int8 weights, activations, input and
  output; calibrated on images of a folder, searched recursively, prepared by
  the model's own `NASNetImageConverter`).
* The graph takes prepared images (float32 in the converter's value range, or
  their int8 quantisation): the preprocessing is not inside it. It is written
  into the file instead, as the custom metadata entry `nasnet_app` of the
  flatbuffer (`Model.metadata`, a JSON document in its own buffer): the
  converter's settings (image size, central crop, resize mode, antialias,
  value range), the class names, whether the outputs are probabilities or
  logits, and the quantisation (with the calibration images used).
  `read_metadata(path)` reads it back.
* `TFLiteClassifier(path)` runs such a file with the LiteRT interpreter
  (`ai-edge-litert`, the `[mobile]` extra; TensorFlow's deprecated
  `tf.lite.Interpreter` when it is not installed), applying the recorded
  preprocessing; `predict`, `decode` and `classify` behave as
  `nasnet_app.classifier.ImageClassifier`'s.
* `predict_tflite_split(classifier, data, split)` runs a whole dataset split
  through a file (`nasnet-app evaluate --model FILE.tflite` writes its report).

Example:

>>> from nasnet_app import zoo
>>> from nasnet_app.zoo.tflite import TFLiteClassifier, export_tflite
>>> model = zoo.load("nasnet_a_cifar10", weights="pretrained")  # doctest: +SKIP
>>> export_tflite(model, "cifar_int8.tflite", "int8", calibration="cifar10/train")  # doctest: +SKIP
>>> TFLiteClassifier("cifar_int8.tflite").classify("cat.jpg", top=3)  # doctest: +SKIP
"""

import contextlib
import json
import os
import sys
import tempfile
import warnings

import numpy as np

from nasnet_app.classifier import (
    ImageReadError,
    _image_list,
    _is_path,
    converter_for,
    load_image,
)
from nasnet_app.image_classifier import decode_predictions, softmax
from nasnet_app.io_utils import atomic_write_bytes

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
METADATA_NAME = "nasnet_app"
METADATA_FORMAT = "nasnet_app.litert/1"
FILE_IDENTIFIER = b"TFL3"
CONVERTER_KEYS = ("image_size", "crop_fraction", "resize", "antialias", "value_range")
CALIBRATION_SPLITS = ("train", "val", "test")


class ConversionError(ValueError):
    """A model the LiteRT converter cannot convert; the message names the model and the op."""


class CalibrationError(ValueError):
    """A calibration source without readable images; the message names it."""


class LiteRTModelError(ValueError):
    """A file that is not a readable LiteRT model made by `export_tflite`; the message names it."""


# --------------------------------------------------------------------------- export


def export_tflite(
    model,
    out,
    quantize="none",
    calibration=None,
    num_calibration=300,
    class_names=None,
    name=None,
):
    """Writes `model` as a LiteRT `.tflite` file with its preprocessing and class names.

    Args:
        model: a Keras image classifier taking `(N, H, W, 3)` images; its
            `preprocessor` (a `NASNetImageConverter`) says how raw images are
            prepared (other models: the default converter for their input size).
        out: the `.tflite` file to write (atomically).
        quantize: `"none"` (float32), `"float16"`, `"dynamic"` (int8 weights)
            or `"int8"` (full-integer, calibrated on `calibration`).
        calibration: for `"int8"`: a folder searched recursively for images,
            an image archive or an `ImageData` (its train split, else val, else test).
        num_calibration: at most this many calibration images (evenly spread
            over the sorted files).
        class_names: the class names by output index; default `model.class_names`.
        name: the model's name recorded in the metadata; default `model.name`.

    Returns:
        The metadata written into the file (a dict).

    Raises:
        ConversionError: the model cannot be converted (the message names the op).
        CalibrationError: `calibration` holds no readable image.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"`quantize` must be one of {', '.join(QUANTIZATIONS)}. Received: quantize={quantize!r}"
        )
    if (quantize == "int8") != (calibration is not None):
        raise ValueError(
            "`calibration` must be given with quantize='int8' and only then. "
            f"Received: quantize={quantize!r}, calibration={calibration!r}"
        )
    if not isinstance(num_calibration, int) or num_calibration < 1:
        raise ValueError(
            f"`num_calibration` must be a positive integer. Received: {num_calibration!r}"
        )
    name = name or getattr(model, "name", type(model).__name__)
    converter = _image_converter(model, name)
    quantization = {"mode": quantize}
    samples = None
    if quantize == "int8":
        images, quantization["calibration"] = calibration_images(calibration, num_calibration)
        samples = [converter.convert_image(image).numpy()[None] for image in images]
    names = _names(class_names if class_names is not None else model)
    outputs = int(model.output_shape[-1])
    if names is not None and len(names) != outputs:
        raise ValueError(
            f"`class_names` must name the model's {outputs} outputs. Received: {len(names)} names"
        )
    content = _convert(model, converter.image_size, quantize, samples, name)
    metadata = {
        "format": METADATA_FORMAT,
        "model": name,
        "preprocessor": {key: converter.get_config()[key] for key in CONVERTER_KEYS},
        "class_names": names,
        "outputs": "probabilities" if _outputs_probabilities(model) else "logits",
        "quantization": quantization,
    }
    atomic_write_bytes(out, with_metadata(content, metadata))
    return metadata


def _image_converter(model, name):
    """The model's converter, once the model is seen to take images of the size it makes."""
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        shape = None
    if shape is None or len(shape) != 4 or shape[-1] != 3:
        raise ConversionError(
            f"cannot convert the model {name} to LiteRT: `model` must take images "
            f"(batch, height, width, 3). Received: input_shape={shape}"
        )
    converter = converter_for(model)
    if tuple(s for s in shape[1:3] if s is not None) not in ((), converter.image_size):
        raise ConversionError(
            f"cannot convert the model {name} to LiteRT: its input {shape[1:3]} must be the "
            f"size its converter prepares. Received: image_size={converter.image_size}"
        )
    return converter


def _names(source):
    names = source if isinstance(source, (list, tuple)) else getattr(source, "class_names", None)
    if not names:
        return None
    return [name if isinstance(name, str) else [str(part) for part in name] for name in names]


def _outputs_probabilities(model):
    activation = getattr(model, "classifier_activation", None)
    if activation is None and getattr(model, "layers", None):
        activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", activation) == "softmax"


def _frozen_forward(model, image_size):
    """The inference graph of `model` with its variables folded into constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec((None, *image_size, 3), tf.float32, name="images")
    forward = tf.function(lambda images: model(images, training=False), input_signature=[spec])
    return convert_variables_to_constants_v2(forward.get_concrete_function())


@contextlib.contextmanager
def _converter_output_captured(log):
    """Appends to `log` what the converter writes straight to file descriptors 1 and 2.

    It prints pages of MLIR diagnostics and progress lines there; a failure's
    cause is in the exception (or in this log, see `_first_error_line`).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as capture:
        for fd in saved:
            os.dup2(capture.fileno(), fd)
        try:
            with warnings.catch_warnings():
                # TF 2 ignores input statistics; the warning asking for them is spurious.
                warnings.filterwarnings("ignore", "Statistics for quantized inputs")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            capture.seek(0)
            log.append(capture.read().decode("utf-8", errors="replace"))


def _convert(model, image_size, quantize, samples, name):
    log = []
    try:
        with _converter_output_captured(log):
            return _run_converter(model, image_size, quantize, samples)
    except Exception as error:  # the converter raises many types, each with a long log
        reason = _first_error_line(f"{error}\n{''.join(log)}")
        raise ConversionError(f"cannot convert the model {name} to LiteRT: {reason}") from error


def _run_converter(model, image_size, quantize, samples):
    import tensorflow as tf

    frozen = _frozen_forward(model, image_size)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = lambda: ([sample] for sample in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def _first_error_line(text):
    """The line of a converter log that says what failed (the log runs to pages)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return lines[0] if lines else "the converter failed without saying why"


# --------------------------------------------------------------------------- calibration


def calibration_images(source, limit=300):
    """`(images, record)`: up to `limit` uint8 RGB images of `source` and what was used.

    `source` is a folder (searched recursively; unreadable files are skipped
    and counted), an image archive or an `ImageData`. The images are spread
    evenly over the sorted files, so a folder of class folders gives each
    class its share.

    Raises:
        CalibrationError: `source` is missing or holds no readable image.
    """
    from nasnet_app import data as data_lib

    if isinstance(source, data_lib.ImageData):
        return _dataset_images(source, limit)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise CalibrationError(f"the calibration folder {path} does not exist.")
    if not os.path.isdir(path):
        try:
            return _dataset_images(data_lib.load(path), limit)
        except (ValueError, OSError) as error:
            raise CalibrationError(f"the calibration data {path} cannot be read: {error}") from None
    files = _image_files(path)
    if not files:
        raise CalibrationError(f"the calibration folder {path} holds no image files.")
    images, bad = [], []
    for file in _spread(files, limit):
        try:
            images.append(load_image(file))
        except ImageReadError as error:
            bad.append(str(error))
    if not images:
        raise CalibrationError(
            f"the calibration folder {path}: none of its {len(bad)} images can be read "
            f"(first: {bad[0]})"
        )
    record = {"source": path, "images": len(images), "unreadable": len(bad)}
    return images, record


def _image_files(folder):
    from nasnet_app.data import IMAGE_EXTENSIONS

    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found += [
            os.path.join(root, n) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return found


def _spread(items, limit):
    if len(items) <= limit:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _dataset_images(data, limit):
    split = next(s for s in CALIBRATION_SPLITS if s in data.splits)
    part = data.split(split)
    indices = _spread(range(part.count), limit)
    if not indices:
        raise CalibrationError(f"the calibration data {data.info.source} has no images.")
    raw = part.pixels_at(indices) if hasattr(part, "pixels_at") else map(part.pixels, indices)
    images = [np.asarray(image) for image in raw]
    record = {"source": data.info.source, "split": split, "images": len(images), "unreadable": 0}
    return images, record


# --------------------------------------------------------------------------- metadata


def _schema():
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        from tensorflow.lite.python import schema_py_generated
    return schema_py_generated


def with_metadata(content, metadata):
    """The `.tflite` bytes `content` with `metadata` (a JSON-able dict) as entry `nasnet_app`."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [m for m in model.metadata or [] if m.name != METADATA_NAME.encode()]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _model_bytes(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`model` file {path} does not exist.")
    with open(path, "rb") as handle:
        content = handle.read()
    if content[4:8] != FILE_IDENTIFIER:
        raise LiteRTModelError(
            f"`model` must be a LiteRT .tflite file. Received: {path} "
            f"(no {FILE_IDENTIFIER.decode()} flatbuffer identifier)"
        )
    return content


def read_metadata(path_or_content, path=None, required=True):
    """The metadata `export_tflite` wrote into a `.tflite` file (a dict).

    A file without it raises `LiteRTModelError`, or gives `{}` when not `required`.
    """
    if isinstance(path_or_content, (bytes, bytearray)):
        content = path_or_content
    else:
        path = os.fspath(path_or_content)
        content = _model_bytes(path)
    try:
        model = _schema().Model.GetRootAs(content, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                return json.loads(_buffer_bytes(content, model.Buffers(entry.Buffer())))
    except Exception as error:  # a damaged flatbuffer fails anywhere in its accessors
        raise LiteRTModelError(
            f"{path or 'the model'} is a damaged .tflite file: {error}"
        ) from None
    if not required:
        return {}
    raise LiteRTModelError(
        f"{path or 'the model'} carries no nasnet-app metadata (preprocessing, class names); "
        "export it with `nasnet-app export --format tflite` or pass `converter=`."
    )


def _buffer_bytes(content, buffer):
    if buffer.Offset() > 1:  # a large model keeps its buffers after the flatbuffer
        return bytes(content[buffer.Offset() : buffer.Offset() + buffer.Size()])
    return buffer.DataAsNumpy().tobytes()


# --------------------------------------------------------------------------- runner


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # without the [mobile] extra: TensorFlow's own (deprecated) copy
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


class TFLiteClassifier:
    """Classifies images with a `.tflite` file written by `export_tflite`.

    The images are prepared as the file's metadata says (the model's own
    `NASNetImageConverter`), quantised for an int8 input, and the outputs
    dequantised and turned into probabilities.

    Args:
        path: the `.tflite` file.
        num_threads: CPU threads of the interpreter (`None`: LiteRT's default).
        batch_size: images per interpreter call.
        converter: a `NASNetImageConverter` overriding the recorded preprocessing.
        labels: class names overriding the recorded ones.

    Example:

    >>> from nasnet_app.zoo.tflite import TFLiteClassifier
    >>> TFLiteClassifier("model.tflite", num_threads=2).classify("cat.jpg")  # doctest: +SKIP
    """

    def __init__(self, path, num_threads=None, batch_size=32, converter=None, labels=None):
        from nasnet_app.preprocessing import NASNetImageConverter

        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"`num_threads` must be a positive integer. Received: {num_threads!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
        self.path, self.num_threads = os.fspath(path), num_threads
        content = _model_bytes(self.path)
        self.interpreter = self._open(content)  # its verifier finds damaged files first
        self.metadata = read_metadata(content, self.path, required=converter is None)
        self.converter = converter or NASNetImageConverter(**self.metadata["preprocessor"])
        self.input_size = self.converter.image_size
        names = labels if labels is not None else self.metadata.get("class_names")
        self.labels = (
            None if names is None else [tuple(n) if isinstance(n, list) else n for n in names]
        )
        self.batch_size = batch_size
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None

    def _open(self, content):
        try:
            interpreter = _interpreter_class()(model_content=content, num_threads=self.num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            reason = " ".join(str(error).split())
            raise LiteRTModelError(f"{self.path} is a damaged .tflite file: {reason}") from None
        return interpreter

    @property
    def quantization(self):
        return self.metadata.get("quantization", {}).get("mode")

    def _resize(self, batch):
        if batch != self._batch:
            shape = [batch, *self.input_size, 3]
            self.interpreter.resize_tensor_input(self._input["index"], shape, strict=True)
            self.interpreter.allocate_tensors()
            self._batch = batch

    def invoke(self, batch):
        """Raw outputs (dequantised, float32) for a prepared batch `(N, H, W, 3)`."""
        batch = np.asarray(batch, np.float32)
        self._resize(len(batch))
        self.interpreter.set_tensor(self._input["index"], _quantize(batch, self._input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)

    def predict_batch(self, batch):
        """Class probabilities `(N, classes)` for a prepared batch."""
        outputs = self.invoke(batch)
        kind = self.metadata.get("outputs")
        if kind is None:  # a file from elsewhere: probabilities if they look like them
            sums = outputs.sum(axis=-1)
            kind = (
                "probabilities" if np.all(outputs >= 0) and np.allclose(sums, 1, atol=1e-3) else ""
            )
        return outputs if kind == "probabilities" else softmax(outputs)

    def preprocess(self, images):
        """Images (paths or arrays with values in [0, 255]) to one float32 batch."""
        pixels = [load_image(image) if _is_path(image) else image for image in _image_list(images)]
        return self.converter.convert_images(pixels)

    def predict(self, images):
        """Class probabilities `(N, classes)` of images (paths or arrays)."""
        items = _image_list(images)
        chunks = [
            self.predict_batch(self.preprocess(items[start : start + self.batch_size]))
            for start in range(0, len(items), self.batch_size)
        ]
        return np.concatenate(chunks)

    def decode(self, probabilities, top=5):
        """Top-`top` `Prediction(index, wnid, name, probability)` per row, most probable first."""
        return decode_predictions(probabilities, self.labels, top)

    def classify(self, images, top=5):
        """`decode(predict(images), top)`."""
        return self.decode(self.predict(images), top=top)


def _quantize(batch, details):
    scale, zero_point = details["quantization"]
    if details["dtype"] == np.float32 or not scale:
        return batch.astype(details["dtype"])
    info = np.iinfo(details["dtype"])
    values = np.round(batch / scale + zero_point)
    return np.clip(values, info.min, info.max).astype(details["dtype"])


def _dequantize(values, details):
    scale, zero_point = details["quantization"]
    if values.dtype == np.float32 or not scale:
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero_point) * scale


def measure_tflite_latency(classifier, batch_sizes=(1, 32), warmup=2, repeats=10, seed=0):
    """Median interpreter time per call, as `nasnet_app.evaluate.metrics.measure_latency` reports it."""
    from nasnet_app.timing import time_per_batch

    rng = np.random.default_rng(seed)
    low, high = classifier.converter.value_range or (0.0, 255.0)

    def make_input(batch):
        return rng.uniform(low, high, (batch, *classifier.input_size, 3)).astype(np.float32)

    return time_per_batch(classifier.invoke, make_input, batch_sizes, warmup, repeats)


# --------------------------------------------------------------------------- evaluation


def predict_tflite_split(classifier, data, split, batch_size=32):
    """Class probabilities and labels of a whole split, prepared as the file's metadata says."""
    converter = classifier.converter
    pipeline = data.with_image_size(converter.image_size).dataset(
        split,
        batch_size,
        value_range=converter.value_range,
        resize=converter.resize_mode,
        crop_fraction=converter.crop_fraction,
    )
    outputs, labels = [], []
    for images, batch_labels in pipeline:
        outputs.append(classifier.predict_batch(images.numpy()))
        labels.append(batch_labels.numpy())
    return np.concatenate(outputs), np.concatenate(labels)


__all__ = [
    "CalibrationError",
    "ConversionError",
    "LiteRTModelError",
    "QUANTIZATIONS",
    "TFLiteClassifier",
    "calibration_images",
    "predict_tflite_split",
    "export_tflite",
    "measure_tflite_latency",
    "read_metadata",
]
