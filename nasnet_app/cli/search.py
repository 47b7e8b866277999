"""`nasnet-app search`: run (or resume) an architecture search from the shell.

    nasnet-app search --space nasbench201 --table ../shared/data/nasbench201/cifar10.csv \\
        --trials 200 --algorithm reinforce --batch-size 10 --seed 0 --out runs/nb201
    nasnet-app search --space nasnet --data demo --trials 8 --epochs 1 --out runs/cells \\
        --workers 2
    nasnet-app search --out runs/cells --resume --trials 16   # carry on, with a larger budget

`RUN_DIR` receives `trials.jsonl`, `summary.json`, `checkpoint/`, the settings
(`cli_args.json`, written once the run has started), `progress.png` and the
best cell (`best_cell.json`, `.png`). A folder that holds a run is never
overwritten: continue it with `--resume` (its saved settings are reused; only
the budget and where children run may change). The data or table is checked
before the first trial; a run in which no trial completed exits 1 with the
first error.
"""

import json
import os
import random
import shlex

from nasnet_app.cli import _common

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
    # Weight sharing: the derivation runs after the last epoch (a finished run derives again).
    "derive_samples",
    "derive_images",
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
    "controller_settings": "budget",
    "image_size": 32,
    "val_fraction": 0.1,
    "workers": 1,
    "verbose": 1,
    "asynchronous": False,
    "tensorboard": False,
}
POSITIVE, COUNT = _common.positive_int, _common.non_negative_int


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers,
        "search",
        help="search cell architectures (REINFORCE, PPO, random, evolution)",
        description="Search cell architectures: train children on --data or look them up in "
        "a --table. Continue a stopped run with --out RUN_DIR --resume.",
    )
    run_group = parser.add_argument_group("the search")
    run_group.add_argument("--space", choices=SPACES, help="search space")
    source = run_group.add_mutually_exclusive_group()
    source.add_argument("--data", help="image folder (one sub-folder per class), archive or demo")
    source.add_argument("--table", help="CSV with an `arch` column (NAS-Bench-201 table)")
    run_group.add_argument("--metric", help="accuracy column of --table (default: the only one)")
    run_group.add_argument("--trials", type=POSITIVE, help="distinct architectures to evaluate")
    run_group.add_argument("--seed", type=COUNT, help="seed of the algorithm and the children")
    run_group.add_argument("--algorithm", choices=ALGORITHMS, help="default: reinforce")
    controller = parser.add_argument_group("the controller (reinforce, ppo)")
    controller.add_argument(
        "--settings",
        dest="controller_settings",
        choices=("budget", "paper"),
        help="budget: chosen from --trials (default); paper: Zoph & Le's Adam 3.5e-4, m=20",
    )
    controller.add_argument(
        "--controller-batch",
        "--batch-size",
        dest="batch_size",
        type=POSITIVE,
        help="children per controller update (m; default from the budget)",
    )
    controller.add_argument(
        "--learning-rate",
        dest="controller_learning_rate",
        type=_common.positive_float,
        help="controller Adam learning rate (default from the budget)",
    )
    controller.add_argument(
        "--entropy-weight",
        type=_common.non_negative_float,
        help="weight of the entropy bonus (default from the budget)",
    )
    run_group.add_argument(
        "--reward-transform",
        choices=("none", "cube"),
        help="the objective's transform of the accuracy (cube: Zoph & Le 2017)",
    )
    run_group.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    run_group.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    run_group.add_argument(
        "--asynchronous",
        action="store_true",
        default=None,
        help="refill free workers at once (asynchronous updates)",
    )
    run_group.add_argument(
        "--max-staleness", type=COUNT, help="asynchronous: most updates a trial may lag"
    )
    run_group.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="write TensorBoard scalars to RUN_DIR/tensorboard",
    )
    run_group.add_argument("--verbose", type=int, choices=(0, 1, 2), help="0 quiet, 1 bar, 2 lines")
    space = parser.add_argument_group("spaces")
    space.add_argument("--blocks", type=POSITIVE, help="nasnet: blocks per cell (default 5)")
    space.add_argument("--layers", type=POSITIVE, help="macro: conv layers (default 6)")
    child = parser.add_argument_group("child training (--data)")
    child.add_argument("--child-blocks", type=POSITIVE, help="normal cells per stack (default 1)")
    child.add_argument("--child-filters", type=POSITIVE, help="filters of the first stack (8)")
    child.add_argument("--epochs", type=POSITIVE, help="epochs per child (default 2)")
    child.add_argument("--child-batch-size", type=POSITIVE, help="default 32")
    child.add_argument(
        "--child-learning-rate",
        dest="learning_rate",
        type=_common.positive_float,
        help="SGD cosine start (default 0.05)",
    )
    child.add_argument("--reward-epochs", type=POSITIVE, help="reward: best of the last k (1)")
    child.add_argument("--image-size", type=POSITIVE, help="image side in pixels (default 32)")
    child.add_argument(
        "--val-fraction", type=_common.open_unit, help="held out for the reward (default 0.1)"
    )
    child.add_argument("--steps-per-epoch", type=POSITIVE, help="cap on steps per epoch")
    where = parser.add_argument_group("where children run")
    where.add_argument("--workers", type=POSITIVE, help="children at once (default 1)")
    where.add_argument("--executor", choices=EXECUTORS, help="default: local when --workers > 1")
    where.add_argument("--ray-address", help="Ray cluster address (default: a local instance)")
    where.add_argument("--gpus-per-child", type=COUNT, help="GPUs per child")
    where.add_argument("--threads-per-child", type=POSITIVE, help="CPU threads per child")
    where.add_argument(
        "--max-children-per-worker",
        type=POSITIVE,
        help="local: replace a worker process after this many children",
    )
    _add_weight_sharing_arguments(parser)
    parser.set_defaults(run=run, tensorflow=True, resume_command=resume_command)


