"""`nasnet-app search`: run (or resume) an architecture search from the shell.

Example (shell):

    nasnet-app search --space nasbench201 --table ../shared/data/nasbench201/cifar10.csv \\
        --trials 200 --algorithm reinforce --batch-size 10 --seed 0 --out runs/nb201
    nasnet-app search --space nasnet --data demo --trials 8 --epochs 1 --out runs/cells \\
        --workers 2
    nasnet-app search --out runs/cells --resume --trials 16   # carry on, with a larger budget

`RUN_DIR` receives `trials.jsonl`, `summary.json`, `checkpoint/`, the settings
(`cli_args.json`), `progress.png` and the best cell (`best_cell.json`, `.png`).
A folder that holds a run is never overwritten: continue it with `--resume`
(its saved settings are reused; only the budget and where children run may
change).
"""

import argparse
import os
import random
import sys

from nasnet_app.io_utils import atomic_write_json

SPACES = ("nasnet", "macro", "nasbench201")
ALGORITHMS = ("reinforce", "ppo", "random", "evolution")
EXECUTORS = ("local", "ray")
SETTINGS_FILE = "cli_args.json"
# Settings a resumed run may change; every other one must match the saved run.
RESUME_OVERRIDES = (
    "trials",
    "workers",
    "executor",
    "ray_address",
    "gpus_per_child",
    "threads_per_child",
    "max_children_per_worker",
    "verbose",
    "tensorboard",
)
DEFAULTS = {
    "algorithm": "reinforce",
    "blocks": 5,
    "layers": 6,
    "child_blocks": 1,
    "child_filters": 8,
    "epochs": 2,
    "child_batch_size": 32,
    "learning_rate": 0.05,
    "reward_epochs": 1,
    "reward_transform": "none",
    "image_size": 32,
    "val_fraction": 0.1,
    "workers": 1,
    "verbose": 1,
    "asynchronous": False,
    "tensorboard": False,
}


class CommandError(ValueError):
    """A problem with the command line, reported without a traceback."""


