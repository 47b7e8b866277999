"""Benchmark of weight-sharing search (ENAS and random with weight sharing) on NAS-Bench-201.

Its parts:

* `search`: real searches on the CIFAR-10 training images (25k/25k
  train/validation split of the training set; the test split is never read),
  each arm (`enas`, `random`) and seed one `WeightSharingSearch` run as
  `nasnet-app search --space nasbench201 --weight-sharing` runs it. After
  each epoch the policy's expected table accuracy over 1,000 samples and its
  share of all-skip cells are recorded (`PolicyTableMonitor`, ground truth
  that never feeds the search); at the end the derived cell is looked up in
  the NAS-Bench-201 table, and the Kendall tau between the final supernet's
  accuracy and the table accuracy is measured over random cells. One
  `result.json` per run.
* `steps`: the supernet's training step against the same architecture built
  as a standalone child (NAS-Bench-201: `build_nasbench201_child`; NASNet
  space: `nasnet_app.NASNet` of the decoded genotype), and the process RSS
  over 1,000 supernet steps, each with a fresh architecture.
* `rank`: the diagnostic behind the search's results: the supernet alone
  trained with one sampling rule (`uniform`, `fair`: FairNAS strict
  fairness, every edge takes every op once per block of steps; `fixed`: one
  architecture, the control that the supernet itself trains like a
  standalone child), optionally only over some ops (`--train-ops`), and
  every `--eval-every` steps the Kendall tau between supernet and table
  accuracy over random cells (all, and connected ones only), the mean path
  accuracy, and the correlation of each op's count with both.
* `learn`: how fast the supernet's paths learn under one sampling rule
  (`fixed`, `uniform`, `pool` of K paths, and for the NASNet space `ops` or
  `inputs` alone redrawn), on any images (default: the bundled demo set):
  windowed training accuracy and loss, and the held-out accuracy of the
  paths it trains (or of K random ones); `--per-input-weights` gives the
  NASNet supernet ENAS's separate sep-conv weights for each chosen input.
  The reproduction of the NASNet supernet's known failure to learn under
  changing paths.
* `nasnet`: the NASNet space (ENAS micro) honestly compared: an ENAS search
  run through the CLI itself (`nasnet-app search --space nasnet
  --weight-sharing`, its defaults: a 25k/25k split of the training images),
  then the derived cell and 5 random cells of the space retrained from
  scratch with one short recipe (`nasnet_app.finetune`, 3 seeds each) and
  scored on the CIFAR-10 test split. Resumes when rerun.
* `report`: the table of every `result.json` under a folder, with the
  published and table references.

Run:

    python evaluate/benchmarks/bench_weight_sharing.py search --out bench_ws --epochs 30
    python evaluate/benchmarks/bench_weight_sharing.py steps
    python evaluate/benchmarks/bench_weight_sharing.py rank --steps 3000 --sampling uniform
    python evaluate/benchmarks/bench_weight_sharing.py learn --sampling uniform --steps 300
    python evaluate/benchmarks/bench_weight_sharing.py nasnet --out bench_ws_nasnet
    python evaluate/benchmarks/bench_weight_sharing.py report bench_ws
"""

import argparse
import json
import os
import resource
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data"))
DEFAULT_DATA = os.path.join(SHARED, "cifar10-jpeg.tar.gz")
DEFAULT_TABLE = os.path.join(SHARED, "nasbench201", "cifar10.csv")
# References from the CIFAR-10 column of the table and from Dong & Yang (2020).
REFERENCES = {
    "table: uniform random cell (mean)": 87.06,
    "table: best of 10 random cells (mean)": 93.11,
    "table: optimum": 94.37,
    "published: ENAS": 54.30,
    "published: DARTS": 54.30,
    "published: random with weight sharing": 87.66,
    "published: GDAS": 93.61,
}