def resume_command(args):
    return shlex.join(["nasnet-app", "search", "--out", args.out, "--resume"])


# --------------------------------------------------------------------------- settings


def _explicit(args):
    """The settings given on the command line (argparse leaves the others None)."""
    skip = {"run", "command", "out", "resume", "debug", "tensorflow", "resume_command", "argv"}
    return {k: v for k, v in vars(args).items() if v is not None and k not in skip}


def _saved_settings(out):
    from nasnet_app.search.run_directory import RunDirectory

    if not os.path.isdir(out):
        raise _common.CommandFailed(f"`--out` {out} does not exist: there is no run to resume.")
    saved_path = os.path.join(out, SETTINGS_FILE)
    if not RunDirectory(out).has_run() or not os.path.isfile(saved_path):
        raise _common.CommandFailed(f"{out} holds no search run to resume ({SETTINGS_FILE}).")
    with open(saved_path, encoding="utf-8") as handle:
        return json.load(handle)


def _settings(args):
    """The run's settings: saved ones on --resume, else the command line's with defaults."""
    from nasnet_app.search.run_directory import RunDirectory

    given = _explicit(args)
    if args.resume:
        settings = _saved_settings(args.out)
        for key, value in given.items():
            if key not in RESUME_OVERRIDES and settings.get(key) != value:
                allowed = ", ".join(_common.flag(k) for k in RESUME_OVERRIDES)
                raise _common.UsageError(
                    f"{_common.flag(key)} {value} differs from the run's saved setting "
                    f"({settings.get(key)}); on --resume only {allowed} may change."
                )
        return {**settings, **given}
    if RunDirectory(args.out).has_run():
        raise _common.UsageError(
            f"{args.out} already holds a search run. Add --resume to continue it, or choose "
            "another --out."
        )
    defaults = DEFAULTS
    if given.get("weight_sharing"):
        defaults = {**DEFAULTS, **WEIGHT_SHARING_DEFAULTS}
        if given.get("space") == "nasbench201":
            defaults.update(WEIGHT_SHARING_NB201_DEFAULTS)
    settings = {**defaults, **given}
    settings.setdefault("seed", random.SystemRandom().randrange(2**31 - 1))
    # The controller settings come from the first budget; --resume --trials N keeps them.
    settings["budget_trials"] = settings.get("trials")
    return settings


