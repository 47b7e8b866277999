"""Benchmark: children per hour with 1 and 2 parallel workers, and the controller's cost.

Trains the same tiny proxy children (random macro architectures, or NASNet
cells with `--space nasnet`, on random 32x32 images) through `CellSearch`
with three executors and prints children per hour and the ratio against the
named baseline (the in-process executor, one child at a time):

* `in-process`: `InProcessExecutor` (baseline);
* `local x1`: `LocalProcessExecutor(workers=1)`, all CPU threads;
* `local x2`: `LocalProcessExecutor(workers=2)`, the threads split in two.

It also times the controller: sampling and one REINFORCE update of a batch of
m = 20 children of the NASNet space (LSTM 100 units), which is what the search
process itself spends per batch. With both figures, the expected throughput
on a cluster follows (see `scaling_estimate`): with W workers and a child
time t_c, children arrive at W / t_c per second; the controller keeps up while
its time per batch t_u stays below m * t_c / W.

Usage:

    python evaluate/bench_executors.py --children 8
"""

import argparse
import os
import time

import numpy as np


def proxy_data(count=64, size=32, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((count, size, size, 3), "float32")
    return images, rng.integers(0, classes, count)


def run_children(executor, space_name, children, epochs, seed):
    """Seconds to evaluate `children` distinct architectures through `executor`."""
    from nasnet_app.search import algorithms, spaces
    from nasnet_app.search.cell_search import CellSearch
    from nasnet_app.search.evaluators import ChildTrainer

    if space_name == "nasnet":
        space = spaces.NASNetCellSpace(num_blocks=2)
    else:
        space = spaces.NASMacroSpace(num_layers=3, filters=(8, 16))
    trainer = ChildTrainer(num_blocks=1, filters=4, epochs=epochs, batch_size=32, strategy=None)
    data = proxy_data()
    start = time.perf_counter()
    history = CellSearch(
        space, algorithms.RandomSearch(space, seed=seed), trainer, executor
    ).search(data, data, max_trials=children, batch_size=children, verbose=0, seed=seed)
    seconds = time.perf_counter() - start
    failed = [t.error for t in history.trials if t.status != "completed"]
    if failed:
        raise RuntimeError(f"children failed: {failed[:2]}")
    return seconds


def controller_cost(repeats=5, batch_size=20):
    """Seconds per batch to sample m children and apply one REINFORCE update."""
    from nasnet_app.search import algorithms, spaces
    from nasnet_app.search.base import Trial

    space = spaces.NASNetCellSpace()
    algorithm = algorithms.Reinforce(space, batch_size=batch_size, seed=0)
    rng = np.random.default_rng(0)
    timings = []
    for round_ in range(repeats + 1):
        start = time.perf_counter()
        proposals = algorithm.propose(batch_size)
        trials = [
            Trial(
                i,
                p["actions"],
                None,
                p["arch_key"],
                "completed",
                float(rng.random()),
                extra=p["extra"],
            )
            for i, p in enumerate(proposals)
        ]
        algorithm.update(trials)
        if round_:  # the first round traces the update step
            timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def scaling_estimate(child_seconds, update_seconds, workers=100, batch_size=20):
    """Children per hour on `workers` GPUs and the share of time the controller needs."""
    per_hour = workers * 3600.0 / child_seconds
    batch_interval = batch_size * child_seconds / workers
    return per_hour, update_seconds / batch_interval


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--space", choices=("macro", "nasnet"), default="macro")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nasnet_app.search.executors import InProcessExecutor, LocalProcessExecutor

    cores = os.cpu_count() or 1
    configs = [
        ("in-process", lambda: InProcessExecutor()),
        ("local x1", lambda: LocalProcessExecutor(1, gpus_per_child=0, threads_per_child=cores)),
        (
            "local x2",
            lambda: LocalProcessExecutor(2, gpus_per_child=0, threads_per_child=max(1, cores // 2)),
        ),
    ]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{args.children} {args.space} children, {args.epochs} epoch(s), {cores} CPU cores "
        f"(load average before: {load})"
    )
    rates = {}
    for name, make in configs:
        seconds = run_children(make(), args.space, args.children, args.epochs, args.seed)
        rates[name] = args.children * 3600.0 / seconds
        ratio = rates[name] / rates["in-process"]
        print(
            f"{name:>11}: {seconds:7.1f} s  {rates[name]:8.0f} children/hour  "
            f"x{ratio:.2f} vs in-process"
        )
    update = controller_cost()
    child = 3600.0 / rates["in-process"]
    print(f"controller (NASNet space, m=20): {update * 1000:.0f} ms per batch (sample + update)")
    per_hour, share = scaling_estimate(child, update)
    print(
        f"100 workers at this child cost ({child:.1f} s): {per_hour:,.0f} children/hour; "
        f"the controller would be busy {share:.1%} of the time"
    )


if __name__ == "__main__":
    main()
