"""Is the input pipeline the bottleneck? Training throughput with and without it.

Trains a small NASNet-A CIFAR configuration on this machine for a fixed number
of steps, fed three ways, and prints images/s (median of several repeats,
modes interleaved so that machine noise hits all of them alike):

* `memory`: batches decoded and augmented beforehand, cycled from memory
  (the model alone: the baseline);
* `pipeline`: the real training pipeline: JPEG bytes from the archive,
  decode, random crop with padding, flip, scale, batch, prefetch;
* `pipeline (cached)`: the same after `ImageData.cached()` (decoded once;
  augmentation still per step).

It also times each pipeline alone (no model), the ceiling it can feed.

Usage:

    python evaluate/bench_pipeline.py [--data ../shared/data/cifar10-jpeg.tar.gz]
        [--num-blocks 2] [--penultimate-filters 96] [--batch-size 32] [--steps 20]
        [--repeats 3] [--out bench.json]
"""

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_CIFAR = os.path.join(REPO, "..", "shared", "data", "cifar10-jpeg.tar.gz")


def build_model(num_blocks, penultimate_filters, seed=0):
    import keras

    import nasnet_app

    keras.utils.set_random_seed(seed)
    model = nasnet_app.NASNet(
        num_blocks=num_blocks,
        penultimate_filters=penultimate_filters,
        stem="cifar",
        stem_filters=32,
        input_shape=(32, 32, 3),
        classes=10,
        bn_momentum=0.9,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    return model


def feeds(data, batch_size, steps):
    """`{mode: tf.data.Dataset}` of endless training batches."""
    import tensorflow as tf

    def pipeline(source):
        return source.dataset("train", batch_size, training=True, epochs=None, drop_remainder=True)

    real = pipeline(data)
    held = [(x, y) for x, y in real.take(steps)]
    images = tf.stack([x for x, _ in held])
    labels = tf.stack([y for _, y in held])
    memory = tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
    return {
        "memory": memory,
        "pipeline": real,
        "pipeline (cached)": pipeline(data.cached()),
    }


def time_training(model, dataset, steps):
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start


def time_pipeline_alone(dataset, batches):
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return time.perf_counter() - start


def run(args):
    from nasnet_app import data as data_lib

    source = args.data if os.path.exists(args.data) else "demo"
    data = data_lib.load(source)
    if args.train_images:
        data = data.subset({"train": args.train_images // data.info.num_classes})
    model = build_model(args.num_blocks, args.penultimate_filters)
    datasets = feeds(data, args.batch_size, args.steps)
    for dataset in datasets.values():  # traces the train step for each input signature
        time_training(model, dataset, 2)
    seconds = {mode: [] for mode in datasets}
    for _ in range(args.repeats):
        for mode, dataset in datasets.items():
            seconds[mode].append(time_training(model, dataset, args.steps))
    images = args.steps * args.batch_size
    alone = {
        mode: images / time_pipeline_alone(dataset, args.steps)
        for mode, dataset in datasets.items()
        if mode != "memory"
    }
    return data, {mode: [images / s for s in values] for mode, values in seconds.items()}, alone


def report(data, rates, alone, args):
    baseline = statistics.median(rates["memory"])
    lines = [
        f"NASNet-A CIFAR N={args.num_blocks} P={args.penultimate_filters}, batch {args.batch_size}, "
        f"{args.steps} steps x {args.repeats} repeats, {os.cpu_count()} CPUs; "
        f"data: {data.info.source} ({data.info.counts['train']} train images)",
        f"{'feed':<20} {'train img/s (median)':>21} {'min':>8} {'max':>8} {'vs memory':>10} "
        f"{'feed alone img/s':>17}",
    ]
    rows = {}
    for mode, values in rates.items():
        median = statistics.median(values)
        rows[mode] = {"median": median, "runs": values, "ratio_vs_memory": median / baseline}
        feed = f"{alone[mode]:>17.0f}" if mode in alone else f"{'-':>17}"
        lines.append(
            f"{mode:<20} {median:>21.1f} {min(values):>8.1f} {max(values):>8.1f} "
            f"{median / baseline:>10.3f} {feed}"
        )
    print("\n".join(lines))
    return {"rows": rows, "feed_alone_images_per_s": alone, "table": lines}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default=SHARED_CIFAR, help="archive/folder (default: CIFAR-10 JPEG)"
    )
    parser.add_argument("--train-images", type=int, help="use a class-balanced subset of train")
    parser.add_argument("--num-blocks", type=int, default=2)
    parser.add_argument("--penultimate-filters", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    for name in ("num_blocks", "penultimate_filters", "batch_size", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    data, rates, alone = run(args)
    result = report(data, rates, alone, args)
    if args.out:
        from nasnet_app.io_utils import atomic_write_json

        atomic_write_json(args.out, {"args": vars(args), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