def kendall_tau(x, y):
    """Kendall's tau-b of two equally long sequences."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), 1)
    dx, dy = dx[upper], dy[upper]
    denominator = np.sqrt(np.sum(dx != 0) * np.sum(dy != 0))
    return float(np.sum(dx * dy) / denominator) if denominator else float("nan")


def load_arrays(data, cache, limit=None):
    from nasnet_app.search.weight_sharing import load_image_arrays

    if cache and os.path.exists(cache):
        with np.load(cache) as arrays:
            train = (arrays["train_x"], arrays["train_y"])
            val = (arrays["val_x"], arrays["val_y"])
    else:
        train, val, _ = load_image_arrays(data, val_fraction=0.5, seed=0)
        if cache:
            np.savez(cache, train_x=train[0], train_y=train[1], val_x=val[0], val_y=val[1])
    if limit:
        train, val = (train[0][:limit], train[1][:limit]), (val[0][:limit], val[1][:limit])
    return train, val


def run_search(args, arm, seed):
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.weight_sharing import (
        PolicyTableMonitor,
        WeightSharingSearch,
        evaluation_order,
        table_accuracies,
    )

    out = os.path.join(args.out, f"{arm}-seed{seed}")
    os.makedirs(out, exist_ok=True)
    train, val = load_arrays(args.data, args.cache, args.limit)
    space = NASBench201Space()
    search = WeightSharingSearch(
        space,
        algorithm=arm,
        supernet_kwargs={"channels": args.channels, "cells_per_stage": args.cells_per_stage},
        batch_size=args.batch_size,
        warmup_epochs=args.warmup_epochs,
        derive_samples=args.derive_samples,
        derive_images=args.derive_images,
        steps_per_epoch=args.steps_per_epoch,
        training_ops=args.training_ops,
        seed=seed,
    )
    monitor = PolicyTableMonitor(args.table, samples=1000, path=os.path.join(out, "policy.jsonl"))
    start = time.time()
    history = search.search(
        train,
        val,
        epochs=args.epochs,
        directory=os.path.join(out, "run"),
        resume=os.path.exists(os.path.join(out, "run", "run.json")),
        callbacks=[monitor],
        max_seconds=args.max_seconds,
    )
    search_seconds = time.time() - start
    derived = history.best_trial.arch_key
    derived_table = table_accuracies(args.table, [derived])[0]
    candidates = sorted({t.arch_key for t in history.trials})
    candidate_table = table_accuracies(args.table, candidates)
    start = time.time()
    tau_rng = np.random.default_rng(1000 + seed)
    cells = [space.random_actions(tau_rng) for _ in range(args.tau_cells)]
    # A fixed random subset: the split is stored class by class.
    subset = evaluation_order(len(val[1]))[: args.tau_images]
    images, labels = val[0][subset], val[1][subset]
    supernet_acc = [search.accuracy(images, labels, c) for c in cells]
    table_acc = table_accuracies(args.table, [space.decode(c) for c in cells])
    curve = derivation_curve(search, val, args, seed) if args.curve_samples else None
    result = {
        "arm": arm,
        "seed": seed,
        "config": vars(args),
        "epochs_done": len(history.epochs),
        "search_seconds": search_seconds,
        "derived_arch": derived,
        "derived_val_accuracy": history.best_trial.reward,
        "derived_table_accuracy": 100 * derived_table,
        "derive_candidates_table_mean": 100 * float(np.mean(candidate_table)),
        "policy": _read_jsonl(os.path.join(out, "policy.jsonl")),
        "kendall_tau": kendall_tau(supernet_acc, table_acc),
        "tau_cells": args.tau_cells,
        "tau_images": len(labels),
        "tau_seconds": time.time() - start,
        "derivation_curve": curve,
        "epoch_logs": history.epochs,
        "traces": search.trace_count(),
        "load": os.getloadavg(),
    }
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1, default=float)
    print(
        f"{arm} seed {seed}: derived {derived} table {100 * derived_table:.2f} "
        f"tau {result['kendall_tau']:.3f} search {search_seconds:.0f}s",
        flush=True,
    )
    return result


def best_of_k_expectation(scores, values, k):
    """The expected `values` entry of the highest-scoring of `k` draws (with replacement)
    from the sampled items: exact over the empirical distribution, ties broken by order."""
    order = np.argsort(np.asarray(scores, np.float64), kind="stable")
    ranked = np.asarray(values, np.float64)[order]
    n = len(ranked)
    below = (np.arange(n) / n) ** k
    at_or_below = (np.arange(1, n + 1) / n) ** k
    return float(np.sum((at_or_below - below) * ranked))


def derivation_curve(search, val, args, seed):
    """The derived cell's expected table accuracy against K, the architectures scored at the
    end: `--curve-samples` draws of the final policy (their own RNG: the run is untouched),
    each scored on `--curve-images` validation images, then best-of-K over them."""
    from nasnet_app.search.weight_sharing import evaluation_order, table_accuracies

    start = time.time()
    archs = search.sample_policy(args.curve_samples, np.random.default_rng(2000 + seed))
    subset = evaluation_order(len(val[1]))[: args.curve_images]
    images, labels = val[0][subset], val[1][subset]
    keys = [search.space.arch_key(a) for a in archs]
    scored = {}
    for key, arch in zip(keys, archs):
        if key not in scored:
            scored[key] = search.accuracy(images, labels, search.space.encode(arch))
    supernet = [scored[k] for k in keys]
    table = 100 * np.asarray(table_accuracies(args.table, archs))
    return {
        "samples": len(archs),
        "distinct": len(scored),
        "images": len(labels),
        "policy_table_mean": float(np.mean(table)),
        "expected_table_accuracy": {
            str(k): best_of_k_expectation(supernet, table, k) for k in args.curve_k
        },
        "seconds": time.time() - start,
    }


def _read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def command_search(args):
    for seed in args.seeds:
        for arm in args.arms:
            run_search(args, arm, seed)


def _timed_alternately(steps, warmup, repeats):
    """The median seconds of each step, the steps run in turn so that a change in
    the machine's load (this CPU is shared) falls on all of them alike."""
    for step in steps:
        for _ in range(warmup):
            step()
    seconds = [[] for _ in steps]
    for _ in range(repeats):
        for step, times in zip(steps, seconds):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    return [float(np.median(times)) for times in seconds]


