"""`nasnet-app demo`: the main job, offline, on the real CIFAR-10 images bundled in the package.

Steps (each prints where its output is):

1. NASNet-A Mobile from the catalogue: parameters and Mult-Adds; both cells drawn.
2. The shipped `nasnet_a_cifar10` checkpoint evaluated on the 1,000 bundled test images
   (report, confusion matrix, misclassified grid).
3. A short fine-tune of that checkpoint on the 2,000 bundled training images.
4. A few bundled test images classified by the fine-tuned model.
5. Cell search: REINFORCE on the bundled NAS-Bench-201 CIFAR-10 table (progress plot), then a
   short weight-sharing (ENAS) search on the bundled images: one supernet, the LSTM controller
   rewarded by validation accuracy; its mean reward per epoch is printed, the derived cell drawn.

Like the rest of the CLI package, this module wires core, zoo, search and evaluate together.
"""

import gzip
import os
import shutil
import time

from nasnet_app.cli import _common

NASBENCH201_TABLE = "nasbench201_cifar10.csv.gz"


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers, "demo", help="run the offline demo on bundled real data"
    )
    parser.add_argument("--out", default="demo_output", help="output folder")
    parser.add_argument("--search-trials", type=_common.positive_int, default=100)
    parser.add_argument(
        "--weight-sharing-seconds",
        type=_common.positive_int,
        default=90,
        help="time for the weight-sharing search (default 90)",
    )
    parser.add_argument("--finetune-epochs", type=_common.positive_int, default=2)
    parser.set_defaults(run=run, tensorflow=True)


def _step(title):
    print(f"\n== {title}", flush=True)
    return time.time()


def _done(started, *paths):
    for path in paths:
        print(f"   -> {path}")
    print(f"   ({time.time() - started:.0f} s)", flush=True)


def show_architecture(out):
    import nasnet_app
    from nasnet_app.evaluate.cells import draw_genotype
    from nasnet_app.evaluate.flops import count_mult_adds

    started = _step("NASNet-A Mobile (4 @ 1056) from the genotype catalogue")
    model = nasnet_app.NASNetMobile()
    print(f"   parameters: {model.count_params():,} (published 5.3M)")
    print(f"   Mult-Adds at 224 px: {count_mult_adds(model, (224, 224, 3)):,} (published 564M)")
    path = os.path.join(out, "nasnet_a_cells.png")
    draw_genotype(nasnet_app.NASNET_A, path)
    _done(started, path)


def evaluate_checkpoint(out):
    from nasnet_app import data
    from nasnet_app.evaluate.report import evaluate_model
    from nasnet_app.zoo import load

    started = _step("Shipped checkpoint nasnet_a_cifar10 on the bundled CIFAR-10 test images")
    model = load("nasnet_a_cifar10", weights="pretrained")
    report = evaluate_model(
        model, data.demo_cifar10(), os.path.join(out, "evaluation"), split="test",
        latency_repeats=3, model_name="nasnet_a_cifar10",
    )  # fmt: skip
    print(
        f"   top-1 {report['top1']:.3f}, top-5 {report['top5']:.3f} on {report['examples']} images"
    )
    _done(started, *report["files"].values())
    return model


def finetune_checkpoint(model, out, epochs):
    from nasnet_app import data
    from nasnet_app.finetune import finetune

    started = _step(f"Fine-tuning nasnet_a_cifar10 for {epochs} epochs on the bundled train images")
    result = finetune(
        model, data.demo_cifar10(val_fraction=0.1), os.path.join(out, "finetune"),
        epochs=epochs, head_epochs=1, batch_size=64, verbose=2,
    )  # fmt: skip
    _done(started, result.paths["model"], result.paths["history"], result.paths["curves"])
    return result.paths["model"]


def classify_examples(model_path, out):
    import tarfile

    from nasnet_app import data
    from nasnet_app.classifier import ImageClassifier

    started = _step("Classifying bundled test images with the fine-tuned model")
    folder = os.path.join(out, "examples")
    os.makedirs(folder, exist_ok=True)
    with tarfile.open(data.demo_cifar10_path()) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and "/test/" in f"/{m.name}"]
        picks = members[:: max(1, len(members) // 6)][:6]
        for member in picks:
            with open(os.path.join(folder, os.path.basename(member.name)), "wb") as handle:
                handle.write(tar.extractfile(member).read())
    model = _common.load_model(model_path)
    classifier = ImageClassifier(model, labels=_common.model_class_names(model, model_path))
    paths = [os.path.join(folder, os.path.basename(m.name)) for m in picks]
    for member, top in zip(picks, classifier.classify(paths, top=1)):
        truth = member.name.split("/")[-2]
        print(f"   {member.name}: {top[0].name} ({top[0].probability:.2f}), true {truth}")
    _done(started, folder)


def search_table(out, trials):
    from nasnet_app.assets import asset_path
    from nasnet_app.search.algorithms import build_algorithm
    from nasnet_app.search.callbacks import ProgressPlot
    from nasnet_app.search.cell_search import CellSearch
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.tabular import TabularEvaluator

    started = _step(f"REINFORCE on the NAS-Bench-201 CIFAR-10 table, {trials} architectures")
    run_dir = os.path.join(out, "search_nasbench201")
    shutil.rmtree(run_dir, ignore_errors=True)
    table = os.path.join(out, "nasbench201_cifar10.csv")
    with gzip.open(asset_path(NASBENCH201_TABLE), "rb") as source, open(table, "wb") as target:
        shutil.copyfileobj(source, target)
    space = NASBench201Space()
    algorithm = build_algorithm("reinforce", space, max_trials=trials, seed=0)
    search = CellSearch(space, algorithm, TabularEvaluator(table))
    plot = os.path.join(run_dir, "progress.png")
    history = search.search(
        max_trials=trials, directory=run_dir, callbacks=[ProgressPlot(plot)], verbose=0
    )
    best = history.best_trial
    print(f"   best test accuracy found: {100 * best.reward:.2f}% (table optimum 94.37%)")
    print(f"   best cell: {best.architecture}")
    _done(started, os.path.join(run_dir, "trials.jsonl"), plot)


def search_weight_sharing(out, seconds):
    from nasnet_app.search.weight_sharing import demo_weight_sharing

    started = _step(f"Weight-sharing search (ENAS) on the bundled images, about {seconds} s")
    result = demo_weight_sharing(os.path.join(out, "search_weight_sharing"), seconds, verbose=0)
    rewards = ", ".join(f"{r:.3f}" for r in result["mean_rewards"])
    print(f"   policy mean reward per epoch: {rewards}")
    print(f"   derived cell: {result['arch']} (supernet accuracy {result['val_accuracy']:.3f})")
    _done(started, result["run_dir"], result["drawing"])


def run(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    started = time.time()
    show_architecture(out)
    model = evaluate_checkpoint(out)
    model_path = finetune_checkpoint(model, out, args.finetune_epochs)
    classify_examples(model_path, out)
    search_table(out, args.search_trials)
    search_weight_sharing(out, args.weight_sharing_seconds)
    print(f"\nDemo finished in {time.time() - started:.0f} s; everything is under {out}")
    return 0
