"""What every command shares: exit codes, one-line errors, value checks, a quiet TensorFlow.

Exit codes: 0 success, 1 a runtime failure (a bad file, a failed download, bad data, nothing
succeeded), 2 a usage error (bad flags or values), 130 interrupted.

This module imports nothing heavy: `nasnet-app --help` must not start TensorFlow.
"""

import argparse
import contextlib
import os
import re
import sys
import tempfile
import zipfile

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
CLASSES_FILE = "classes.json"

# TensorFlow writes these through absl before its log level applies; they say nothing to a user.
STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:. ]+\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor"
    r"|cuda_dnn|cuda_fft|cuda_blas|cuda_diagnostics)\.cc:\d+\]"
    r"|To enable the following instructions: .*rebuild TensorFlow)"
)


class UsageError(Exception):
    """A bad command line: printed as one line, exit code 2."""


class CommandFailed(Exception):
    """A runtime failure the command detected itself: printed as one line, exit code 1."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is one `--help` away)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def command_parser(subparsers, name, **kwargs):
    """A subcommand's parser; `--debug` is accepted after the command name too."""
    parser = subparsers.add_parser(name, **kwargs)
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    return parser


def one_line(message):
    return " ".join(str(message).split())


def print_error(command, message):
    prefix = f"nasnet-app {command}" if command else "nasnet-app"
    print(f"{prefix}: error: {one_line(message)}", file=sys.stderr)


# --------------------------------------------------------------------------- value types


def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {name}. Received: {text!r}") from None


def positive_int(text):
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer. Received: {text}")
    return value


def non_negative_int(text):
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more. Received: {text}")
    return value


