"""Benchmark: nasnet_app.NASNetMobile against keras.applications.NASNetMobile.

Times, in one process and alternating between the two models, inference
(images/s, batch 32, 224 px, compiled `predict_on_batch`) and one training
step (`train_on_batch`, SGD), over several repeats after a warm-up; prints
medians and the ratio ours / keras (above 1.0 means ours is faster).

    .venv/bin/python evaluate/bench_model.py [--repeats 5] [--batch 32] [--size 224]
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nasnet_app  # noqa: E402


def build(kind, size):
    if kind == "keras.applications":
        model = keras.applications.NASNetMobile(weights=None, input_shape=(size, size, 3))
    else:
        model = nasnet_app.NASNetMobile(input_shape=(size, size, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model


def time_call(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    y = rng.randint(0, 1000, args.batch)
    models = {kind: build(kind, args.size) for kind in ("keras.applications", "nasnet_app")}
    for model in models.values():  # warm-up: tracing and first-run allocations
        model.predict_on_batch(x)
        model.train_on_batch(x, y)
    infer = {kind: [] for kind in models}
    train = {kind: [] for kind in models}
    for _ in range(args.repeats):
        for kind, model in models.items():
            infer[kind].append(args.batch / time_call(lambda m=model: m.predict_on_batch(x)))
            train[kind].append(time_call(lambda m=model: m.train_on_batch(x, y)))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TF {tf.__version__}, Keras {keras.__version__}")  # fmt: skip
    print(f"batch {args.batch}, {args.size} px, {args.repeats} repeats, medians")
    print(f"{'model':<20}{'inference img/s':>18}{'train step s':>16}")
    for kind in models:
        print(f"{kind:<20}{statistics.median(infer[kind]):>18.1f}"
              f"{statistics.median(train[kind]):>16.3f}")  # fmt: skip
    inference_ratio = statistics.median(infer["nasnet_app"]) / statistics.median(
        infer["keras.applications"]
    )
    train_ratio = statistics.median(train["keras.applications"]) / statistics.median(
        train["nasnet_app"]
    )
    print(f"ratio nasnet_app / keras.applications (speed, >1 = faster): "
          f"inference {inference_ratio:.2f}, training step {train_ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