def add_commands(subparsers):
    """Registers `search` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "search",
        help="search cell architectures (REINFORCE, PPO, random, evolution)",
        description=__doc__.split("\n\n")[0],
    )
    run = parser.add_argument_group("the search")
    run.add_argument("--space", choices=SPACES, help="search space")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--data", help="image folder (one sub-folder per class), archive or 'demo'")
    source.add_argument("--table", help="CSV with an `arch` column (NAS-Bench-201 table)")
    run.add_argument("--metric", help="accuracy column of --table (default: the only other one)")
    run.add_argument("--trials", type=int, help="distinct architectures to evaluate")
    run.add_argument("--seed", type=int, help="seed of the algorithm and the children")
    run.add_argument("--algorithm", choices=ALGORITHMS, help="default: reinforce")
    run.add_argument("--batch-size", type=int, help="children per update (m)")
    run.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    run.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    run.add_argument(
        "--asynchronous",
        action="store_true",
        default=None,
        help="refill free workers at once (asynchronous updates)",
    )
    run.add_argument("--max-staleness", type=int, help="asynchronous: most updates a trial may lag")
    run.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="write TensorBoard scalars to RUN_DIR/tensorboard",
    )
    run.add_argument("--verbose", type=int, choices=(0, 1, 2), help="0 quiet, 1 bar, 2 lines")
    space = parser.add_argument_group("spaces")
    space.add_argument("--blocks", type=int, help="nasnet: blocks per cell (default 5)")
    space.add_argument("--layers", type=int, help="macro: conv layers (default 6)")
    child = parser.add_argument_group("child training (--data)")
    child.add_argument("--child-blocks", type=int, help="normal cells per stack (default 1)")
    child.add_argument("--child-filters", type=int, help="filters of the first stack (default 8)")
    child.add_argument("--epochs", type=int, help="epochs per child (default 2)")
    child.add_argument("--child-batch-size", type=int, help="default 32")
    child.add_argument("--learning-rate", type=float, help="SGD cosine start (default 0.05)")
    child.add_argument("--reward-epochs", type=int, help="reward: best of the last k (default 1)")
    child.add_argument("--reward-transform", choices=("none", "cube"))
    child.add_argument("--image-size", type=int, help="image side in pixels (default 32)")
    child.add_argument("--val-fraction", type=float, help="held out for the reward (default 0.1)")
    child.add_argument("--steps-per-epoch", type=int, help="cap on steps per epoch")
    where = parser.add_argument_group("where children run")
    where.add_argument("--workers", type=int, help="children at once (default 1)")
    where.add_argument("--executor", choices=EXECUTORS, help="default: local when --workers > 1")
    where.add_argument("--ray-address", help="Ray cluster address (default: a local instance)")
    where.add_argument("--gpus-per-child", type=int, help="GPUs per child")
    where.add_argument("--threads-per-child", type=int, help="CPU threads per child")
    where.add_argument(
        "--max-children-per-worker",
        type=int,
        help="local: replace a worker process after this many children",
    )
    parser.set_defaults(func=run_search)


def _explicit(args):
    """The settings given on the command line (argparse leaves the others None)."""
    skip = {"func", "command", "out", "resume"}
    return {k: v for k, v in vars(args).items() if v is not None and k not in skip}


def _settings(args):
    """The run's settings: saved ones on --resume, else the command line's with defaults."""
    from nasnet_app.search.run_directory import RunDirectory

    given = _explicit(args)
    run_dir = RunDirectory(args.out)
    saved_path = os.path.join(args.out, SETTINGS_FILE)
    if run_dir.has_run() and not args.resume:
        raise CommandError(
            f"{args.out} already holds a search run. Pass --resume to continue it, or choose "
            "another --out."
        )
    if args.resume and os.path.exists(saved_path):
        import json

        with open(saved_path, encoding="utf-8") as handle:
            settings = json.load(handle)
        for key, value in given.items():
            if key not in RESUME_OVERRIDES and settings.get(key) != value:
                raise CommandError(
                    f"--{key.replace('_', '-')} {value} differs from the run's saved setting "
                    f"({settings.get(key)}); on --resume only "
                    f"{', '.join('--' + k.replace('_', '-') for k in RESUME_OVERRIDES)} may change."
                )
        settings.update(given)
        return settings
    settings = {**DEFAULTS, **given}
    settings.setdefault("seed", random.SystemRandom().randrange(2**31 - 1))
    return settings


def _check(settings):
    for name in ("space", "trials"):
        if settings.get(name) is None:
            raise CommandError(f"--{name} is required for a new run.")
    if (settings.get("data") is None) == (settings.get("table") is None):
        raise CommandError("give one of --data DIR (train children) or --table CSV (look up).")
    if settings.get("table") and settings["space"] != "nasbench201":
        raise CommandError(
            f"--table works with --space nasbench201 (its arch strings). "
            f"Received: --space {settings['space']}"
        )
    if settings.get("data") and settings["space"] == "nasbench201":
        raise CommandError(
            "--space nasbench201 needs --table: this project builds no NAS-Bench-201 networks."
        )
    if settings.get("metric") and not settings.get("table"):
        raise CommandError("--metric names a column of --table; there is no --table.")


def _space(settings):
    from nasnet_app.search import spaces

    if settings["space"] == "nasnet":
        return spaces.NASNetCellSpace(num_blocks=settings["blocks"])
    if settings["space"] == "macro":
        return spaces.NASMacroSpace(num_layers=settings["layers"])
    return spaces.NASBench201Space()


def _algorithm(settings, space):
    from nasnet_app.search import algorithms

    seed, kind = settings["seed"], settings["algorithm"]
    if kind in ("reinforce", "ppo"):
        rule = algorithms.Reinforce if kind == "reinforce" else algorithms.PPO
        extra = {"batch_size": settings["batch_size"]} if settings.get("batch_size") else {}
        return rule(space, seed=seed, **extra)
    if kind == "evolution":
        return algorithms.RegularizedEvolution(space, seed=seed)
    return algorithms.RandomSearch(space, seed=seed)


def _evaluator(settings):
    if settings.get("table"):
        from nasnet_app.search.tabular import TabularEvaluator

        return TabularEvaluator(settings["table"], metric=settings.get("metric"))
    from nasnet_app.search.evaluators import ChildTrainer

    return ChildTrainer(
        num_blocks=settings["child_blocks"],
        filters=settings["child_filters"],
        epochs=settings["epochs"],
        batch_size=settings["child_batch_size"],
        learning_rate=settings["learning_rate"],
        reward_epochs=settings["reward_epochs"],
        reward_transform=None if settings["reward_transform"] == "none" else "cube",
        image_size=(settings["image_size"], settings["image_size"]),
        val_fraction=settings["val_fraction"],
        steps_per_epoch=settings.get("steps_per_epoch"),
    )


def _executor(settings):
    from nasnet_app.search import executors

    workers, kind = settings["workers"], settings.get("executor")
    if kind is None:
        kind = "local" if workers > 1 else "in-process"
    if kind == "ray":
        return executors.RayExecutor(
            address=settings.get("ray_address"),
            workers=workers,
            cpus_per_child=settings.get("threads_per_child") or 1,
            gpus_per_child=settings.get("gpus_per_child") or 0,
        )
    if settings.get("ray_address"):
        raise CommandError("--ray-address needs --executor ray.")
    if kind == "local":
        return executors.LocalProcessExecutor(
            workers=workers,
            gpus_per_child=settings.get("gpus_per_child"),
            threads_per_child=settings.get("threads_per_child"),
            max_children_per_worker=settings.get("max_children_per_worker"),
        )
    return executors.InProcessExecutor()


def _callbacks(settings, out):
    from nasnet_app.search import callbacks

    chosen = [
        callbacks.ProgressPlot(os.path.join(out, "progress.png"), every=10),
        callbacks.BestCellExporter(out),
    ]
    if settings.get("tensorboard"):
        chosen.append(callbacks.TensorBoard(os.path.join(out, "tensorboard")))
    return chosen


def run_search(args):
    """Runs `nasnet-app search`; returns the exit code."""
    from nasnet_app.search.cell_search import CellSearch

    try:
        settings = _settings(args)
        _check(settings)
        space = _space(settings)
        algorithm, evaluator = _algorithm(settings, space), _evaluator(settings)
        search = CellSearch(space, algorithm, evaluator, _executor(settings))
        os.makedirs(args.out, exist_ok=True)
        atomic_write_json(os.path.join(args.out, SETTINGS_FILE), settings)
        history = search.search(
            settings.get("data"),
            max_trials=settings["trials"],
            batch_size=settings.get("batch_size"),
            callbacks=_callbacks(settings, args.out),
            directory=args.out,
            resume=args.resume,
            seed=settings["seed"],
            asynchronous=settings["asynchronous"],
            max_staleness=settings.get("max_staleness"),
            verbose=settings["verbose"],
        )
    except KeyboardInterrupt:
        print(f"\nInterrupted. Continue with: --out {args.out} --resume", file=sys.stderr)
        return 130
    except (CommandError, ValueError, TypeError, FileExistsError, ImportError) as error:
        print(f"nasnet-app search: error: {error}", file=sys.stderr)
        return 2
    _report(history, args.out)
    return 0


def _report(history, out):
    summary = history.summary()
    print(
        f"{summary['num_evaluated']} architectures evaluated ({summary['num_failed']} failed, "
        f"{summary['num_cached']} cached); best reward {summary['best_reward']}"
    )
    if history.best_trial is not None:
        print(f"best architecture (trial {history.best_trial.trial_id}): {out}/best_cell.json")
    if history.stop_reason:
        print(f"stopped early: {history.stop_reason}")


def main(argv=None):
    """Runs the subcommand standalone: `python -m nasnet_app.search.cli search ...`."""
    parser = argparse.ArgumentParser(prog="nasnet-app")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