def _check(settings):
    if settings.get("weight_sharing"):
        return _check_weight_sharing(settings)
    for name in ("space", "trials"):
        if settings.get(name) is None:
            raise _common.UsageError(f"--{name} is required for a new run.")
    if (settings.get("data") is None) == (settings.get("table") is None):
        raise _common.UsageError("give one of --data DIR (train children) or --table CSV.")
    if settings.get("table") and settings["space"] != "nasbench201":
        raise _common.UsageError(
            f"--table works with --space nasbench201 (its arch strings). "
            f"Received: --space {settings['space']}"
        )
    if settings.get("data") and settings["space"] == "nasbench201":
        raise _common.UsageError(
            "--space nasbench201 needs --table: this project builds no NAS-Bench-201 networks."
        )
    if settings.get("metric") and not settings.get("table"):
        raise _common.UsageError("--metric names a column of --table; there is no --table.")
    if settings.get("ray_address") and settings.get("executor") != "ray":
        raise _common.UsageError("--ray-address needs --executor ray.")


# --------------------------------------------------------------------------- parts


def _space(settings):
    from nasnet_app.search import spaces

    if settings["space"] == "nasnet":
        return spaces.NASNetCellSpace(num_blocks=settings["blocks"])
    if settings["space"] == "macro":
        return spaces.NASMacroSpace(num_layers=settings["layers"])
    return spaces.NASBench201Space()


def _algorithm(settings, space):
    from nasnet_app.search.algorithms import build_algorithm

    # Runs saved before --settings existed ran the paper's settings.
    return build_algorithm(
        settings["algorithm"],
        space,
        max_trials=settings.get("budget_trials") or settings["trials"],
        settings=settings.get("controller_settings") or "paper",
        seed=settings["seed"],
        batch_size=settings.get("batch_size"),
        learning_rate=settings.get("controller_learning_rate"),
        entropy_weight=settings.get("entropy_weight"),
    )


def _objective(settings):
    from nasnet_app.search.base import Objective

    return Objective(transform="cube" if settings.get("reward_transform") == "cube" else "identity")


def _table_evaluator(settings, space):
    from nasnet_app.search.tabular import TableError, TabularEvaluator

    table = settings["table"]
    if not os.path.isfile(table):
        raise _common.CommandFailed(f"`--table` {table} does not exist.")
    try:
        return TabularEvaluator(table, metric=settings.get("metric"), space=space)
    except TableError as error:
        if error.metric_choices is None:
            raise _common.CommandFailed(str(error)) from None
        given = settings.get("metric")
        received = f" Received: --metric {given}" if given else ""
        raise _common.UsageError(
            f"the table {table} has the accuracy columns {', '.join(error.metric_choices)}: "
            f"choose one with --metric.{received}"
        ) from None


