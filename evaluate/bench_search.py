"""Benchmark of the search algorithms on the NAS-Bench-201 CIFAR-10 table.

REINFORCE, PPO, random search and regularized evolution each run once per
seed to the largest budget of distinct architectures (arch strings), looked
up in the table (`TabularEvaluator`); the best test accuracy found so far is
recorded at every budget. Prints mean +- std (and how many runs found the
optimum) per budget, and writes JSON with every run's curve.

The algorithms run with `SMALL_BUDGET_SETTINGS`
(`nasnet_app.search.algorithms`), which are not specific to this table;
`--set reinforce.learning_rate=0.001` overrides one.

Runs go to worker processes (`--workers`) whose BLAS and TensorFlow use one
thread each: the controller's matrices are small, and extra threads only fight
over the cores.

Run: `python -m nasnet_app.evaluate.bench_search --seeds 20 --out bench_search.json`
"""

import argparse
import json
import multiprocessing
import os
import time

DEFAULT_TABLE = os.path.normpath(
    os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "..",
        "..",
        "shared",
        "data",
        "nasbench201",
        "cifar10.csv",
    )
)
BUDGETS = (50, 100, 200, 500)
ALGORITHM_NAMES = ("reinforce", "ppo", "random", "evolution")
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def run_one(algorithm, evaluator, space, budgets, proposals_per_round=1):
    """Runs one search to `max(budgets)` distinct archs; returns the best value at each budget.

    Proposals are made `proposals_per_round` at a time (the RL batch size) and
    all of a round's trials are passed to `update` together.
    """
    from nasnet_app.search.base import Trial

    best, curve, trial_id = float("-inf"), {}, 0
    while trial_id < max(budgets):
        num = min(proposals_per_round, max(budgets) - trial_id)
        trials = []
        for proposal in algorithm.propose(num):
            architecture = space.decode(proposal["actions"])
            result = evaluator.evaluate(architecture)
            trials.append(
                Trial(
                    trial_id=trial_id,
                    actions=proposal["actions"],
                    architecture=architecture,
                    arch_key=proposal["arch_key"],
                    status="completed",
                    reward=result["reward"],
                    metrics=result["metrics"],
                    extra=proposal["extra"],
                )
            )
            trial_id += 1
            best = max(best, result["metrics"][evaluator.metric])
            if trial_id in budgets:
                curve[trial_id] = best
        algorithm.update(trials)
    return curve


_WORKER = {}


def _init_worker(table):
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.tabular import TabularEvaluator

    _WORKER["evaluator"] = TabularEvaluator(table)
    _WORKER["space"] = NASBench201Space()


def _run_task(task):
    from nasnet_app.search.algorithms import get_algorithm

    name, seed, settings, budgets = task
    space, evaluator = _WORKER["space"], _WORKER["evaluator"]
    start = time.time()
    algorithm = get_algorithm(name, space, seed=seed, **settings)
    curve = run_one(algorithm, evaluator, space, budgets, getattr(algorithm, "batch_size", 1))
    return name, seed, curve, time.time() - start


def summarize(curves, budgets, optimum):
    rows = {}
    for budget in budgets:
        values = [curve[budget] for curve in curves]
        mean = sum(values) / len(values)
        rows[budget] = {
            "mean": mean,
            "std": (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5,
            "optimum_found": sum(v >= optimum - 1e-9 for v in values),
            "runs": len(values),
        }
    return rows


def format_table(results, budgets):
    header = f"{'algorithm':10s} " + " ".join(f"{f'{b} archs':>20s}" for b in budgets)
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        cells = " ".join(
            f"{row['mean']:7.2f} +- {row['std']:.2f} ({row['optimum_found']:2d})".rjust(20)
            for row in result["budgets"].values()
        )
        lines.append(f"{name:10s} {cells}")
    return "\n".join(lines)


def parse_overrides(items):
    overrides = {}
    for item in items:
        target, separator, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not separator or not dot or name not in ALGORITHM_NAMES:
            raise ValueError(
                f"`--set` must look like ALGORITHM.KEY=JSON with ALGORITHM in "
                f"{', '.join(ALGORITHM_NAMES)}. Received: --set {item}"
            )
        overrides.setdefault(name, {})[key] = json.loads(value)
    return overrides


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=DEFAULT_TABLE, help="NAS-Bench-201 CSV")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--algorithms", default=",".join(ALGORITHM_NAMES))
    parser.add_argument("--set", action="append", default=[], help="ALGO.KEY=JSON override")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)

    from nasnet_app.search.algorithms import SMALL_BUDGET_SETTINGS
    from nasnet_app.search.tabular import TabularEvaluator

    names = args.algorithms.split(",")
    unknown = [n for n in names if n not in ALGORITHM_NAMES]
    if unknown or args.seeds < 1 or args.workers < 1:
        parser.error(f"--algorithms from {ALGORITHM_NAMES}, --seeds and --workers >= 1")
    overrides = parse_overrides(args.set)
    settings = {n: {**SMALL_BUDGET_SETTINGS[n], **overrides.get(n, {})} for n in names}
    optimum = TabularEvaluator(args.table).best()[1]
    tasks = [(n, seed, settings[n], BUDGETS) for n in names for seed in range(args.seeds)]

    os.environ.update(SINGLE_THREAD_ENV)  # inherited by the spawned workers
    start = time.time()
    curves = {n: {} for n in names}
    seconds = {n: 0.0 for n in names}
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=_init_worker, initargs=(args.table,)) as pool:
        for name, seed, curve, took in pool.imap_unordered(_run_task, tasks):
            curves[name][seed] = curve
            seconds[name] += took
            print(f"  {name} seed {seed}: best {curve[max(BUDGETS)]:.2f} [{took:.1f}s]", flush=True)
    results = {
        n: {
            "settings": settings[n],
            "budgets": summarize([curves[n][s] for s in sorted(curves[n])], BUDGETS, optimum),
            "runs": [curves[n][s] for s in sorted(curves[n])],
            "worker_seconds": seconds[n],
        }
        for n in names
    }
    print(f"NAS-Bench-201 CIFAR-10 ({args.table}), optimum {optimum}, {args.seeds} seeds")
    print("best test accuracy found: mean +- std (runs that found the optimum)")
    print(format_table(results, BUDGETS))
    print(f"total {time.time() - start:.0f}s with {args.workers} worker(s)")
    if args.out:
        from nasnet_app.io_utils import atomic_write_json

        atomic_write_json(
            args.out,
            {"table": args.table, "optimum": optimum, "seeds": args.seeds, "results": results},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
