"""`nasnet-app finetune`: fine-tune a model, or train a genotype from scratch, on images.

    nasnet-app finetune --data DIR (--preset NAME | --model MODEL.keras | --genotype FILE.json)
        --out RUN_DIR [--epochs N] [--resume]

`--data` takes an image folder (class folders, optionally under train/val/test),
a `.tar`/`.tar.gz` of such a tree, a CIFAR-10 python batches folder,
`tfds:NAME[@DATA_DIR]`, or `demo` (the bundled CIFAR-10 subset).

`--resume` continues the run in `RUN_DIR` with the same arguments; the
phase split (`--head-epochs`) of the saved run is kept. A larger `--epochs` is
passed on to the trainer, to extend the run to the new total.
"""

import json
import os
import shlex
import sys

from nasnet_app.cli import _common

STATE_FILE = "state.json"
# Trainer setting -> the flag that sets it; on --resume a given flag must match the saved run.
RESUME_CHECKED = {
    "batch_size": "--batch-size",
    "optimizer": "--optimizer",
    "learning_rate": "--lr",
    "weight_decay": "--weight-decay",
    "label_smoothing": "--label-smoothing",
    "seed": "--seed",
    "head_epochs": "--head-epochs",
    "backbone_learning_rate_factor": "--backbone-lr-factor",
}


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers,
        "finetune",
        help="fine-tune a model (or train a genotype) on an image dataset",
        description="Fine-tune a preset or saved model on an image dataset (a new head, then the "
        "whole network), or train a genotype from scratch. Checkpoints every epoch; --resume "
        "continues a stopped run (a larger --epochs extends it).",
    )
    positive, count = _common.positive_int, _common.non_negative_int
    parser.add_argument("--data", required=True, help="folder, archive, tfds:NAME or demo")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="a zoo preset, loaded with its pretrained weights")
    source.add_argument("--model", help="a saved .keras model")
    source.add_argument("--genotype", help="a genotype JSON file or catalogue name (from scratch)")
    parser.add_argument("--out", required=True, help="the run folder")
    parser.add_argument("--epochs", type=positive, default=10, help="total epochs (default 10)")
    parser.add_argument("--head-epochs", type=count, help="epochs with the backbone frozen")
    parser.add_argument("--batch-size", type=positive, default=64)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    parser.add_argument(
        "--lr", type=_common.positive_float, help="peak learning rate of the first phase"
    )
    parser.add_argument(
        "--backbone-lr-factor",
        type=_common.open_fraction,
        help="after the head epochs the whole network trains at --lr times this (default 1)",
    )
    parser.add_argument("--weight-decay", type=_common.non_negative_float)
    parser.add_argument("--label-smoothing", type=_common.fraction, default=0.1)
    parser.add_argument("--cutout", type=count, default=0, help="cutout square side in pixels")
    parser.add_argument(
        "--val-fraction", type=_common.open_unit, help="hold out this fraction of train"
    )
    parser.add_argument(
        "--validation-split",
        help="what validates each epoch: holdout (default without a val/ split: 10%% of each "
        "class of train/, test/ is kept for evaluate), val, test, train, none, or a fraction",
    )
    _common.add_skip_bad_images(parser, "the run folder")
    parser.add_argument("--image-size", type=positive, help="training resolution (square)")
    parser.add_argument("--num-blocks", type=positive, help="--genotype: normal cells per stack")
    parser.add_argument(
        "--penultimate-filters", type=positive, help="--genotype: width of the last cell"
    )
    parser.add_argument("--stem-filters", type=positive, help="--genotype: stem filters")
    parser.add_argument(
        "--drop-path-keep-prob",
        type=_common.open_fraction,
        default=0.6,
        help="--genotype only (default 0.6)",
    )
    _common.add_mixed_precision(parser, "train")
    parser.add_argument("--seed", type=count, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no bars")
    parser.set_defaults(run=run, tensorflow=True, resume_command=resume_command)


def resume_command(args):
    """The command line that continues this run: the same arguments plus `--resume`."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    if "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(["nasnet-app", *argv])


def _model_config(args):
    pairs = (
        ("num_blocks", args.num_blocks),
        ("penultimate_filters", args.penultimate_filters),
        ("stem_filters", args.stem_filters),
    )
    return {key: value for key, value in pairs if value is not None} or None


def _saved_settings(out):
    path = os.path.join(out, STATE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    return {"epochs_done": state.get("epochs_done", 0), **state.get("settings", {})}


def check_run_folder(args):
    """`--resume` needs a run in `--out`; a new run needs an `--out` without one."""
    saved = _saved_settings(args.out) if os.path.isdir(args.out) else None
    if args.resume:
        if not os.path.isdir(args.out):
            raise _common.CommandFailed(f"`--out` {args.out} does not exist: nothing to resume.")
        if saved is None:
            raise _common.CommandFailed(f"{args.out} holds no fine-tuning run to resume.")
        if args.epochs < saved["epochs_done"]:
            raise _common.UsageError(
                f"--epochs {args.epochs} is fewer than the {saved['epochs_done']} epochs "
                f"{args.out} has trained already."
            )
        _check_same_settings(args, saved)
    elif saved is not None:
        raise _common.UsageError(
            f"{args.out} already holds a fine-tuning run (epoch {saved['epochs_done']} of "
            f"{saved.get('epochs')}). Add --resume to continue it, or choose another --out."
        )
    elif os.path.exists(args.out) and not os.path.isdir(args.out):
        raise _common.CommandFailed(f"`--out` {args.out} is a file, not a folder.")


def _check_same_settings(args, saved):
    given = {
        "learning_rate": args.lr,
        "backbone_learning_rate_factor": args.backbone_lr_factor,
        **vars(args),
    }
    for name, option in RESUME_CHECKED.items():
        value = given.get(name)
        if value is not None and name in saved and saved[name] != value:
            raise _common.UsageError(
                f"{option} {value} differs from the setting of the run in {args.out} "
                f"({saved[name]}); resume with the same arguments, or choose another --out."
            )


def _start_model(args):
    if args.preset:
        from nasnet_app import zoo

        return zoo.load(_common.check_preset(args.preset), weights="pretrained")
    if args.model:
        return _common.load_model(args.model)
    if args.genotype.endswith(".json") and not os.path.isfile(args.genotype):
        raise _common.CommandFailed(f"`--genotype` file {args.genotype} does not exist.")
    return args.genotype


def run(args):
    from nasnet_app import data as data_lib
    from nasnet_app.finetune import finetune

    check_run_folder(args)
    data = _common.check_data_source(
        args.data,
        val_fraction=args.val_fraction,
        seed=args.seed,
        **_common.bad_image_options(args, args.out),
    )
    result = finetune(
        _start_model(args),
        data,
        args.out,
        epochs=args.epochs,
        head_epochs=args.head_epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        backbone_learning_rate_factor=args.backbone_lr_factor,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        augment=data_lib.Augment(cutout=args.cutout),
        image_size=args.image_size,
        validation_split=args.validation_split,
        model_config=_model_config(args),
        drop_path_keep_prob=args.drop_path_keep_prob,
        mixed_precision=args.mixed_precision,
        resume=args.resume,
        seed=args.seed,
        verbose=2 if args.quiet else 1,
    )
    last = result.history[-1] if result.history else {}
    summary = ", ".join(f"{k} {last[k]:.4f}" for k in ("accuracy", "val_accuracy") if k in last)
    print(f"finished {len(result.history)} epochs ({summary}); model: {result.paths['model']}")
    return 0
