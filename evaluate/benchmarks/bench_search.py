"""Benchmark of the search algorithms on a NAS-Bench-201 table, run as the CLI runs them.

Each run is what `nasnet-app search --space nasbench201 --table T --trials B
--algorithm A --seed S` does: the algorithm comes from the same function
(`nasnet_app.search.algorithms.build_algorithm`, so REINFORCE and PPO get the
budget-aware defaults of `budget_settings`, or `--settings paper`), the
evaluator is the same `TabularEvaluator`, and the same `CellSearch` loop
(default `Objective`, batch of the algorithm's m) proposes, looks up and
learns. For each budget B (50, 100, 200, 500 distinct architectures) and
seed, the best table value found is recorded. Prints mean +- std (and how
many runs found the table's optimum) per budget, and writes JSON with every
run.

REINFORCE and PPO run once per budget (their settings depend on it). Random
search and regularized evolution do not look at the budget, so the first B
trials of one run to the largest budget are exactly the run with budget B;
they run once per seed.

Runs go to worker processes (`--workers`) whose BLAS and TensorFlow use one
thread each: the controller's matrices are small, and extra threads only fight
over the cores.

Run: `python evaluate/benchmarks/bench_search.py --seeds 20 --out bench_search.json`
(`--table` takes any NAS-Bench-201-style CSV: an `arch` column and one accuracy
column, or name it with `--metric`).
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
        "..",
        "shared",
        "data",
        "nasbench201",
        "cifar10.csv",
    )
)
BUDGETS = (50, 100, 200, 500)
KINDS = ("reinforce", "ppo", "random", "evolution")
# name[:settings]; the paper rows show what the budget rule changes.
DEFAULT_ENTRIES = ("reinforce", "ppo", "random", "evolution", "reinforce:paper")
OVERRIDABLE = ("batch_size", "learning_rate", "entropy_weight")
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def parse_entry(entry):
    """`"reinforce"` -> `("reinforce", "budget")`; `"reinforce:paper"` -> `(..., "paper")`."""
    kind, _, settings = entry.partition(":")
    settings = settings or "budget"
    if kind not in KINDS or settings not in ("budget", "paper"):
        raise ValueError(
            f"`--algorithms` entries must be ALGORITHM[:budget|paper] with ALGORITHM in "
            f"{', '.join(KINDS)}. Received: {entry}"
        )
    return kind, settings


def run_search(kind, space, evaluator, budget, seed, settings="budget", overrides=None):
    """One CLI-equivalent search; returns the table value of every trial, in order."""
    from nasnet_app.search.algorithms import build_algorithm
    from nasnet_app.search.base import Objective
    from nasnet_app.search.cell_search import CellSearch

    algorithm = build_algorithm(
        kind, space, max_trials=budget, settings=settings, seed=seed, **(overrides or {})
    )
    search = CellSearch(space, algorithm, evaluator, objective=Objective())
    history = search.search(max_trials=budget, seed=seed, verbose=0)
    return [
        trial.metrics[evaluator.metric]
        for trial in history.trials
        if trial.status == "completed" and not trial.cached
    ]


def best_at(values, budgets):
    """The best value among the first B trials, for each budget B."""
    return {b: max(values[:b]) for b in budgets if len(values) >= b}


def run_entry(kind, settings, space, evaluator, budgets, seed, overrides=None):
    """The best value at each budget: one run per budget where the settings depend on it."""
    if kind in ("reinforce", "ppo"):
        curve = {}
        for budget in budgets:
            values = run_search(kind, space, evaluator, budget, seed, settings, overrides)
            curve[budget] = best_at(values, (budget,))[budget]
        return curve
    values = run_search(kind, space, evaluator, max(budgets), seed, settings, overrides)
    return best_at(values, budgets)


_WORKER = {}


def _init_worker(table, metric):
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.tabular import TabularEvaluator

    _WORKER["space"] = NASBench201Space()
    _WORKER["evaluator"] = TabularEvaluator(table, metric=metric, space=_WORKER["space"])


def _run_task(task):
    entry, seed, budgets, overrides = task
    kind, settings = parse_entry(entry)
    start = time.time()
    curve = run_entry(
        kind, settings, _WORKER["space"], _WORKER["evaluator"], budgets, seed, overrides
    )
    return entry, seed, curve, time.time() - start


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
    header = f"{'algorithm':16s} " + " ".join(f"{f'{b} archs':>20s}" for b in budgets)
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        cells = " ".join(
            f"{row['mean']:7.2f} +- {row['std']:.2f} ({row['optimum_found']:2d})".rjust(20)
            for row in result["budgets"].values()
        )
        lines.append(f"{name:16s} {cells}")
    return "\n".join(lines)


def parse_overrides(items):
    """`--set KEY=JSON` for the controller settings the CLI exposes (both RL algorithms)."""
    overrides = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or key not in OVERRIDABLE:
            raise ValueError(
                f"`--set` must look like KEY=JSON with KEY in {', '.join(OVERRIDABLE)} "
                f"(the CLI's --controller-batch, --learning-rate, --entropy-weight). "
                f"Received: --set {item}"
            )
        overrides[key] = json.loads(value)
    return overrides


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=DEFAULT_TABLE, help="NAS-Bench-201-style CSV")
    parser.add_argument("--metric", default=None, help="accuracy column of --table")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument(
        "--algorithms",
        default=",".join(DEFAULT_ENTRIES),
        help="ALGORITHM[:budget|paper], comma-separated",
    )
    parser.add_argument("--set", action="append", default=[], help="KEY=JSON controller override")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)

    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.tabular import TabularEvaluator

    try:
        entries = args.algorithms.split(",")
        for entry in entries:
            parse_entry(entry)
        overrides = parse_overrides(args.set)
        budgets = tuple(sorted(int(b) for b in args.budgets.split(",")))
    except ValueError as error:
        parser.error(str(error))
    if args.seeds < 1 or args.workers < 1 or min(budgets) < 1:
        parser.error("--seeds, --workers and --budgets must be >= 1")
    evaluator = TabularEvaluator(args.table, metric=args.metric, space=NASBench201Space())
    optimum = evaluator.best()[1]
    tasks = [(e, seed, budgets, overrides) for e in entries for seed in range(args.seeds)]

    os.environ.update(SINGLE_THREAD_ENV)  # inherited by the spawned workers
    start = time.time()
    curves = {e: {} for e in entries}
    seconds = {e: 0.0 for e in entries}
    context = multiprocessing.get_context("spawn")
    initargs = (args.table, evaluator.metric)
    with context.Pool(args.workers, initializer=_init_worker, initargs=initargs) as pool:
        for entry, seed, curve, took in pool.imap_unordered(_run_task, tasks):
            curves[entry][seed] = curve
            seconds[entry] += took
            print(
                f"  {entry} seed {seed}: best {curve[max(budgets)]:.2f} [{took:.1f}s]", flush=True
            )
    results = {
        e: {
            "budgets": summarize([curves[e][s] for s in sorted(curves[e])], budgets, optimum),
            "runs": [curves[e][s] for s in sorted(curves[e])],
            "worker_seconds": seconds[e],
        }
        for e in entries
    }
    print(f"{args.table} ({evaluator.metric}), optimum {optimum}, {args.seeds} seeds")
    print("best value found: mean +- std (runs that found the optimum)")
    print(format_table(results, budgets))
    print(f"total {time.time() - start:.0f}s with {args.workers} worker(s)")
    if args.out:
        from nasnet_app.io_utils import atomic_write_json

        atomic_write_json(
            args.out,
            {
                "table": args.table,
                "metric": evaluator.metric,
                "optimum": optimum,
                "seeds": args.seeds,
                "overrides": overrides,
                "results": results,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