def positive_float(text):
    value = _number(float, text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number. Received: {text}")
    return value


def non_negative_float(text):
    value = _number(float, text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more. Received: {text}")
    return value


def fraction(text):
    """A number in [0, 1)."""
    value = _number(float, text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1). Received: {text}")
    return value


def open_fraction(text):
    """A number in (0, 1]."""
    value = _number(float, text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]. Received: {text}")
    return value


def open_unit(text):
    """A number in (0, 1)."""
    value = _number(float, text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1). Received: {text}")
    return value


def flag(name):
    return "--" + name.replace("_", "-")


# --------------------------------------------------------------------------- file checks


def check_output_folder(path, option="--out"):
    """The folder a file is written into must exist (the commands never create it silently)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CommandFailed(f"`{option}` must be in an existing folder; {parent} does not exist.")


def check_keras_file(path, option="--model"):
    """A `.keras` model file: it exists and is a Keras archive (else one line saying which)."""
    if not os.path.exists(path):
        raise CommandFailed(f"`{option}` file {path} does not exist.")
    if os.path.isdir(path):
        raise CommandFailed(f"`{option}` must be a .keras file, not a folder. Received: {path}")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise CommandFailed(
            f"`{option}` must be a .keras model file (a Keras 3 zip archive). Received: {path}"
        )
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise CommandFailed(f"{path} is a zip file but not a Keras model (no config.json).")
    return path


def model_class_names(model, model_path=None):
    """`nasnet_app.model.model_class_names`, its error as the CLI's runtime failure."""
    from nasnet_app.model import model_class_names as class_names

    try:
        return class_names(model, model_path)
    except ValueError as error:
        raise CommandFailed(str(error)) from None


def add_mixed_precision(parser, what):
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help=f"{what} in bfloat16 on a CPU (float16 on a GPU), weights in float32",
    )


@contextlib.contextmanager
def mixed_precision(args):
    """Runs the block under the mixed dtype policy if `--mixed-precision` asks for it.

    Set before the model is built or loaded (layers take the policy then), and
    restored after, for callers of `nasnet_app.cli.main` in the same process.
    """
    if not args.mixed_precision:
        yield
        return
    if (getattr(args, "model", None) or "").endswith(".tflite"):
        raise UsageError(
            "`--mixed-precision` applies to Keras models; a .tflite file runs in the precision "
            "it was exported with (see `export --quantize`)."
        )
    import keras

    from nasnet_app.finetune import mixed_precision_policy

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(mixed_precision_policy(True))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def load_model(path, option="--model"):
    """A `.keras` model, checked first so that a wrong file gets a message naming it."""
    check_keras_file(path, option)
    from nasnet_app import model as model_lib  # registers the nasnet_app Keras classes

    try:
        return model_lib.load_model(path)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise CommandFailed(f"cannot load the model {path}: {one_line(error)}") from None


# --------------------------------------------------------------------------- TensorFlow


@contextlib.contextmanager
def _start_up_lines_dropped():
    """Drops TensorFlow's start-up log lines from fd 2; every other line is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(True) if not STARTUP_NOISE.match(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def start_tensorflow():
    """Imports TensorFlow and probes the devices with its start-up lines silenced.

    INFO lines stay off (TF_CPP_MIN_LOG_LEVEL=1, unless the user set it);
    warnings and errors TensorFlow prints later still come through.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if "tensorflow" in sys.modules:
        return
    with _start_up_lines_dropped():
        import tensorflow as tf

        # The device probe (cuInit on a machine without a GPU) logs once; do it here.
        tf.config.list_physical_devices("GPU")
        import keras  # noqa: F401


# --------------------------------------------------------------------------- data, presets


def check_data_source(source, option="--data", **load_options):
    """Loads a dataset before any work starts, so that a bad `--data` fails first, by name."""
    if not source.startswith("tfds:") and source != "demo" and not os.path.exists(source):
        raise CommandFailed(f"`{option}` {source} does not exist.")
    from nasnet_app import data as data_lib

    try:
        data = data_lib.load(source, **load_options)
    except (ValueError, OSError) as error:
        raise CommandFailed(f"`{option}` {source}: {one_line(error)}") from None
    skipped = getattr(data, "bad_files", None)
    if skipped:
        listed = load_options.get("bad_images_file")
        print(
            f"skipped {len(skipped)} unreadable image(s) of {source}"
            + (f", listed in {listed}" if listed else ""),
            file=sys.stderr,
        )
    return data


def add_skip_bad_images(parser, where="the report folder"):
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help=f"leave unreadable images out (listed in bad_images.txt in {where}) instead of "
        "stopping",
    )


def bad_image_options(args, folder):
    """`nasnet_app.data.load` options for `--skip-bad-images`: skipped files are counted and
    listed in `folder/bad_images.txt`."""
    if not getattr(args, "skip_bad_images", False):
        return {}
    os.makedirs(folder, exist_ok=True)
    return {"skip_bad_images": True, "bad_images_file": os.path.join(folder, "bad_images.txt")}


def image_files(arguments):
    """The image files of the arguments: each file, and the images inside each folder."""
    from nasnet_app.data.images import IMAGE_EXTENSIONS

    files = []
    for argument in arguments:
        if os.path.isdir(argument):
            inside = sorted(
                os.path.join(argument, name)
                for name in os.listdir(argument)
                if name.lower().endswith(IMAGE_EXTENSIONS)
            )
            if not inside:
                raise CommandFailed(f"the folder {argument} holds no image files.")
            files += inside
        else:
            files.append(argument)
    return files


def read_images(paths):
    """`(images by path, one message per unreadable file)`: the good ones are still answered."""
    from nasnet_app.classifier import ImageReadError, load_image

    images, bad = {}, []
    for path in paths:
        try:
            images[path] = load_image(path)
        except ImageReadError as error:
            bad.append(str(error))
    return images, bad


def check_preset(name, option="--preset"):
    """A preset name the zoo knows (an unknown name is a usage error listing the known ones)."""
    from nasnet_app.zoo import presets

    known = presets.list_presets()
    if name not in known:
        raise UsageError(f"`{option}` must be one of {', '.join(known)}. Received: {name}")
    return name