def _evaluator(settings, space):
    if settings.get("table"):
        return _table_evaluator(settings, space)
    _common.check_data_source(settings["data"])
    from nasnet_app.search.evaluators import ChildTrainer

    return ChildTrainer(
        num_blocks=settings["child_blocks"],
        filters=settings["child_filters"],
        epochs=settings["epochs"],
        batch_size=settings["child_batch_size"],
        learning_rate=settings["learning_rate"],
        reward_epochs=settings["reward_epochs"],
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

    class SaveSettings(callbacks.SearchCallback):
        """Writes `cli_args.json` once the run folder holds a started run."""

        def on_search_begin(self, logs=None):
            from nasnet_app.io_utils import atomic_write_json

            atomic_write_json(os.path.join(out, SETTINGS_FILE), settings)

    chosen = [
        SaveSettings(),
        callbacks.ProgressPlot(os.path.join(out, "progress.png"), every=10),
        callbacks.BestCellExporter(out),
    ]
    if settings.get("tensorboard"):
        chosen.append(callbacks.TensorBoard(os.path.join(out, "tensorboard")))
    return chosen


# --------------------------------------------------------------------------- command


def run(args):
    from nasnet_app.search.cell_search import CellSearch

    settings = _settings(args)
    _check(settings)
    if settings.get("weight_sharing"):
        return _run_weight_sharing(settings, args)
    space = _space(settings)
    evaluator = _evaluator(settings, space)
    search = CellSearch(
        space,
        _algorithm(settings, space),
        evaluator,
        _executor(settings),
        objective=_objective(settings),
    )
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
    return _report(history, args.out)


def _report(history, out):
    summary = history.summary()
    print(
        f"{summary['num_evaluated']} architectures evaluated ({summary['num_failed']} failed, "
        f"{summary['num_cached']} cached); best reward {summary['best_reward']}"
    )
    if history.stop_reason:
        print(f"stopped early: {history.stop_reason}")
    if history.best_trial is None:
        failed = [t for t in history.trials if t.status == "failed" and not t.cached]
        if not failed:
            raise _common.CommandFailed(f"no trial completed; the run is in {out}.")
        first = failed[0]
        raise _common.CommandFailed(
            f"no trial completed ({len(failed)} failed); the first error (trial "
            f"{first.trial_id}): {first.error}"
        )
    print(f"best architecture (trial {history.best_trial.trial_id}): {out}/best_cell.json")
    return 0


# --------------------------------------------------------------------------- weight sharing
# `--weight-sharing`: ENAS (or, with --algorithm random, random search with
# weight sharing) over a supernet; see nasnet_app.search.weight_sharing.

# The defaults of `--space nasbench201 --weight-sharing`: a budget that fits
# 90 minutes on a 2-core CPU (see the README's weight-sharing benchmark).
WEIGHT_SHARING_DEFAULTS = {
    "epochs": 30,
    "child_filters": 8,
    "child_blocks": 2,
    "child_batch_size": 64,
    "learning_rate": 0.05,
    "val_fraction": 0.5,
    "derive_samples": 10,
}
# NAS-Bench-201 supernet: one wide cell per stage, and training paths without
# `none`. `bench_weight_sharing.py rank` on CIFAR-10 (6,000 uniform steps):
# Kendall tau of supernet vs table accuracy +0.32 for C = 16, N = 1 without
# `none`, against +0.04 with C = 8, N = 2 without `none`, and -0.16 with all ops.
# 60 epochs (15 of warm-up) and K = 50 candidates scored on 5,000 validation images:
# derived cell 93.04 +- 0.45 table accuracy over 3 seeds, against 92.10 +- 0.75 with
# 30 epochs and K = 10 on all 25,000 (the same scoring cost); 69-99 min a run on the
# loaded 2-core CPU, about 35 min idle (README: weight sharing, measured).
WEIGHT_SHARING_NB201_DEFAULTS = {
    "epochs": 60,
    "child_filters": 16,
    "child_blocks": 1,
    "training_ops": ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"],
    "derive_samples": 50,
    "derive_images": 5000,
}
WEIGHT_SHARING_ALGORITHMS = {"reinforce": "enas", "random": "random"}


def _add_weight_sharing_arguments(parser):
    # The help's defaults come from the dictionaries above, so they cannot drift.
    base = WEIGHT_SHARING_DEFAULTS
    nb201 = {**WEIGHT_SHARING_DEFAULTS, **WEIGHT_SHARING_NB201_DEFAULTS}
    sizes = ("child_filters", "child_blocks", "child_batch_size")
    group = parser.add_argument_group(
        "weight sharing (--weight-sharing: ENAS; children are paths through one supernet)"
    )
    group.add_argument(
        "--weight-sharing",
        action="store_true",
        default=None,
        help="ENAS: alternate supernet epochs (--epochs) and controller updates; "
        "--algorithm random: uniform sampling with the same supernet; --child-filters, "
        f"--child-blocks, --child-batch-size size the supernet (defaults: "
        f"{', '.join(str(base[k]) for k in sizes)} and {base['epochs']} epochs; nasbench201: "
        f"{', '.join(str(nb201[k]) for k in sizes)} and {nb201['epochs']} epochs)",
    )
    group.add_argument(
        "--warmup-epochs", type=COUNT, help="uniform sampling before controller updates"
    )
    group.add_argument(
        "--derive-samples",
        type=POSITIVE,
        help=f"architectures scored at the end (default {base['derive_samples']}; "
        f"nasbench201: {nb201['derive_samples']})",
    )
    group.add_argument(
        "--derive-images",
        type=POSITIVE,
        help="validation images that score each of them (default: all; nasbench201: "
        f"{nb201['derive_images']}); "
        "--resume of a finished run with other --derive-samples / --derive-images derives "
        "it again",
    )
    group.add_argument(
        "--training-ops",
        nargs="+",
        metavar="OP",
        help="NAS-Bench-201: ops of the uniformly sampled training paths (default: all but "
        "none); the search itself still samples every op",
    )


def _check_weight_sharing(settings):
    if settings.get("space") not in ("nasnet", "nasbench201"):
        raise _common.UsageError(
            "--weight-sharing needs --space nasnet or nasbench201. "
            f"Received: --space {settings.get('space')}"
        )
    if settings.get("data") is None:
        raise _common.UsageError("--weight-sharing trains a supernet: give --data DIR.")
    if settings["algorithm"] not in WEIGHT_SHARING_ALGORITHMS:
        raise _common.UsageError(
            "--weight-sharing runs --algorithm reinforce (ENAS) or random. "
            f"Received: --algorithm {settings['algorithm']}"
        )
    ops = settings.get("training_ops")
    if ops is not None:
        from nasnet_app.search.spaces import NASBench201Space

        known = NASBench201Space().ops
        if settings["space"] != "nasbench201" or set(ops) - set(known):
            raise _common.UsageError(
                f"--training-ops must be ops of --space nasbench201 ({', '.join(known)}). "
                f"Received: --space {settings['space']} --training-ops {' '.join(ops)}"
            )


def _run_weight_sharing(settings, args):
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.weight_sharing import (
        WeightSharingSearch,
        enas_nasnet_space,
        load_image_arrays,
    )

    _common.check_data_source(settings["data"])
    size = settings["image_size"]
    train, val, class_names = load_image_arrays(
        settings["data"], settings["val_fraction"], settings["seed"], (size, size)
    )
    if settings["space"] == "nasbench201":
        space, width = NASBench201Space(), {"channels": settings["child_filters"]}
    else:
        space, width = enas_nasnet_space(settings["blocks"]), {"filters": settings["child_filters"]}
    epochs = settings["epochs"]
    search = WeightSharingSearch(
        space,
        algorithm=WEIGHT_SHARING_ALGORITHMS[settings["algorithm"]],
        supernet_kwargs={**width, "cells_per_stage": settings["child_blocks"]},
        input_shape=(size, size, 3),
        num_classes=len(class_names),
        batch_size=settings["child_batch_size"],
        learning_rate=settings["learning_rate"],
        warmup_epochs=settings.get("warmup_epochs", max(1, epochs // 4)),
        steps_per_epoch=settings.get("steps_per_epoch"),
        derive_samples=settings.get("derive_samples", 10),
        derive_images=settings.get("derive_images"),
        training_ops=settings.get("training_ops"),
        seed=settings["seed"],
    )
    from nasnet_app.search import callbacks

    class SaveSettings(callbacks.SearchCallback):
        def on_search_begin(self, logs=None):
            from nasnet_app.io_utils import atomic_write_json

            atomic_write_json(os.path.join(args.out, SETTINGS_FILE), settings)

    history = search.search(
        train,
        val,
        epochs=epochs,
        directory=args.out,
        resume=args.resume,
        callbacks=[SaveSettings()],
        verbose=settings["verbose"],
    )
    best = history.best_trial
    images = best.metrics["val_images"]
    print(
        f"derived architecture (best of {len(history.trials)} on {images} validation "
        f"images): {best.arch_key} - supernet validation accuracy {best.reward:.4f}"
    )
    print(f"summary: {os.path.join(args.out, 'summary.json')}")
    return 0
