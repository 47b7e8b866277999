"""Benchmark: nasnet_app's NASNet-A against keras.applications, alternating fresh processes.

For each architecture (`--arch mobile large cifar`; keras.applications has no
CIFAR model, so CIFAR is timed against nothing) it times, every measurement
in a fresh Python process and the two implementations alternating:

* `build`: constructing the model with random weights;
* `h5_load`: constructing it with `weights=` an official-format `.h5` file
  (random weights written once by keras.applications);
* `keras_load`: `keras.models.load_model` of a `.keras` file;
* `latency`: one image (batch 1), median of `--steps` calls of `predict_on_batch`;
* `throughput`: images/s at `--batch`;
* `train_step`: seconds per `train_on_batch` step at `--batch` (SGD).

Inference and training are timed with XLA off and on (`jit_compile`) for both
models, and the best setting of each is compared (and named); `--xla off` or
`--xla on` times one setting only (an XLA compile of the training step takes
minutes per process on a 2-core CPU). `--policy
mixed_bfloat16` times Keras' bf16 mixed precision instead of float32. Prints
medians over `--repeats` and the ratio keras / ours for times (above 1.0 means
ours is faster) and ours / keras for throughput.

    .venv/bin/python evaluate/benchmarks/bench_model.py --repeats 3
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMPLEMENTATIONS = ("keras.applications", "nasnet_app")
CONSTRUCTORS = {"mobile": "NASNetMobile", "large": "NASNetLarge", "cifar": "NASNetCIFAR"}
SIZES = {"mobile": 224, "large": 331, "cifar": 32}
RUN_TASKS = ("latency", "throughput", "train_step")


def _constructor(kind, arch):
    if kind == "keras.applications":
        import keras

        return getattr(keras.applications, CONSTRUCTORS[arch])
    import nasnet_app

    return getattr(nasnet_app, CONSTRUCTORS[arch])


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(kind, arch, task, files, batch, steps, jit, policy):
    """One measurement in this process (the child side); returns seconds or img/s."""
    import keras
    import numpy as np

    if policy:
        keras.config.set_dtype_policy(policy)
    build = _constructor(kind, arch)
    classes = 10 if arch == "cifar" else 1000
    if task == "build":
        return _timed(lambda: build(weights=None, classes=classes))[0]
    if task == "h5_load":
        return _timed(lambda: build(weights=files["h5"]))[0]
    if task == "keras_load":
        if kind == "nasnet_app":
            import nasnet_app  # noqa: F401  (registers the classes)
        return _timed(lambda: keras.models.load_model(files[f"keras_{kind}"]))[0]
    model = build(weights=None, classes=classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                  jit_compile=jit)  # fmt: skip
    size = SIZES[arch]
    rng = np.random.RandomState(0)
    images = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    labels = rng.randint(0, classes, batch)
    if task == "train_step":
        model.train_on_batch(images, labels)  # warm-up: tracing
        return statistics.median(
            _timed(lambda: model.train_on_batch(images, labels))[0] for _ in range(steps)
        )
    sample = images[:1] if task == "latency" else images
    model.predict_on_batch(sample)
    seconds = statistics.median(
        _timed(lambda: model.predict_on_batch(sample))[0] for _ in range(steps)
    )
    return seconds if task == "latency" else batch / seconds


def _child(argv):
    args = json.loads(argv)
    print("RESULT " + json.dumps(measure(**args)))


def _run_child(**kwargs):
    command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(kwargs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"measurement {kwargs} failed:\n{result.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _prepare_files(arch, folder):
    """An official-format `.h5` (keras.applications' layout) and a `.keras` file of each model."""
    import keras

    import nasnet_app
    from nasnet_app.weights import write_legacy_h5

    files = {}
    classes = 10 if arch == "cifar" else 1000
    if arch != "cifar":
        files["h5"] = os.path.join(folder, f"{arch}.h5")
        write_legacy_h5(_constructor("keras.applications", arch)(weights=None), files["h5"])
        path = os.path.join(folder, f"{arch}_keras.keras")
        _constructor("keras.applications", arch)(weights=None).save(path)
        files["keras_keras.applications"] = path
    path = os.path.join(folder, f"{arch}_ours.keras")
    getattr(nasnet_app, CONSTRUCTORS[arch])(weights=None, classes=classes).save(path)
    files["keras_nasnet_app"] = path
    keras.backend.clear_session()
    return files


def _tasks(arch, tasks):
    if arch == "cifar":  # no keras.applications counterpart, no official .h5
        return [t for t in tasks if t != "h5_load"]
    return tasks


XLA_SETTINGS = {"both": (False, True), "off": (False,), "on": (True,)}


def run(archs, tasks, repeats, batch, steps, policy, out=None, xla="both"):
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for arch in archs:
            files = _prepare_files(arch, folder)
            kinds = IMPLEMENTATIONS if arch != "cifar" else ("nasnet_app",)
            for task in _tasks(arch, tasks):
                for jit in XLA_SETTINGS[xla] if task in RUN_TASKS else (False,):
                    for _ in range(repeats):
                        for kind in kinds:
                            value = _run_child(
                                kind=kind, arch=arch, task=task, files=files, batch=batch,
                                steps=steps, jit=jit, policy=policy,
                            )  # fmt: skip
                            key = (arch, task, kind, jit)
                            results.setdefault(key, []).append(value)
    table = _summarize(results)
    _print(table, batch, repeats, policy)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(table, handle, indent=2)
    return table


def _summarize(results):
    table = []
    groups = sorted({(arch, task) for arch, task, _, _ in results})
    for arch, task in groups:
        row = {"arch": arch, "task": task}
        higher_is_better = task == "throughput"
        for kind in IMPLEMENTATIONS:
            options = {
                jit: statistics.median(values)
                for (a, t, k, jit), values in results.items()
                if (a, t, k) == (arch, task, kind)
            }
            if not options:
                continue
            pick = max if higher_is_better else min
            jit = pick(options, key=options.get)
            row[kind] = {"value": options[jit], "jit_compile": jit}
        if "keras.applications" in row and "nasnet_app" in row:
            ours, theirs = row["nasnet_app"]["value"], row["keras.applications"]["value"]
            row["ratio"] = ours / theirs if higher_is_better else theirs / ours
        table.append(row)
    return table


def _print(table, batch, repeats, policy):
    import keras
    import tensorflow as tf

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, TF {tf.__version__}, Keras {keras.__version__}, "
          f"policy {policy or 'float32'}")  # fmt: skip
    print(f"fresh process per measurement, alternating, medians of {repeats}; batch {batch}")
    print(f"{'arch':<8}{'task':<12}{'keras.applications':>27} {'nasnet_app':>26}{'ratio':>8}")
    for row in table:
        cells = []
        for kind in IMPLEMENTATIONS:
            entry = row.get(kind)
            unit = " img/s" if row["task"] == "throughput" else " s"
            cells.append(
                "-" if entry is None
                else f"{entry['value']:.3f}{unit} (xla {'on' if entry['jit_compile'] else 'off'})"
            )  # fmt: skip
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else "-"
        print(f"{row['arch']:<8}{row['task']:<12}{cells[0]:>27} {cells[1]:>26}{ratio:>8}")
    print("ratio: keras / ours for times, ours / keras for img/s (above 1.0: ours is faster)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--arch", nargs="+", default=["mobile"], choices=sorted(CONSTRUCTORS))
    parser.add_argument(
        "--tasks", nargs="+", default=["build", "h5_load", "keras_load", *RUN_TASKS]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--policy", default=None, choices=["mixed_bfloat16"])
    parser.add_argument("--xla", default="both", choices=sorted(XLA_SETTINGS))
    parser.add_argument("--out", default=None, help="write the table as JSON")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if args.repeats < 1 or args.steps < 1 or args.batch < 1:
        parser.error("--repeats, --steps and --batch must be positive")
    run(
        args.arch, args.tasks, args.repeats, args.batch, args.steps, args.policy, args.out,
        args.xla,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