def _rss_mib():
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_step(model, images, labels):
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    x, y = tf.constant(images), tf.constant(labels)
    return lambda: step(x, y)


def step_times(space_name, args):
    import tensorflow as tf

    import nasnet_app
    from nasnet_app.cells import cell_output_channels
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.supernets import build_nasbench201_child
    from nasnet_app.search.weight_sharing import WeightSharingSearch, _scale, enas_nasnet_space

    rng = np.random.default_rng(0)
    size, batch = args.image_size, args.batch_size
    images = rng.integers(0, 256, (batch, size, size, 3), dtype="uint8")
    labels = rng.integers(0, 10, batch).astype(np.int32)
    cells_per_stage = args.cells_per_stage or cli_defaults(space_name)["child_blocks"]
    if space_name == "nasbench201":
        space = NASBench201Space()
        kwargs = {"channels": args.channels, "cells_per_stage": cells_per_stage}
        actions = space.encode(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "nor_conv_1x1~2|"
        )
        child = build_nasbench201_child(
            space.decode(actions), args.channels, cells_per_stage, 10, (size, size, 3)
        )
    else:
        space = enas_nasnet_space()
        kwargs = {"filters": args.filters, "cells_per_stage": cells_per_stage}
        actions = space.random_actions(rng)
        genotype = space.decode(actions)
        outputs = cell_output_channels(genotype.normal, 1)
        child = nasnet_app.NASNet(
            genotype,
            num_blocks=cells_per_stage,
            penultimate_filters=args.filters * outputs * 4,
            stem="cifar",
            stem_filters=3 * args.filters,
            input_shape=(size, size, 3),
            classes=10,
            classifier_activation=None,
        )
    search = WeightSharingSearch(
        space, supernet_kwargs=kwargs, input_shape=(size, size, 3), batch_size=batch, seed=0
    )
    search._build(0)
    # Both steps get ready-made tensors, so the times compare the graphs alone.
    tensors = (
        tf.constant(_scale(images)),
        tf.constant(labels),
        tf.constant(actions, tf.int32),
        tf.constant(search.learning_rate, tf.float32),
    )
    supernet_seconds, child_seconds = _timed_alternately(
        [lambda: search._train_step(*tensors), _child_step(child, _scale(images), labels)],
        3,
        args.repeats,
    )
    return {
        "space": space_name,
        "supernet_step_seconds": supernet_seconds,
        "child_step_seconds": child_seconds,
        "ratio": supernet_seconds / child_seconds,
        "supernet_params": int(sum(np.prod(w.shape) for w in search.supernet.weights)),
        "child_params": int(child.count_params()),
        "search": search,
        "images": images,
        "labels": labels,
    }


def command_steps(args):
    results = []
    for space_name in args.spaces:
        result = step_times(space_name, args)
        search = result.pop("search")
        images, labels = result.pop("images"), result.pop("labels")
        rss = []
        rng = np.random.default_rng(1)
        for step in range(args.rss_steps):
            search.train_on_batch(images, labels, search.space.random_actions(rng))
            if step in (99, args.rss_steps // 2 - 1, args.rss_steps - 1):
                rss.append((step + 1, round(_rss_mib(), 1)))
        result["rss_mib"] = rss
        result["traces"] = search.trace_count()
        results.append(result)
        print(
            f"{space_name}: supernet step {1000 * result['supernet_step_seconds']:.1f} ms, "
            f"standalone child {1000 * result['child_step_seconds']:.1f} ms, "
            f"ratio {result['ratio']:.2f}; RSS (step, MiB) {rss}; traces {result['traces']}",
            flush=True,
        )
    payload = {"load": os.getloadavg(), "cpus": os.cpu_count(), "results": results}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)


