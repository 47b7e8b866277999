"""Benchmark: loading NASNet-A Mobile from each weight format, and classifying image files.

Times, on this machine, for the Mobile configuration (5.3 M parameters):

* TF-Slim EMA checkpoint (the reference vectors in ../shared): read + convert,
  and the whole `zoo.load` (model construction included);
* the same checkpoint as a `.tar.gz` archive (first use extracts it);
* a keras.applications `.h5` written from random weights (the official
  format), loaded by `zoo.load`; baseline: keras.applications' own
  `NASNetMobile(weights=path)` on the same file;
* the converted `.keras` file (`keras.models.load_model`);
* classification throughput from JPEG files (decode + preprocess + model),
  with the model alone on the same batch as the baseline.

Run: `python evaluate/bench_zoo.py [--images 32]`. The target is a few
seconds per conversion beyond building the model.
"""

import argparse
import os
import tarfile
import tempfile
import time

import numpy as np

TARGET_CONVERT_SECONDS = 10.0
MOBILE = "nasnet_a_mobile_imagenet"
REFERENCE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "shared", "data",
    "slim-reference", "nasnet_mobile", "ckpt_ema", "model.ckpt",
)  # fmt: skip


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def bench_slim(zoo, slim, folder):
    model, build = timed(zoo.build_model, MOBILE, True, "slim")
    shapes = {key: tuple(v.shape) for key, v in model.weight_map().items()}
    tensors, opened = timed(slim.read_slim_checkpoint, REFERENCE)
    stored, read = timed(dict_of, tensors)
    arrays, convert = timed(slim.convert_slim, stored, shapes, model.genotype)
    _, load = timed(zoo.load, MOBILE, weights=REFERENCE)
    archive = os.path.join(folder, "nasnet_mobile_reference.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for suffix in (".index", ".data-00000-of-00001"):
            tar.add(REFERENCE + suffix, arcname="model.ckpt" + suffix)
    _, load_archive = timed(zoo.load, MOBILE, weights=archive)
    print(f"TF-Slim EMA checkpoint: build model {build:6.2f} s (not part of the conversion)")
    print(f"  open {opened:5.2f} s, read {read:5.2f} s, convert {convert:5.2f} s "
          f"({len(arrays)} tensors); zoo.load total {load:6.2f} s")  # fmt: skip
    print(f"  .tar.gz archive (extract + load) {load_archive:6.2f} s")
    return build, opened + read + convert


def dict_of(tensors):
    return {name: tensors[name] for name in tensors.keys()}


def bench_h5(zoo, folder):
    import keras

    from nasnet_app.weights import write_legacy_h5

    reference = keras.applications.NASNetMobile(weights=None)
    path = os.path.join(folder, "NASNet-mobile.h5")
    write_legacy_h5(reference, path)
    model, ours = timed(zoo.load, MOBILE, weights=path)
    _, baseline = timed(keras.applications.NASNetMobile, weights=path)
    images = np.random.RandomState(0).uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    error = np.abs(np.asarray(model(images)) - np.asarray(reference(images))).max()
    print(f"keras.applications .h5: zoo.load {ours:6.2f} s; baseline keras.applications."
          f"NASNetMobile(weights=path) {baseline:6.2f} s; ratio {ours / baseline:4.2f}x; "
          f"max |difference| of outputs {error:.1e}")  # fmt: skip
    return model


def bench_keras_file(zoo, model, folder):
    import keras

    path = zoo.save_model(model, os.path.join(folder, "mobile.keras"))
    _, seconds = timed(keras.models.load_model, path)
    print(f".keras file: keras.models.load_model {seconds:6.2f} s")


def bench_classify(model, folder, count):
    from PIL import Image

    from nasnet_app.classifier import ImageClassifier
    from nasnet_app.zoo import get_preset

    rng = np.random.RandomState(0)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"image_{i}.jpg")
        Image.fromarray(rng.randint(0, 255, (300, 400, 3), np.uint8)).save(path, quality=90)
        paths.append(path)
    classifier = ImageClassifier(model, get_preset(MOBILE), batch_size=count)
    classifier.classify(paths[:2])  # warm-up: traces the model once
    _, total = timed(classifier.classify, paths)
    batch, preprocess = timed(classifier.preprocess, paths)
    _, model_only = timed(lambda: np.asarray(model(batch, training=False)))
    print(f"classify {count} JPEG files (300x400 -> 224): {count / total:6.1f} images/s "
          f"({total:5.2f} s; decode + preprocess {preprocess:5.2f} s); baseline model alone "
          f"{count / model_only:6.1f} images/s; ratio {model_only / total:4.2f}")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=32, help="image files to classify")
    args = parser.parse_args(argv)
    from nasnet_app import zoo
    from nasnet_app.zoo import slim

    if not os.path.exists(REFERENCE + ".index"):
        raise SystemExit(f"reference checkpoint missing: {REFERENCE}")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["NASNET_APP_HOME"] = os.path.join(folder, "home")
        _, convert = bench_slim(zoo, slim, folder)
        model = bench_h5(zoo, folder)
        bench_keras_file(zoo, model, folder)
        bench_classify(model, folder, args.images)
    verdict = "met" if convert <= TARGET_CONVERT_SECONDS else "MISSED"
    print(f"target: TF-Slim read + convert <= {TARGET_CONVERT_SECONDS:.0f} s: {verdict} "
          f"({convert:.2f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
