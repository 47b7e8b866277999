"""Benchmark: LiteRT exports (float32, float16, dynamic, int8) against Keras, on this CPU.

Checks, as issue 14 states them:

* the shipped `nasnet_a_cifar10` checkpoint on all 10,000 CIFAR-10 test images
  of `../shared/data/cifar10-jpeg.tar.gz`: float32 LiteRT top-1 equals Keras
  to within 0.1 point; int8 (calibrated on 300 training images through the
  model's own converter) within 1 point of float;
* NASNet-A Mobile with random weights, written as the official keras.applications
  `.h5` and loaded by `nasnet_app.NASNetMobile(weights=path)`: float32 LiteRT outputs match Keras to 1e-4
  (relative to the largest output).

Reports each file's size and the single-image latency (median of `--repeats`
calls) of Keras (`model(x)` in a `tf.function`) and of the LiteRT interpreter
with 1 and 2 threads; the images are prepared once, so only the network is
timed. The checkpoint is copied before it is read and its SHA-256 printed,
since it may be re-saved while the benchmark runs.

Run: `nice -n 10 python evaluate/benchmarks/bench_tflite.py [--out bench_tflite.json]`.
Exit status 1 when a check fails.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
CHECKPOINT = os.path.join(ROOT, "checkpoints", "nasnet_a_cifar10.keras")
CIFAR10 = os.path.join(ROOT, os.pardir, "shared", "data", "cifar10-jpeg.tar.gz")
MODES = ("none", "float16", "dynamic", "int8")
FLOAT_TOLERANCE_POINTS = 0.1
INT8_TOLERANCE_POINTS = 1.0
MOBILE_RELATIVE_TOLERANCE = 1e-4


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepared_split(data, converter, split, batch_size=250):
    """All images of `split` prepared as the model's converter prepares them, and labels."""
    pipeline = data.with_image_size(converter.image_size).dataset(
        split,
        batch_size,
        value_range=converter.value_range,
        resize=converter.resize_mode,
        crop_fraction=converter.crop_fraction,
    )
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in pipeline))
    return np.concatenate(images), np.concatenate(labels)


def keras_outputs(model, images, batch_size=250):
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    chunks = [
        np.asarray(forward(tf.constant(images[i : i + batch_size])))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks)


def litert_outputs(classifier, images, batch_size=250):
    chunks = [
        classifier.invoke(images[i : i + batch_size]) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks)


def keras_latency_ms(model, image_size, repeats):
    from nasnet_app.evaluate.metrics import measure_latency

    measured = measure_latency(model, (*image_size, 3), batch_sizes=(1,), repeats=repeats)
    return measured["batch_1"]["ms_per_image"]


def litert_latency_ms(path, threads, repeats):
    from nasnet_app.zoo.tflite import TFLiteClassifier, measure_tflite_latency

    classifier = TFLiteClassifier(path, num_threads=threads)
    measured = measure_tflite_latency(classifier, batch_sizes=(1,), repeats=repeats)
    return measured["batch_1"]["ms_per_image"]


def export_all(model, folder, stem, modes, calibration=None):
    """`{mode: (path, export seconds)}` for each quantisation."""
    from nasnet_app.zoo.tflite import export_tflite

    files = {}
    for mode in modes:
        path = os.path.join(folder, f"{stem}_{mode}.tflite")
        start = time.perf_counter()
        export_tflite(model, path, mode, calibration=calibration if mode == "int8" else None)
        files[mode] = (path, time.perf_counter() - start)
        print(f"  exported {mode:8s} {os.path.getsize(path) / 1024:9.1f} KiB in "
              f"{files[mode][1]:5.1f} s")  # fmt: skip
    return files


def latency_rows(model, files, image_size, repeats):
    rows = {"keras": {"ms": keras_latency_ms(model, image_size, repeats)}}
    for mode, (path, _) in files.items():
        rows[mode] = {
            "bytes": os.path.getsize(path),
            "ms_1_thread": litert_latency_ms(path, 1, repeats),
            "ms_2_threads": litert_latency_ms(path, 2, repeats),
        }
    return rows


def bench_cifar(args, folder):
    import nasnet_app
    from nasnet_app import data as data_lib
    from nasnet_app.zoo.tflite import TFLiteClassifier

    copy = os.path.join(folder, "nasnet_a_cifar10.keras")
    shutil.copyfile(args.checkpoint, copy)
    digest = sha256(copy)
    print(f"checkpoint {os.path.abspath(args.checkpoint)}\n  sha256 {digest}")
    model = nasnet_app.load_model(copy)
    converter = model.preprocessor
    data = data_lib.load(args.data)
    images, labels = prepared_split(data, converter, "test")
    print(f"  {len(images)} test images of {args.data}, prepared at {converter.image_size}")
    files = export_all(model, folder, "cifar", MODES, calibration=data)
    reference = keras_outputs(model, images)
    results = {"keras": {"top1": float(np.mean(reference.argmax(1) == labels))}}
    for mode, (path, seconds) in files.items():
        outputs = litert_outputs(TFLiteClassifier(path, num_threads=2), images)
        results[mode] = {
            "top1": float(np.mean(outputs.argmax(1) == labels)),
            "agreement_with_keras": float(np.mean(outputs.argmax(1) == reference.argmax(1))),
            "max_abs_difference": float(np.abs(outputs - reference).max()),
            "export_seconds": seconds,
        }
    for mode, row in latency_rows(model, files, converter.image_size, args.repeats).items():
        results[mode].update(row)
    float_gap = 100 * abs(results["none"]["top1"] - results["keras"]["top1"])
    int8_gap = 100 * abs(results["int8"]["top1"] - results["none"]["top1"])
    checks = {
        f"float32 LiteRT top-1 within {FLOAT_TOLERANCE_POINTS} point of Keras": (
            float_gap <= FLOAT_TOLERANCE_POINTS
        ),
        f"int8 top-1 within {INT8_TOLERANCE_POINTS} point of float": (
            int8_gap <= INT8_TOLERANCE_POINTS
        ),
    }
    return {"checkpoint_sha256": digest, "examples": len(images), "results": results}, checks