def is_connected(arch):
    """Whether a NAS-Bench-201 cell has a path of non-`none` edges from its input to output."""
    reached = {0}
    for node, edges in enumerate(arch.strip("|").split("|+|"), start=1):
        sources = [int(e.split("~")[1]) for e in edges.split("|") if not e.startswith("none")]
        if reached.intersection(sources):
            reached.add(node)
    return 3 in reached


def training_paths(space, sampling, ops, rng, fixed=None):
    """An endless stream of action lists for the supernet's training steps."""
    allowed = [space.ops.index(op) for op in ops]
    edges = len(space.num_choices())
    if sampling == "fixed":
        actions = space.encode(fixed)
        while True:
            yield actions
    while True:
        if sampling == "uniform":
            yield [int(rng.choice(allowed)) for _ in range(edges)]
            continue
        blocks = np.stack([rng.permutation(allowed) for _ in range(edges)], axis=1)
        for row in blocks:
            yield [int(a) for a in row]


def op_count_correlations(space, cells, supernet_acc, table_acc):
    rows = {}
    for index, op in enumerate(space.ops):
        counts = [sum(a == index for a in c) for c in cells]
        rows[op] = (
            float(np.corrcoef(counts, supernet_acc)[0, 1]),
            float(np.corrcoef(counts, table_acc)[0, 1]),
        )
    return rows


