"""Copies a `tools/train_cifar10.py` run into `checkpoints/` and records it in the manifest.

    .venv/bin/python tools/ship_checkpoint.py runs/cifar10 [--model last.keras]

The shipped file holds the weights, architecture, image converter and class
names (no optimizer state). Its accuracy is measured here, on all 10,000
CIFAR-10 test images. The manifest entry is the `Preset.to_dict()` form of the
checkpoint's preset (`nasnet_app.zoo.presets.manifest_entry`).
"""

import argparse
import dataclasses
import hashlib
import json
import os
import time

import numpy as np

import nasnet_app
from nasnet_app.catalogue import GENOTYPES
from nasnet_app.io_utils import atomic_path, atomic_write_json
from nasnet_app.presets import ModelConfig, Preprocessing
from nasnet_app.zoo.presets import Preset, WeightSource, manifest_entry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


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


def training_record(train_args, state):
    command = " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in train_args.items()
        if v is not None and k not in ("archive", "aux_head", "limit_train")
    )
    return {
        "command": f"tools/train_cifar10.py {command}"
        + ("" if train_args.get("aux_head") else " --no-aux-head"),
        "epochs_done": state["epochs_done"],
        "epochs_planned": train_args["epochs"],
        "history": state["history"],
        "machine": "2-core x86-64 CPU, shared with other jobs, no GPU",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--model", default="model.keras")
    parser.add_argument("--name", default="nasnet_a_cifar10")
    args = parser.parse_args()
    trained = nasnet_app.load_model(os.path.join(args.run_dir, args.model))
    config = trained.get_config()
    config.update(
        classifier_activation="softmax", drop_path_total_steps=None, name=args.name,
        class_names=CLASSES,
    )  # fmt: skip
    model = nasnet_app.NASNet.from_config(config)
    model.set_weights(trained.get_weights())

    arrays = np.load(os.path.join(args.run_dir, "decoded.npz"))
    test_x = arrays["vx"].astype("float32") / 127.5 - 1.0
    started = time.time()
    predictions = model.predict(test_x, batch_size=250, verbose=0)
    top1 = float(np.mean(predictions.argmax(axis=1) == arrays["vy"]))
    top5 = float(np.mean([y in p for y, p in zip(arrays["vy"], np.argsort(-predictions)[:, :5])]))
    print(f"test top-1 {top1:.4f}, top-5 {top5:.4f} on {len(test_x)} images "
          f"({time.time() - started:.0f} s)")  # fmt: skip

    target = os.path.join(ROOT, "checkpoints", f"{args.name}.keras")
    with atomic_path(target, suffix=".keras") as tmp:
        model.save(tmp)
    with open(os.path.join(args.run_dir, "config.json"), encoding="utf-8") as handle:
        train_args = json.load(handle)
    with open(os.path.join(args.run_dir, "state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    manifest_path = os.path.join(ROOT, "checkpoints", "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    checkpoint = {"path": target, "file_name": os.path.basename(target), "sha256": sha256(target)}
    head = sum(int(np.prod(w.shape)) for w in model.head_dense.weights)
    preset = Preset(
        name=args.name,
        architecture=architecture_of(model, args.name),
        description="NASNet-A (CIFAR stem, N=2, 192 penultimate filters) trained on CIFAR-10 "
        "by nasnet-app on a 2-core CPU.",
        input_size=model.image_size,
        preprocessing=preprocessing_of(model),
        classes=model.classes,
        labels=CLASSES,
        parameters={"include_top": model.count_params(), "no_top": model.count_params() - head},
        accuracy={"top1": round(top1, 4), "top5": round(top5, 4), "test_images": len(test_x)},
        weights={"project": WeightSource("keras", {"any": checkpoint}, "same")},
        default_weights="project",
        dataset="CIFAR-10 (50,000 training images; ../shared/data/cifar10-jpeg.tar.gz)",
        trained=training_record(train_args, state),
    )
    manifest[args.name] = manifest_entry(preset, os.path.dirname(manifest_path))
    atomic_write_json(manifest_path, manifest)
    print(f"wrote {target} and {manifest_path}")


if __name__ == "__main__":
    main()
