"""Copies a `tools/train_cifar10.py` run into `checkpoints/` and records it in the manifest.

    .venv/bin/python tools/ship_checkpoint.py training_runs/nasnet_a_cifar10 \
        [--data ../shared/data/cifar10-jpeg.tar.gz] [--name nasnet_a_cifar10]

The shipped file holds the weights, the architecture, the image converter and
the class names (no optimizer state). Its accuracy is measured here on the
whole CIFAR-10 test split through `nasnet_app.evaluate.report.predict_split`,
the pipeline `nasnet-app evaluate` uses, so the manifest and `evaluate` agree.
The manifest entry is the checkpoint preset's `Preset.to_dict()` form
(`nasnet_app.zoo.presets.manifest_entry`).
"""

import argparse
import dataclasses
import hashlib
import json
import os

import numpy as np

import nasnet_app
from nasnet_app import data as data_lib
from nasnet_app.catalogue import GENOTYPES
from nasnet_app.evaluate.report import predict_split
from nasnet_app.io_utils import atomic_path, atomic_write_json
from nasnet_app.presets import ModelConfig, Preprocessing
from nasnet_app.zoo.presets import Preset, WeightSource, manifest_entry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESCRIPTION = "NASNet-A (CIFAR stem) trained on CIFAR-10 by nasnet-app ({shape})."
MACHINE = "2-core x86-64 CPU, shared with other jobs, no GPU"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def architecture_of(model, name):
    """The `ModelConfig` of a trained `NASNet` (a catalogue genotype by its name)."""
    fields = {field.name for field in dataclasses.fields(ModelConfig)}
    config = {k: v for k, v in model.backbone.architecture_config().items() if k in fields}
    if GENOTYPES.get(model.genotype.name) == model.genotype:
        config["genotype"] = model.genotype.name
    return ModelConfig(
        name=name, aux_head=model.aux_head, default_size=model.image_size[0], **config
    )


def preprocessing_of(model):
    """The `Preprocessing` record of the model's own image converter."""
    converter = model.preprocessor
    return Preprocessing(
        converter.crop_fraction, converter.resize_mode, converter.antialias, converter.value_range
    )


def shipped_model(trained, name, class_names):
    """The trained network as it ships: softmax head, no drop-path ramp, class names, and
    no auxiliary head (a training-time loss only; at N = 2 it holds 9 in 10 of the weights)."""
    config = trained.get_config()
    config.update(
        classifier_activation="softmax", drop_path_total_steps=None, name=name,
        class_names=list(class_names), aux_head=False,
    )  # fmt: skip
    model = nasnet_app.NASNet.from_config(config)
    trained_weights = {weight.path: weight for weight in trained.weights}
    for weight in model.weights:
        weight.assign(trained_weights[weight.path])
    return model


def score(model, data, batch_size):
    """Top-1 / top-5 on the test split, prepared by the model's own converter settings."""
    if list(data.class_names) != list(model.class_names):
        raise SystemExit(
            f"the data's classes {data.class_names} are not the model's {model.class_names}"
        )
    converter = model.preprocessor
    probabilities, labels = predict_split(
        model, data, "test", batch_size, converter.value_range, converter.crop_fraction
    )
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    return {
        "top1": round(float(np.mean(probabilities.argmax(axis=1) == labels)), 4),
        "top5": round(float(np.mean([y in row for y, row in zip(labels, top5)])), 4),
        "test_images": int(len(labels)),
    }


def checkpoint_preset(model, name, accuracy, state, target, dataset, command):
    head = sum(int(np.prod(w.shape)) for w in model.head_dense.weights)
    architecture = architecture_of(model, name)
    shape = f"N={architecture.num_blocks}, {architecture.penultimate_filters} penultimate filters"
    checkpoint = {"path": target, "file_name": os.path.basename(target), "sha256": sha256(target)}
    return Preset(
        name=name,
        architecture=architecture,
        description=DESCRIPTION.format(shape=shape),
        input_size=model.image_size,
        preprocessing=preprocessing_of(model),
        classes=model.classes,
        labels=model.class_names,
        parameters={"include_top": model.count_params(), "no_top": model.count_params() - head},
        accuracy=accuracy,
        weights={"project": WeightSource("keras", {"any": checkpoint}, model.strided_pool_padding)},
        default_weights="project",
        dataset=dataset,
        trained={
            "command": command,
            "epochs_done": state["epochs_done"],
            "settings": state.get("settings"),
            "history": state["history"],
            "machine": MACHINE,
        },
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--model", default="model.keras")
    parser.add_argument("--name", default="nasnet_a_cifar10")
    parser.add_argument("--data", default="../shared/data/cifar10-jpeg.tar.gz")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--command", default="tools/train_cifar10.py", help="the training command")
    parser.add_argument("--checkpoints", default=os.path.join(ROOT, "checkpoints"))
    args = parser.parse_args(argv)

    trained = nasnet_app.load_model(os.path.join(args.run_dir, args.model))
    with open(os.path.join(args.run_dir, "state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    data = data_lib.load(args.data)
    model = shipped_model(trained, args.name, data.class_names)
    accuracy = score(model, data, args.batch_size)
    print(f"test top-1 {accuracy['top1']:.4f}, top-5 {accuracy['top5']:.4f} "
          f"on {accuracy['test_images']} images")  # fmt: skip

    target = os.path.join(args.checkpoints, f"{args.name}.keras")
    with atomic_path(target, suffix=".keras") as tmp:
        model.save(tmp)
    manifest_path = os.path.join(args.checkpoints, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    preset = checkpoint_preset(
        model, args.name, accuracy, state, target, data.info.source, args.command
    )
    manifest[args.name] = manifest_entry(preset, args.checkpoints)
    atomic_write_json(manifest_path, manifest)
    print(f"wrote {target} and {manifest_path}")


if __name__ == "__main__":
    main()