def command_rank(args):
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.weight_sharing import (
        WeightSharingSearch,
        _augment,
        evaluation_order,
        table_accuracies,
    )

    train, val = load_arrays(args.data, args.cache, args.limit)
    space = NASBench201Space()
    search = WeightSharingSearch(
        space,
        algorithm="random",
        supernet_kwargs={"channels": args.channels, "cells_per_stage": args.cells_per_stage},
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    search._build(args.seed)
    rng = np.random.default_rng(args.seed)
    tau_rng = np.random.default_rng(1000 + args.seed)
    cells = [space.random_actions(tau_rng) for _ in range(args.tau_cells)]
    archs = [space.decode(c) for c in cells]
    table_acc = 100 * np.asarray(table_accuracies(args.table, archs))
    connected = np.asarray([is_connected(a) for a in archs])
    subset = evaluation_order(len(val[1]))[: args.tau_images]
    images, labels = val[0][subset], val[1][subset]
    paths = training_paths(space, args.sampling, args.train_ops or space.ops, rng, args.fixed)
    low = search.min_learning_rate
    results, start, losses = [], time.time(), []
    for step in range(1, args.steps + 1):
        lr = low + 0.5 * (args.learning_rate - low) * (1 + np.cos(np.pi * (step - 1) / args.steps))
        index = rng.integers(0, len(train[1]), args.batch_size)
        batch = _augment(train[0][index], rng)
        losses.append(search.train_on_batch(batch, train[1][index], next(paths), lr)[0])
        if step % args.eval_every and step != args.steps:
            continue
        acc = 100 * np.asarray([search.accuracy(images, labels, c) for c in cells])
        row = {
            "step": step,
            "train_seconds": time.time() - start,
            "loss": float(np.mean(losses[-args.eval_every :])),
            "tau": kendall_tau(acc, table_acc),
            "tau_connected": kendall_tau(acc[connected], table_acc[connected]),
            "mean_path_accuracy": float(acc.mean()),
            "op_count_correlation": op_count_correlations(space, cells, acc, table_acc),
            "top5_by_supernet_table_mean": float(table_acc[np.argsort(-acc)[:5]].mean()),
        }
        results.append(row)
        print(
            f"step {step}: loss {row['loss']:.3f} tau {row['tau']:+.3f} "
            f"(connected {row['tau_connected']:+.3f}) mean path acc "
            f"{row['mean_path_accuracy']:.1f}% top-5 table {row['top5_by_supernet_table_mean']:.2f}"
            f" [{row['train_seconds']:.0f}s]",
            flush=True,
        )
    correlations = results[-1]["op_count_correlation"]
    print(
        "op count vs accuracy (supernet, table): "
        + ", ".join(f"{op} {a:+.2f}/{b:+.2f}" for op, (a, b) in correlations.items())
    )
    if args.json:
        payload = {"config": vars(args), "load": os.getloadavg(), "results": results}
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
    return results


def command_report(args):
    rows = []
    for root, _, files in os.walk(args.folder):
        if "result.json" in files:
            with open(os.path.join(root, "result.json"), encoding="utf-8") as handle:
                rows.append(json.load(handle))
    rows.sort(key=lambda r: (r["arm"], r["seed"]))
    # "epochs s" adds up the epochs' own times, so a resumed or re-derived run counts its
    # whole training; "call s" is the last call's wall time (derivation included).
    print(
        "arm     seed epochs  derived(table %)  policy E[table %] first->last  tau   "
        "epochs s  call s"
    )
    for r in rows:
        policy = r["policy"]
        first = 100 * policy[0]["policy_table_accuracy"] if policy else float("nan")
        last = 100 * policy[-1]["policy_table_accuracy"] if policy else float("nan")
        epochs_seconds = sum(e.get("seconds", 0.0) for e in r.get("epoch_logs", []))
        print(
            f"{r['arm']:<7} {r['seed']:>4} {r['epochs_done']:>6}  {r['derived_table_accuracy']:>15.2f}"
            f"  {first:>11.2f} -> {last:<6.2f}  {r['kendall_tau']:>5.3f}  {epochs_seconds:>8.0f}"
            f"  {r['search_seconds']:>6.0f}"
        )
        print(f"        derived {r['derived_arch']}")
        curve = r.get("derivation_curve")
        if curve:
            points = "  ".join(
                f"K={k}: {v:.2f}" for k, v in curve["expected_table_accuracy"].items()
            )
            print(
                f"        E[derived table %] ({curve['samples']} policy draws, "
                f"{curve['images']} images): {points}"
            )
    for arm in sorted({r["arm"] for r in rows}):
        values = [r["derived_table_accuracy"] for r in rows if r["arm"] == arm]
        print(
            f"{arm}: derived mean {np.mean(values):.2f} +- {np.std(values):.2f} over {len(values)}"
        )
        curves = [
            r["derivation_curve"] for r in rows if r["arm"] == arm and r.get("derivation_curve")
        ]
        for k in curves[0]["expected_table_accuracy"] if curves else []:
            values = [c["expected_table_accuracy"][k] for c in curves]
            print(f"{arm}: E[derived table %] at K={k}: {np.mean(values):.2f} over {len(values)}")
    for name, value in REFERENCES.items():
        print(f"  reference {name}: {value:.2f}")


def command_nasnet(args):
    """ENAS on the NASNet space (the CLI's `--space nasnet --weight-sharing` defaults), then
    the derived cell and `--random-cells` random cells of the same space retrained from
    scratch with one short recipe, `--seeds` seeds each, scored on the CIFAR-10 test split.
    Every part resumes: rerunning the command continues where it stopped."""
    from nasnet_app import cli
    from nasnet_app import data as data_lib
    from nasnet_app.finetune import finetune
    from nasnet_app.io_utils import atomic_write_json
    from nasnet_app.presets import child_architecture
    from nasnet_app.search.run_directory import RunDirectory
    from nasnet_app.search.weight_sharing import enas_nasnet_space

    space = enas_nasnet_space()
    search_dir = os.path.join(args.out, "search")
    search_run = RunDirectory(search_dir)
    if not (search_run.read_summary() or {}).get("finished"):
        # The user's own command, defaults and all: only the budget and the seed are given.
        argv = ["search", "--space", "nasnet", "--weight-sharing", "--data", args.data]
        argv += ["--out", search_dir, "--epochs", str(args.search_epochs)]
        argv += ["--seed", str(args.search_seed)]
        if args.steps_per_epoch:
            argv += ["--steps-per-epoch", str(args.steps_per_epoch)]
        if search_run.has_run():
            argv.append("--resume")
        code = cli.main(argv)
        if code:
            raise SystemExit(f"nasnet-app {' '.join(argv)} exited {code}")
    derived = space.decode(search_run.read_summary()["best_trial"]["actions"])
    rng = np.random.default_rng(args.random_seed)
    cells = {"enas": derived}
    for i in range(args.random_cells):
        cells[f"random{i}"] = space.decode(space.random_actions(rng))
    images = (
        data_lib.load(args.data)
        .subset({"train": args.train_per_class, "test": args.test_per_class}, seed=0)
        .cached()
    )
    # Retraining checkpoints are too large to commit; this small record is what lets a
    # fresh clone skip the retrainings that finished.
    finished_path = os.path.join(args.out, "retrain_finished.json")
    finished = _read_json(finished_path)
    # Seed-major, so a run stopped part-way has compared every cell on the same seeds.
    for seed in args.seeds:
        for name, genotype in cells.items():
            key = f"{name}-seed{seed}"
            if key in finished:
                print(f"{name} seed {seed}: test {finished[key]:.2f} % (recorded)", flush=True)
                continue
            run = os.path.join(args.out, "retrain", key)
            # The search's own proxy child at F filters per op: cells of this space
            # concatenate 1 to 5 unused states, so their penultimate widths differ.
            child = child_architecture(genotype, args.retrain_blocks, args.retrain_filters)
            result = finetune(
                genotype,
                images,
                run,
                epochs=args.retrain_epochs,
                batch_size=args.batch_size,
                learning_rate=0.05,
                weight_decay=5e-4,
                augment=data_lib.Augment(cutout=16),
                validation_split="test",
                model_config={
                    "num_blocks": child.num_blocks,
                    "penultimate_filters": child.penultimate_filters,
                    "stem": "cifar",
                    "stem_filters": child.stem_filters,
                },
                drop_path_keep_prob=1.0,
                resume=os.path.exists(os.path.join(run, "state.json")),
                seed=seed,
                verbose=0,
            )
            finished[key] = 100 * result.history[-1]["val_accuracy"]
            atomic_write_json(finished_path, finished)
            print(f"{name} seed {seed}: test {finished[key]:.2f} %", flush=True)
    results = {name: [finished[f"{name}-seed{seed}"] for seed in args.seeds] for name in cells}
    report = {
        "cells": {name: space.to_data(g) for name, g in cells.items()},
        "test_accuracy": results,
        "summary": {n: [float(np.mean(v)), float(np.std(v))] for n, v in results.items()},
        "config": vars(args),
        "load": os.getloadavg(),
    }
    random_means = [np.mean(v) for n, v in results.items() if n != "enas"]
    report["random_cells_mean"] = [float(np.mean(random_means)), float(np.std(random_means))]
    with open(os.path.join(args.out, "nasnet_result.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, default=float)
    for name, (mean, std) in report["summary"].items():
        print(f"{name:<8} {mean:6.2f} +- {std:.2f} %")
    print(
        "random cells: {:.2f} +- {:.2f} % (mean of the cell means)".format(
            *report["random_cells_mean"]
        )
    )


def _read_json(path):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def learn_paths(space, sampling, rng, pool_size=8):
    """An endless stream of supernet training paths for `learn`, with the paths it scores.

    `fixed`: one random architecture; `uniform`: a fresh one each step;
    `pool`: one of `pool_size` fixed random ones; NASNet space only: `ops`
    (inputs of one random architecture, fresh ops each step) and `inputs`
    (its ops, fresh inputs).
    """
    reference = np.asarray(space.random_actions(rng))
    mixed = {"ops": (2, 3), "inputs": (0, 1)}
    if sampling in mixed and not hasattr(space, "num_blocks"):
        raise SystemExit(f"--sampling {sampling} is for the NASNet space only")
    pool = [reference] if sampling == "fixed" else None
    if sampling == "pool":
        pool = [np.asarray(space.random_actions(rng)) for _ in range(pool_size)]
    scored = pool or [np.asarray(space.random_actions(rng)) for _ in range(pool_size)]

    def stream():
        while True:
            if pool:
                yield pool[int(rng.integers(len(pool)))]
                continue
            fresh = np.asarray(space.random_actions(rng))
            if sampling in mixed:
                keep = np.isin(np.arange(len(fresh)) % 5, mixed[sampling])
                fresh = np.where(keep, fresh, reference)
            yield fresh

    return stream(), scored


def command_learn(args):
    """The supernet alone, trained on one sampling rule: how fast its paths learn."""
    from nasnet_app.search.spaces import NASBench201Space, NASNetCellSpace
    from nasnet_app.search.supernets import ENAS_OPS
    from nasnet_app.search.weight_sharing import WeightSharingSearch, _augment

    train, val = load_arrays(args.data, args.cache, args.limit)
    if args.space == "nasbench201":
        space = NASBench201Space()
        sizes = {"channels": args.filters, "cells_per_stage": args.cells_per_stage}
    else:
        space = NASNetCellSpace(num_blocks=5, ops=ENAS_OPS, combines=("add",))
        sizes = {
            "filters": args.filters,
            "cells_per_stage": args.cells_per_stage,
            "per_input_weights": args.per_input_weights,
        }
    search = WeightSharingSearch(
        space,
        algorithm="random",
        supernet_kwargs=sizes,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    search._build(args.seed)
    rng = np.random.default_rng(args.seed)
    paths, scored = learn_paths(space, args.sampling, rng, args.pool_size)
    low, start, window, rows = search.min_learning_rate, time.time(), [], []
    for step in range(1, args.steps + 1):
        lr = low + 0.5 * (args.learning_rate - low) * (1 + np.cos(np.pi * (step - 1) / args.steps))
        index = rng.integers(0, len(train[1]), args.batch_size)
        batch = _augment(train[0][index], rng)
        window.append(search.train_on_batch(batch, train[1][index], next(paths), lr))
        if step % args.window and step != args.steps:
            continue
        loss, accuracy = np.mean(window, axis=0)
        row = {"step": step, "loss": float(loss), "train_accuracy": float(accuracy)}
        if step % args.eval_every == 0 or step == args.steps:
            scores = [search.accuracy(val[0], val[1], a) for a in scored]
            row["val_accuracy_mean"] = float(np.mean(scores))
            row["val_accuracy_max"] = float(np.max(scores))
        row["seconds"] = time.time() - start
        rows.append(row)
        window = []
        val_text = (
            f" val mean {row['val_accuracy_mean']:.3f} max {row['val_accuracy_max']:.3f}"
            if "val_accuracy_mean" in row
            else ""
        )
        print(
            f"step {step}: loss {loss:.3f} train acc {accuracy:.3f}{val_text}"
            f" [{row['seconds']:.0f}s]",
            flush=True,
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"config": vars(args), "results": rows}, handle, indent=1)
    return rows


def cli_defaults(space="nasbench201"):
    """`nasnet-app search --space SPACE --weight-sharing`'s defaults (one source)."""
    from nasnet_app.cli.search import WEIGHT_SHARING_DEFAULTS, WEIGHT_SHARING_NB201_DEFAULTS

    if space == "nasbench201":
        return {**WEIGHT_SHARING_DEFAULTS, **WEIGHT_SHARING_NB201_DEFAULTS}
    return dict(WEIGHT_SHARING_DEFAULTS)


def main(argv=None):
    defaults = cli_defaults()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    search = sub.add_parser("search", help="real NAS-Bench-201 searches on CIFAR-10")
    search.add_argument("--data", default=DEFAULT_DATA)
    search.add_argument("--table", default=DEFAULT_TABLE)
    search.add_argument("--cache", default=None, help="an .npz of the decoded split (reused)")
    search.add_argument("--out", default="bench_weight_sharing")
    search.add_argument("--arms", nargs="+", default=["enas", "random"])
    search.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    search.add_argument("--epochs", type=int, default=defaults["epochs"])
    search.add_argument("--max-seconds", type=float, default=None)
    search.add_argument("--channels", type=int, default=defaults["child_filters"])
    search.add_argument("--cells-per-stage", type=int, default=defaults["child_blocks"])
    search.add_argument("--batch-size", type=int, default=defaults["child_batch_size"])
    search.add_argument("--training-ops", nargs="+", default=defaults["training_ops"])
    search.add_argument("--warmup-epochs", type=int, default=None)
    search.add_argument("--steps-per-epoch", type=int, default=None)
    search.add_argument("--derive-samples", type=int, default=defaults["derive_samples"])
    search.add_argument("--derive-images", type=int, default=defaults.get("derive_images"))
    search.add_argument("--tau-cells", type=int, default=200)
    search.add_argument("--tau-images", type=int, default=1000)
    search.add_argument("--limit", type=int, default=None, help="images per split (smoke runs)")
    search.add_argument(
        "--curve-samples", type=int, default=200, help="policy draws of the K curve (0: none)"
    )
    search.add_argument("--curve-images", type=int, default=5000)
    search.add_argument("--curve-k", nargs="+", type=int, default=[1, 5, 10, 20, 50, 100])
    steps = sub.add_parser("steps", help="supernet vs standalone step time; RSS over 1,000 steps")
    steps.add_argument("--spaces", nargs="+", default=["nasnet", "nasbench201"])
    steps.add_argument("--image-size", type=int, default=32)
    # The CLI's sizes: `--space nasnet --weight-sharing` and `--space nasbench201 ...`.
    nasnet_defaults = cli_defaults("nasnet")
    steps.add_argument("--batch-size", type=int, default=defaults["child_batch_size"])
    steps.add_argument("--channels", type=int, default=defaults["child_filters"])
    steps.add_argument("--filters", type=int, default=nasnet_defaults["child_filters"])
    steps.add_argument(
        "--cells-per-stage", type=int, default=None, help="default: the CLI's for each space"
    )
    steps.add_argument("--repeats", type=int, default=50)
    steps.add_argument("--rss-steps", type=int, default=1000)
    steps.add_argument("--json", default=None)
    rank = sub.add_parser("rank", help="the supernet's ranking of random cells as it trains")
    rank.add_argument("--data", default=DEFAULT_DATA)
    rank.add_argument("--table", default=DEFAULT_TABLE)
    rank.add_argument("--cache", default=None, help="an .npz of the decoded split (reused)")
    rank.add_argument("--sampling", choices=["uniform", "fair", "fixed"], default="uniform")
    rank.add_argument("--fixed", default=None, help="the arch string of --sampling fixed")
    rank.add_argument("--train-ops", nargs="+", default=None, help="ops of the training paths")
    rank.add_argument("--steps", type=int, default=3000)
    rank.add_argument("--eval-every", type=int, default=1500)
    rank.add_argument("--channels", type=int, default=8)
    rank.add_argument("--cells-per-stage", type=int, default=2)
    rank.add_argument("--batch-size", type=int, default=64)
    rank.add_argument("--learning-rate", type=float, default=0.05)
    rank.add_argument("--tau-cells", type=int, default=100)
    rank.add_argument("--tau-images", type=int, default=1000)
    rank.add_argument("--seed", type=int, default=0)
    rank.add_argument("--limit", type=int, default=None, help="images per split (smoke runs)")
    rank.add_argument("--json", default=None)
    nasnet = sub.add_parser(
        "nasnet", help="ENAS cell of the NASNet space against random cells, retrained"
    )
    nasnet.add_argument("--data", default=DEFAULT_DATA)
    nasnet.add_argument("--out", default="bench_weight_sharing_nasnet")
    nasnet.add_argument("--search-epochs", type=int, default=cli_defaults("nasnet")["epochs"])
    nasnet.add_argument("--steps-per-epoch", type=int, default=None)
    nasnet.add_argument("--search-seed", type=int, default=0)
    nasnet.add_argument("--random-cells", type=int, default=5)
    nasnet.add_argument("--random-seed", type=int, default=0)
    nasnet.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    nasnet.add_argument("--train-per-class", type=int, default=1000)
    nasnet.add_argument("--test-per-class", type=int, default=1000)
    nasnet.add_argument("--retrain-epochs", type=int, default=10)
    nasnet.add_argument("--retrain-blocks", type=int, default=1)
    nasnet.add_argument(
        "--retrain-filters", type=int, default=8, help="F: filters per op in the first stack"
    )
    nasnet.add_argument("--batch-size", type=int, default=64)
    learn = sub.add_parser("learn", help="how fast the supernet's paths learn, per sampling rule")
    learn.add_argument("--space", choices=["nasnet", "nasbench201"], default="nasnet")
    learn.add_argument("--data", default="demo", help="images (default: the bundled demo set)")
    learn.add_argument("--cache", default=None, help="an .npz of the decoded split (reused)")
    learn.add_argument(
        "--sampling", choices=["fixed", "uniform", "pool", "ops", "inputs"], default="uniform"
    )
    learn.add_argument("--pool-size", type=int, default=8, help="paths of --sampling pool")
    learn.add_argument("--steps", type=int, default=600)
    learn.add_argument("--window", type=int, default=25)
    learn.add_argument("--eval-every", type=int, default=200)
    learn.add_argument("--filters", type=int, default=8)
    learn.add_argument("--cells-per-stage", type=int, default=2)
    learn.add_argument("--batch-size", type=int, default=64)
    learn.add_argument("--learning-rate", type=float, default=0.05)
    learn.add_argument(
        "--per-input-weights",
        action="store_true",
        help="NASNet space: separate sep-conv weights per chosen input (ENAS micro_child)",
    )
    learn.add_argument("--seed", type=int, default=0)
    learn.add_argument("--limit", type=int, default=None, help="images per split")
    learn.add_argument("--json", default=None)
    report = sub.add_parser("report", help="the table of the results under a folder")
    report.add_argument("folder")
    args = parser.parse_args(argv)
    if args.command == "search":
        if args.warmup_epochs is None:
            args.warmup_epochs = max(1, args.epochs // 4)
        command_search(args)
    elif args.command == "steps":
        command_steps(args)
    elif args.command == "nasnet":
        command_nasnet(args)
    elif args.command == "learn":
        return command_learn(args)
    elif args.command == "rank":
        if args.sampling == "fixed" and not args.fixed:
            parser.error("--sampling fixed needs --fixed ARCH")
        command_rank(args)
    else:
        command_report(args)


if __name__ == "__main__":
    main()
