"""Trains the shipped `nasnet_a_cifar10` checkpoint on the real CIFAR-10 training set.

Reproduce (2-core CPU, see checkpoints/manifest.json for the measured run):

    .venv/bin/python tools/train_cifar10.py --archive ../shared/data/cifar10-jpeg.tar.gz \
        --out runs/cifar10 --num-blocks 2 --penultimate-filters 192 --stem-filters 24 \
        --epochs 4 --batch-size 64 --drop-path-keep-prob 1.0 --no-aux-head

Every epoch writes `OUT/last.keras` and `OUT/state.json` atomically; rerunning
the same command resumes after the last finished epoch. The end result is
`OUT/model.keras` with its test accuracy on all 10,000 test images in
`OUT/result.json`.
"""

import argparse
import io
import json
import os
import tarfile
import time

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

import nasnet_app
from nasnet_app.io_utils import atomic_path, atomic_write_json

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_split(archive, split):
    """Decodes every `split/<class>/*.jpg` of the archive into uint8 arrays, in name order."""
    found = []
    with tarfile.open(archive) as tar:  # stream in archive order: gzip cannot seek back cheaply
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3 or parts[-3] != split:
                continue
            if not member.name.endswith(".jpg"):
                continue
            data = tar.extractfile(member).read()
            image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            found.append((member.name, image, CLASSES.index(parts[-2])))
    found.sort(key=lambda item: item[0])
    images = [item[1] for item in found]
    labels = [item[2] for item in found]
    return np.stack(images), np.asarray(labels, dtype="int32")


def pipeline(images, labels, batch_size, training, seed):
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

    def prepare(image, label):
        image = tf.cast(image, "float32") / 127.5 - 1.0
        if training:
            image = tf.image.pad_to_bounding_box(image, 4, 4, 40, 40)
            image = tf.image.random_crop(image, (32, 32, 3))
            image = tf.image.random_flip_left_right(image)
        return image, tf.one_hot(label, 10)

    data = data.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def build_model(args, steps_per_epoch):
    model = nasnet_app.NASNet(
        "nasnet_a",
        num_blocks=args.num_blocks,
        penultimate_filters=args.penultimate_filters,
        stem="cifar",
        stem_filters=args.stem_filters,
        input_shape=(32, 32, 3),
        classes=10,
        classifier_activation=None,
        drop_path_keep_prob=args.drop_path_keep_prob,
        drop_path_total_steps=args.epochs * steps_per_epoch,
        aux_head=args.aux_head,
        aux_weight=0.4,
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        name="nasnet_a_cifar10",
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, args.epochs * steps_per_epoch, alpha=0.0
    )
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["accuracy"],
    )
    return model


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves model + optimizer atomically after each epoch, with the epoch count."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def on_epoch_end(self, epoch, logs=None):
        with atomic_path(os.path.join(self.out, "last.keras"), suffix=".keras") as tmp:
            self.model.save(tmp)
        history = _read_json(os.path.join(self.out, "state.json")).get("history", [])
        history.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        state = {"epochs_done": epoch + 1, "history": history, "time": time.time()}
        atomic_write_json(os.path.join(self.out, "state.json"), state)


def _read_json(path):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", default="../shared/data/cifar10-jpeg.tar.gz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--num-blocks", type=int, default=2)
    parser.add_argument("--penultimate-filters", type=int, default=384)
    parser.add_argument("--stem-filters", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--drop-path-keep-prob", type=float, default=0.8)
    parser.add_argument("--aux-head", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-train", type=int, default=None, help="for timing runs only")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    started = time.time()
    cache = os.path.join(args.out, "decoded.npz")
    if os.path.exists(cache):
        arrays = np.load(cache)
        train_x, train_y, test_x, test_y = (arrays[k] for k in ("tx", "ty", "vx", "vy"))
    else:
        train_x, train_y = load_split(args.archive, "train")
        test_x, test_y = load_split(args.archive, "test")
        with atomic_path(cache, suffix=".npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, tx=train_x, ty=train_y, vx=test_x, vy=test_y)
    if args.limit_train:
        train_x, train_y = train_x[: args.limit_train], train_y[: args.limit_train]
    print(
        f"loaded {len(train_x)} train / {len(test_x)} test images in {time.time() - started:.0f}s"
    )
    steps = len(train_x) // args.batch_size
    train = pipeline(train_x, train_y, args.batch_size, True, args.seed)
    test = pipeline(test_x, test_y, 250, False, args.seed)

    state = _read_json(os.path.join(args.out, "state.json"))
    done = state.get("epochs_done", 0)
    if done:
        model = keras.models.load_model(os.path.join(args.out, "last.keras"))
        print(f"resuming after epoch {done}")
    else:
        model = build_model(args, steps)
        atomic_write_json(os.path.join(args.out, "config.json"), vars(args))
    print(f"parameters: {model.count_params():,}")
    if done < args.epochs:
        model.fit(
            train,
            epochs=args.epochs,
            initial_epoch=done,
            validation_data=test,
            callbacks=[EpochCheckpoint(args.out)],
            verbose=2,
        )
    loss, accuracy = model.evaluate(test, verbose=0)
    with atomic_path(os.path.join(args.out, "model.keras"), suffix=".keras") as tmp:
        model.save(tmp)
    state = _read_json(os.path.join(args.out, "state.json"))
    result = {
        "test_top1": float(accuracy),
        "test_images": int(len(test_x)),
        "epochs": args.epochs,
        "parameters": int(model.count_params()),
        "config": vars(args),
        "history": state.get("history", []),
    }
    atomic_write_json(os.path.join(args.out, "result.json"), result)
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()
