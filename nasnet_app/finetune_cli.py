"""`nasnet-app finetune` and `nasnet-app evaluate`.

    nasnet-app finetune --data DIR (--preset NAME | --model MODEL.keras | --genotype FILE.json)
        --out RUN_DIR [--epochs N] [--resume]
    nasnet-app evaluate (--model MODEL.keras | --preset NAME) --data DIR --out REPORT_DIR

`--data` takes an image folder (class folders, optionally under train/val/test),
a `.tar`/`.tar.gz` of such a tree, a CIFAR-10 python batches folder,
`tfds:NAME[@DATA_DIR]`, or `demo` (the bundled CIFAR-10 subset).

The zoo and the evaluation package are imported inside the command functions
only, so that the core package does not depend on them.
"""

import sys

from nasnet_app.classifier import ImageReadError

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, ImageReadError)


def add_commands(subparsers):
    """Registers the `finetune` and `evaluate` subcommands on an argparse subparsers object."""
    _add_finetune(subparsers)
    _add_evaluate(subparsers)


def _add_finetune(subparsers):
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a model (or train a genotype) on an image dataset",
        description="Fine-tune a preset or saved model on an image dataset (a new head, then the "
        "whole network), or train a genotype from scratch. Checkpoints every epoch; --resume "
        "continues a stopped run.",
    )
    parser.add_argument("--data", required=True, help="folder, archive, tfds:NAME or demo")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="a zoo preset, loaded with its pretrained weights")
    source.add_argument("--model", help="a saved .keras model")
    source.add_argument("--genotype", help="a genotype JSON file or catalogue name (from scratch)")
    parser.add_argument("--out", required=True, help="the run folder")
    parser.add_argument("--epochs", type=int, default=10, help="total epochs (default 10)")
    parser.add_argument("--head-epochs", type=int, help="epochs with the backbone frozen")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    parser.add_argument("--lr", type=float, help="peak learning rate of the first phase")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--cutout", type=int, default=0, help="cutout square side in pixels")
    parser.add_argument("--val-fraction", type=float, help="hold out this fraction of train")
    parser.add_argument("--image-size", type=int, help="training resolution (square)")
    parser.add_argument("--num-blocks", type=int, help="--genotype: normal cells per stack")
    parser.add_argument(
        "--penultimate-filters", type=int, help="--genotype: width of the last cell"
    )
    parser.add_argument("--stem-filters", type=int, help="--genotype: stem convolution filters")
    parser.add_argument("--drop-path-keep-prob", type=float, default=0.6, help="--genotype only")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no bars")
    parser.set_defaults(func=run_finetune)


def _add_evaluate(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on an image dataset and write a report",
        description="Top-1/top-5 accuracy, per-class precision and recall, parameters, "
        "Mult-Adds and latency; writes REPORT_DIR/report.json, a confusion matrix and a grid "
        "of misclassified images.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a saved .keras model (classes.json beside it is used)")
    source.add_argument("--preset", help="a zoo preset, with its pretrained weights")
    parser.add_argument("--data", required=True, help="folder of class folders, archive, ...")
    parser.add_argument("--out", required=True, help="the report folder")
    parser.add_argument("--split", help="default: test, else val, else all images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    parser.set_defaults(func=run_evaluate)


def _error(command, error):
    print(f"nasnet-app {command}: error: {error}", file=sys.stderr)
    return 2


def _model_config(args):
    pairs = (
        ("num_blocks", args.num_blocks),
        ("penultimate_filters", args.penultimate_filters),
        ("stem_filters", args.stem_filters),
    )
    return {key: value for key, value in pairs if value is not None} or None


def run_finetune(args):
    from nasnet_app import data as data_lib
    from nasnet_app.finetune import finetune

    try:
        data = data_lib.load(args.data, val_fraction=args.val_fraction, seed=args.seed)
        model = args.genotype or args.model
        if args.preset:
            from nasnet_app import zoo

            model = zoo.load(args.preset, weights="pretrained")
        result = finetune(
            model,
            data,
            args.out,
            epochs=args.epochs,
            head_epochs=args.head_epochs,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            learning_rate=args.lr,
            weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing,
            augment=data_lib.Augment(cutout=args.cutout),
            image_size=args.image_size,
            model_config=_model_config(args),
            drop_path_keep_prob=args.drop_path_keep_prob,
            mixed_precision=args.mixed_precision,
            resume=args.resume,
            seed=args.seed,
            verbose=2 if args.quiet else 1,
        )
    except USER_ERRORS as error:
        return _error("finetune", error)
    last = result.history[-1] if result.history else {}
    summary = ", ".join(f"{k} {last[k]:.4f}" for k in ("accuracy", "val_accuracy") if k in last)
    print(f"finished {len(result.history)} epochs ({summary}); model: {result.paths['model']}")
    return 0


def _preset_model(name):
    """`(model, class names or "imagenet", preprocessing)` of a zoo preset."""
    from nasnet_app import zoo

    preset = zoo.get_preset(name)
    model = zoo.load(name, weights="pretrained")
    return model, preset.get("labels"), preset.get("preprocessing") or {}


def _imagenet_names(data_classes):
    """ImageNet class names, as WordNet ids when the data's folders are named that way."""
    from nasnet_app.classifier import imagenet_labels

    labels = imagenet_labels()
    wnids = [wnid for wnid, _ in labels]
    return wnids if set(data_classes) <= set(wnids) else [name for _, name in labels]


def run_evaluate(args):
    from nasnet_app import data as data_lib
    from nasnet_app.evaluate.report import evaluate_model, load_model_with_classes

    try:
        data = data_lib.load(args.data)
        preprocessing = {}
        if args.preset:
            model, class_names, preprocessing = _preset_model(args.preset)
            if class_names == "imagenet":
                class_names = _imagenet_names(data.class_names)
        else:
            model, class_names = load_model_with_classes(args.model)
        report = evaluate_model(
            model,
            data,
            args.out,
            split=args.split,
            batch_size=args.batch_size,
            class_names=class_names,
            value_range=tuple(preprocessing.get("scale", (-1.0, 1.0))),
            crop_fraction=preprocessing.get("central_crop_fraction", 1.0),
            latency=not args.no_latency,
            model_name=args.preset or args.model,
        )
    except USER_ERRORS as error:
        return _error("evaluate", error)
    print(
        f"top-1 {report['top1']:.4f}, top-{report['top5_k']} {report['top5']:.4f} on "
        f"{report['examples']} images ({report['split']}); report: {report['files']['report']}"
    )
    return 0