def bench_mobile(args, folder):
    import keras

    import nasnet_app
    from nasnet_app.weights import write_legacy_h5
    from nasnet_app.zoo.tflite import TFLiteClassifier

    h5 = os.path.join(folder, "NASNet-mobile.h5")
    write_legacy_h5(keras.applications.NASNetMobile(weights=None), h5)
    keras.backend.clear_session()
    model = nasnet_app.NASNetMobile(weights=h5)
    files = export_all(model, folder, "mobile", args.mobile_modes)
    images = np.random.default_rng(0).uniform(-1, 1, (args.mobile_images, 224, 224, 3))
    images = images.astype(np.float32)
    reference = keras_outputs(model, images, batch_size=8)
    outputs = litert_outputs(TFLiteClassifier(files["none"][0], num_threads=2), images, 8)
    relative = float(np.abs(outputs - reference).max() / np.abs(reference).max())
    results = {
        "float32_max_relative_difference": relative,
        "float32_top1_agreement": float(np.mean(outputs.argmax(1) == reference.argmax(1))),
        "export_seconds": {mode: seconds for mode, (_, seconds) in files.items()},
    }
    results.update(latency_rows(model, files, (224, 224), args.repeats))
    checks = {
        f"Mobile float32 LiteRT outputs within {MOBILE_RELATIVE_TOLERANCE} relative of Keras": (
            relative <= MOBILE_RELATIVE_TOLERANCE
        )
    }
    return {"images": args.mobile_images, "results": results}, checks


def print_table(title, results):
    print(f"\n{title}")
    print(f"  {'model':10s} {'size KiB':>9s} {'top-1':>7s} {'Keras 1 img':>12s} "
          f"{'LiteRT 1 thr':>13s} {'2 threads':>10s}")  # fmt: skip
    keras_row = results["keras"]
    top1 = f"{100 * keras_row['top1']:6.2f}%" if "top1" in keras_row else ""
    print(f"  {'keras':10s} {'':>9s} {top1:>7s} {keras_row['ms']:9.2f} ms")
    for mode in MODES:
        row = results.get(mode)
        if row is None:
            continue
        top1 = f"{100 * row['top1']:6.2f}%" if "top1" in row else ""
        print(f"  {mode:10s} {row['bytes'] / 1024:9.1f} {top1:>7s} {'':>12s} "
              f"{row['ms_1_thread']:10.2f} ms {row['ms_2_threads']:7.2f} ms")  # fmt: skip


def print_cifar(results):
    print_table("nasnet_a_cifar10 (CIFAR-10 test set)", results)
    for mode, row in results.items():
        if "agreement_with_keras" in row:
            print(f"  {mode:10s} top-1 agreement with Keras {100 * row['agreement_with_keras']:6.2f}%"
                  f", max |difference| {row['max_abs_difference']:.2e}")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=CHECKPOINT)
    parser.add_argument("--data", default=CIFAR10, help="CIFAR-10 with a test split")
    parser.add_argument("--repeats", type=int, default=50, help="timed single-image calls")
    parser.add_argument("--mobile-images", type=int, default=8)
    parser.add_argument(
        "--mobile-modes", nargs="+", default=["none", "float16", "dynamic"], choices=MODES[:3]
    )
    parser.add_argument("--skip-mobile", action="store_true")
    parser.add_argument("--skip-cifar", action="store_true")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)
    if "none" not in args.mobile_modes:
        args.mobile_modes = ["none", *args.mobile_modes]
    started = time.time()
    report = {
        "machine": f"{platform.machine()} {platform.processor()}, {os.cpu_count()} CPUs".strip(),
        "load_average_start": os.getloadavg(),
    }
    checks = {}
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_cifar:
            report["cifar"], found = bench_cifar(args, folder)
            checks.update(found)
            print_cifar(report["cifar"]["results"])
        if not args.skip_mobile:
            report["mobile"], found = bench_mobile(args, folder)
            checks.update(found)
            print_table("NASNet-A Mobile, random weights (224 x 224)", report["mobile"]["results"])
            print(f"  float32 max relative difference "
                  f"{report['mobile']['results']['float32_max_relative_difference']:.2e}")  # fmt: skip
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = round(time.time() - started, 1)
    report["checks"] = checks
    print(f"\nload average: start {report['load_average_start']}, end {report['load_average_end']}")
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
