"""The recipe of the shipped `nasnet_a_cifar10` checkpoint, made of library calls only.

NASNet-A with the CIFAR stem trained from scratch on the 50,000 CIFAR-10
training images by `nasnet_app.finetune.finetune` (its from-scratch recipe:
SGD with Nesterov momentum and a cosine schedule over the whole run, label
smoothing, weight decay, the auxiliary head, scheduled drop path) with
cutout, reading the JPEG archive through `nasnet_app.data`. The test split is
evaluated after every epoch for the record only: nothing is selected on it.

    .venv/bin/python tools/train_cifar10.py --out training_runs/nasnet_a_cifar10

Rerunning the same command resumes after the last finished epoch (the trainer
checkpoints model, optimizer and data order every epoch). The result is
`OUT/model.keras`; score it with `nasnet-app evaluate --model OUT/model.keras
--data ../shared/data/cifar10-jpeg.tar.gz` and ship it with
`tools/ship_checkpoint.py`. Before the schedule ends, `--export-last-epoch
PATH` writes the model of the last finished epoch to PATH (a `.keras` file,
no training), to ship or evaluate a run in progress.
"""

import argparse
import os

from nasnet_app import data as data_lib
from nasnet_app.finetune import (
    STATE_FILE,
    finetune,
    read_run_state,
    restore_checkpoint,
    scratch_model,
)
from nasnet_app.io_utils import atomic_path


def model_config(args):
    return {
        "num_blocks": args.num_blocks,
        "penultimate_filters": args.penultimate_filters,
        "stem": "cifar",
        "stem_filters": args.stem_filters,
        "bn_momentum": 0.9,
        "bn_epsilon": 1e-5,
        "aux_head": True,
    }


def export_last_epoch(args):
    # The run's own record names its classes and size: no need to read the archive.
    state = read_run_state(args.out)
    if state is None:
        raise SystemExit(f"{args.out}: no finished epoch to export (no {STATE_FILE})")
    settings = state["settings"]
    model = scratch_model(
        "nasnet_a",
        settings["class_names"],
        tuple(settings["image_size"]),
        model_config(args),
        args.drop_path_keep_prob,
    )
    state = restore_checkpoint(args.out, model)
    with atomic_path(args.export_last_epoch, suffix=".keras") as tmp:
        model.save(tmp)
    accuracy = state["history"][-1].get("val_accuracy")
    print(f"wrote {args.export_last_epoch}: epoch {state['epochs_done']}, test accuracy {accuracy}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", default="../shared/data/cifar10-jpeg.tar.gz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--num-blocks", type=int, default=2)
    parser.add_argument("--penultimate-filters", type=int, default=240)
    parser.add_argument("--stem-filters", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--drop-path-keep-prob", type=float, default=0.8)
    parser.add_argument("--cutout", type=int, default=16)
    parser.add_argument("--mixed-precision", default=None, choices=["mixed_bfloat16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export-last-epoch", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    if args.export_last_epoch:
        return export_last_epoch(args)
    result = finetune(
        "nasnet_a",
        data_lib.load(args.archive),
        args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        label_smoothing=0.1,
        augment=data_lib.Augment(cutout=args.cutout),
        validation_split="test",
        model_config=model_config(args),
        drop_path_keep_prob=args.drop_path_keep_prob,
        mixed_precision=args.mixed_precision or False,
        resume=os.path.exists(os.path.join(args.out, STATE_FILE)),
        seed=args.seed,
        verbose=2,
    )
    last = result.history[-1]
    print(f"done: {len(result.history)} epochs, test accuracy {last.get('val_accuracy'):.4f}")


if __name__ == "__main__":
    main()
