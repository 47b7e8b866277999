"""Weight-sharing cell search: ENAS (Pham et al., 2018) and random search with weight sharing.

One supernet (`nasnet_app.search.supernets`) holds every candidate
operation; each child is a path through it, so a child costs a minibatch.
The schedule is the one of the ENAS code (melodyguan/enas `main.py`):

1. an epoch of supernet steps, each on a freshly sampled architecture;
2. `controller_steps` controller updates, each aggregating `aggregate`
   architectures sampled from the policy, whose reward is their accuracy on
   one validation minibatch plus `entropy_weight` x the sample's entropy
   (ENAS adds the entropy to the reward), learnt by the seed's REINFORCE
   (`Reinforce`: moving-average baseline) with the seed's LSTM `Controller`.

The guard against the collapse to the all-skip cell that ENAS and DARTS
suffer on NAS-Bench-201 (54.30% on CIFAR-10; Dong & Yang, 2020):
`warmup_epochs` of the supernet trained on uniformly sampled architectures
before the first controller update (the ranking it then learns from is not
one the early policy bent towards parameter-free ops), the entropy bonus,
and ENAS's bounded logits (`tanh_constant`, `op_tanh_reduce`), which cap
every decision's probability (0.375 per NAS-Bench-201 edge with the ENAS
preset), so no single cell can take the policy over.

Derivation: `derive_samples` architectures sampled from the final policy are
scored on the whole validation split (held out of the training images, never
the test split); the best is the run's `best_trial`. `algorithm="random"` is
the uniform-sampling arm (Li & Talwalkar, 2019): the same supernet trained on
uniform samples, no controller, and the derivation samples drawn uniformly.

Run folder (as `CellSearch`'s): `run.json`, `trials.jsonl` (every scored
architecture: validation minibatch scores of the controller phase and the
derivation's whole-split scores, `metrics.phase`), `summary.json`
(`best_trial` in the form of multi-trial runs) and `checkpoint/` (supernet,
its optimizer, controller, its optimizer and baseline, RNGs), written every
epoch, so a killed run resumes at its last finished epoch.

Example:

>>> import numpy as np
>>> from nasnet_app.search.spaces import NASBench201Space
>>> rng = np.random.default_rng(0)
>>> images = rng.integers(0, 256, (32, 16, 16, 3), dtype="uint8")
>>> labels = rng.integers(0, 10, 32)
>>> search = WeightSharingSearch(NASBench201Space(), supernet_kwargs=dict(
...     channels=4, cells_per_stage=1), input_shape=(16, 16, 3), batch_size=8,
...     controller_steps=1, aggregate=2, derive_samples=2, seed=0)
>>> history = search.search((images, labels), (images, labels), epochs=1, verbose=0)
>>> history.best_trial.metrics["phase"]
'derive'
"""

import functools
import json
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from nasnet_app.search.base import Trial
from nasnet_app.search.callbacks import CallbackList, SearchCallback
from nasnet_app.search.cell_search import SearchHistory
from nasnet_app.search.run_directory import RunDirectory, json_safe
from nasnet_app.search.spaces import NASBench201Space, NASNetCellSpace
from nasnet_app.search.supernets import ENAS_OPS, build_supernet

# The controller settings of the ENAS code (melodyguan/enas, micro search):
# 64 LSTM units, Adam 3.5e-3, entropy 1e-4 added to the reward, baseline
# decay 0.99, logits 1.1 * tanh (ops: 1.1 / 2.5), 30 updates of 10 samples.
ENAS_SETTINGS = {
    "units": 64,
    "learning_rate": 3.5e-3,
    "entropy_weight": 1e-4,
    "baseline_decay": 0.99,
    "tanh_constant": 1.1,
    "op_tanh_reduce": 2.5,
    "controller_steps": 30,
    "aggregate": 10,
}
ALGORITHMS = ("enas", "random")
PRESETS = {"enas": ENAS_SETTINGS}
RUN_KIND = "weight_sharing"
DERIVATION_SETTINGS = ("derive_samples", "derive_images")


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _check_int(field, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        _fail(field, f"an integer >= {minimum}", value)
    return int(value)


def enas_nasnet_space(num_blocks=5, ops=ENAS_OPS):
    """The ENAS micro space as a `NASNetCellSpace`: B blocks, the given ops, add only."""
    return NASNetCellSpace(num_blocks=num_blocks, ops=ops, combines=("add",))


def _check_arrays(name, data):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        _fail(name, "a pair (uint8 images N x H x W x 3, integer labels N)", type(data).__name__)
    images, labels = np.asarray(data[0]), np.asarray(data[1]).reshape(-1)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels) or not len(labels):
        _fail(name, "images N x H x W x 3 with N labels, N >= 1", (images.shape, labels.shape))
    return images, labels.astype(np.int32)


def _scale(images):
    return (np.asarray(images, np.float32) / 127.5) - 1.0


def _augment(images, rng, pad=4):
    """Random crop of the image padded by `pad` pixels and horizontal flip (CIFAR recipe)."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(images)
    for i in range(n):
        crop = padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out


def load_image_arrays(source, val_fraction=0.5, seed=0, image_size=None, limit=None):
    """Training images of `source` as uint8 arrays, validation held out of them.

    The test split (if any) is never read. Returns `((train_x, train_y), (val_x, val_y),
    class_names)`.

    Args:
        source: what `nasnet_app.data.load` reads (a folder, an archive, `"demo"`).
        val_fraction: the share of the training images held out for validation
            (0.5: CIFAR-10's 25k/25k split of NAS-Bench-201's search).
        seed: the seed of the held-out choice.
        image_size: `(height, width)` to resize to (default: the images' size).
        limit: at most this many images per split (the first ones, after the split).
    """
    from nasnet_app import data

    loaded = data.load(source, image_size=image_size, val_fraction=val_fraction, seed=seed)
    loaded = loaded.replace(splits={k: v for k, v in loaded.splits.items() if k != "test"})
    loaded = loaded.cached()
    if "val" not in loaded.splits:
        _fail("data", "images from which a validation split can be held out", source)
    arrays = []
    for split in ("train", "val"):
        images, labels = loaded.splits[split].array, loaded.labels(split)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        arrays.append((images, np.asarray(labels, np.int32)))
    return arrays[0], arrays[1], tuple(loaded.class_names)


class ProgressLine:
    """One line per epoch (or a redrawn line on a terminal) with the search's numbers."""

    def __init__(self, epochs, stream=None):
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.start = time.time()

    def step(self, epoch, step, steps, loss):
        if self.tty:
            self.stream.write(
                f"\repoch {epoch + 1}/{self.epochs} step {step}/{steps} loss {loss:.4f}"
            )
            self.stream.flush()

    def epoch(self, epoch, logs, first_epoch):
        elapsed = time.time() - self.start
        done = epoch + 1 - first_epoch
        eta = elapsed / max(done, 1) * (self.epochs - epoch - 1)
        reward = logs.get("mean_reward")
        reward_text = "-" if reward is None else f"{reward:.4f}"
        line = (
            f"epoch {epoch + 1}/{self.epochs} - supernet loss {logs['loss']:.4f} - "
            f"train acc {logs['accuracy']:.4f} - val acc {logs['val_accuracy']:.4f} - "
            f"policy mean reward {reward_text} - {elapsed:.0f}s elapsed, ETA {eta:.0f}s"
        )
        self.stream.write(("\r" if self.tty else "") + line + "\n")
        self.stream.flush()

    def message(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()


class WeightSharingSearch:
    """ENAS, or random search with weight sharing, over a supernet of a space.

    Args:
        space: a `NASBench201Space` or a `NASNetCellSpace` with combines
            `("add",)` (`enas_nasnet_space()`: ENAS micro).
        algorithm: `"enas"` (LSTM controller and REINFORCE) or `"random"`
            (uniform sampling, the same supernet).
        settings: `"enas"` (`ENAS_SETTINGS`) or a dict overriding some of
            its keys (units, learning_rate, entropy_weight, baseline_decay,
            tanh_constant, op_tanh_reduce, controller_steps, aggregate).
        supernet_kwargs: for the supernet (`channels` or `filters`,
            `cells_per_stage`).
        input_shape: `(height, width, 3)` of the images.
        num_classes: classes of the task.
        batch_size: supernet and validation minibatch size.
        learning_rate, min_learning_rate: the supernet's SGD (momentum 0.9,
            Nesterov) cosine schedule over the run's epochs.
        weight_decay: the supernet's decoupled weight decay.
        warmup_epochs: epochs of uniform sampling before the first
            controller update (ENAS arm).
        steps_per_epoch: supernet steps per epoch (default: one pass over
            the training images).
        derive_samples: K, the architectures scored at the end.
        derive_images: validation images used to score each of them
            (default: the whole validation split). Both may change when a
            run is resumed: resuming a finished run derives it again.
        training_ops: the ops the uniformly sampled training paths draw from
            (warm-up and the random arm; default: all of the space's). The
            search space stays whole: derivation and controller sample every
            op. On NAS-Bench-201, leaving out `none` (no weights, it only cuts
            paths) ranks cells better at CPU budgets (README: weight sharing).
        strategy: a `tf.distribute.Strategy` for the supernet (default: none).
        seed: the run's seed (`None`: random).
    """

    def __init__(
        self,
        space,
        algorithm="enas",
        settings="enas",
        supernet_kwargs=None,
        input_shape=(32, 32, 3),
        num_classes=10,
        batch_size=64,
        learning_rate=0.05,
        min_learning_rate=5e-4,
        weight_decay=1e-4,
        warmup_epochs=1,
        steps_per_epoch=None,
        derive_samples=10,
        derive_images=None,
        training_ops=None,
        strategy=None,
        seed=None,
        controller_steps=None,
        aggregate=None,
    ):
        if not isinstance(space, (NASBench201Space, NASNetCellSpace)):
            _fail("space", "a NASBench201Space or a NASNetCellSpace", space)
        if algorithm not in ALGORITHMS:
            _fail("algorithm", f"one of {', '.join(ALGORITHMS)}", algorithm)
        self.space, self.algorithm_name = space, algorithm
        self.settings = self._resolve_settings(settings, controller_steps, aggregate)
        self.supernet_kwargs = dict(supernet_kwargs or {})
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = _check_int("num_classes", num_classes)
        self.batch_size = _check_int("batch_size", batch_size)
        if not float(learning_rate) > 0 or not 0 <= float(min_learning_rate) <= learning_rate:
            _fail("learning_rate", "a positive number >= min_learning_rate", learning_rate)
        self.learning_rate, self.min_learning_rate = float(learning_rate), float(min_learning_rate)
        if not float(weight_decay) >= 0:
            _fail("weight_decay", "a number >= 0", weight_decay)
        self.weight_decay = float(weight_decay)
        self.warmup_epochs = _check_int("warmup_epochs", warmup_epochs, 0)
        self.steps_per_epoch = (
            None if steps_per_epoch is None else _check_int("steps_per_epoch", steps_per_epoch)
        )
        self.derive_samples = _check_int("derive_samples", derive_samples)
        self.derive_images = (
            None if derive_images is None else _check_int("derive_images", derive_images)
        )
        self.training_ops = self._check_training_ops(space, training_ops)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.seed = seed
        self.stop_reason = None
        self.history = None
        self._built = False

    @staticmethod
    def _check_training_ops(space, training_ops):
        if training_ops is None:
            return None
        if not isinstance(space, NASBench201Space):
            _fail("training_ops", "None outside the NAS-Bench-201 space", training_ops)
        ops = space.ops
        chosen = [training_ops] if isinstance(training_ops, str) else list(training_ops)
        if not chosen or set(chosen) - set(ops):
            _fail("training_ops", f"a non-empty list of the space's ops {ops}", training_ops)
        return [op for op in ops if op in chosen]

    @staticmethod
    def _resolve_settings(settings, controller_steps, aggregate):
        if isinstance(settings, str):
            if settings not in PRESETS:
                _fail("settings", f"one of {', '.join(PRESETS)} or a dict", settings)
            chosen = dict(PRESETS[settings])
        elif isinstance(settings, dict):
            unknown = set(settings) - set(ENAS_SETTINGS)
            if unknown:
                _fail("settings", f"a dict with keys from {', '.join(ENAS_SETTINGS)}", settings)
            chosen = {**ENAS_SETTINGS, **settings}
        else:
            _fail("settings", "'enas' or a dict", settings)
        if controller_steps is not None:
            chosen["controller_steps"] = controller_steps
        if aggregate is not None:
            chosen["aggregate"] = aggregate
        _check_int("controller_steps", chosen["controller_steps"])
        _check_int("aggregate", chosen["aggregate"])
        return chosen

    # ----------------------------------------------------------------- build
    def _build(self, seed):
        from nasnet_app.search.algorithms import RandomSearch, Reinforce
        from nasnet_app.search.controller import Controller

        keras.utils.set_random_seed(seed % (2**31))
        with self.strategy.scope():
            self.supernet = build_supernet(
                self.space, self.input_shape, self.num_classes, **self.supernet_kwargs
            )
            self.optimizer = keras.optimizers.SGD(
                learning_rate=self.learning_rate,
                momentum=0.9,
                nesterov=True,
                weight_decay=self.weight_decay or None,
            )
            self.optimizer.build(self.supernet.trainable_variables)
        s = self.settings
        if self.algorithm_name == "enas":
            controller = Controller(
                self.space,
                units=s["units"],
                tanh_constant=s["tanh_constant"],
                op_tanh_reduce=s["op_tanh_reduce"],
                seed=seed,
            )
            self.algorithm = Reinforce(
                self.space,
                controller=controller,
                learning_rate=s["learning_rate"],
                batch_size=s["aggregate"],
                entropy_weight=0.0,  # ENAS adds the entropy to the reward instead
                baseline_decay=s["baseline_decay"],
                advantage="baseline",
                allow_repeats=True,
                seed=seed,
            )
        else:
            self.algorithm = RandomSearch(self.space, seed=seed, allow_repeats=True)
        self.data_rng = np.random.default_rng(seed + 1)
        self._train_step = self._make_train_step()
        self._eval_step = self._make_eval_step()
        self._built = True

    def _make_train_step(self):
        supernet, optimizer, strategy = self.supernet, self.optimizer, self.strategy
        decisions = self.supernet.num_decisions
        shape = (None, *self.input_shape)

        def replica_step(images, labels, actions):
            context = tf.distribute.get_replica_context()
            images, labels = _replica_slice(images, labels, context)
            with tf.GradientTape() as tape:
                logits = supernet(images, actions)
                losses = keras.losses.sparse_categorical_crossentropy(
                    labels, logits, from_logits=True
                )
                loss = tf.reduce_mean(losses)
                scaled = loss / context.num_replicas_in_sync
            variables = supernet.trainable_variables
            gradients = tape.gradient(scaled, variables)
            # Gathered kernels get IndexedSlices; the optimizer's momentum wants dense ones.
            gradients = [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(gradients, variables)
            ]
            optimizer.apply_gradients(zip(gradients, variables))
            correct = tf.reduce_sum(tf.cast(tf.argmax(logits, 1, tf.int32) == labels, tf.float32))
            return loss / context.num_replicas_in_sync, correct

        @tf.function(
            input_signature=[
                tf.TensorSpec(shape, tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([decisions], tf.int32),
                tf.TensorSpec([], tf.float32),
            ]
        )
        def train_step(images, labels, actions, learning_rate):
            optimizer.learning_rate.assign(learning_rate)
            loss, correct = strategy.run(replica_step, args=(images, labels, actions))
            loss = strategy.reduce("SUM", loss, axis=None)
            correct = strategy.reduce("SUM", correct, axis=None)
            return loss, correct / tf.cast(tf.shape(labels)[0], tf.float32)

        return train_step

    def _make_eval_step(self):
        supernet, strategy = self.supernet, self.strategy
        decisions = self.supernet.num_decisions

        def replica_eval(images, labels, actions):
            images, labels = _replica_slice(images, labels, tf.distribute.get_replica_context())
            logits = supernet(images, actions)
            correct = tf.reduce_sum(tf.cast(tf.argmax(logits, 1, tf.int32) == labels, tf.float32))
            return correct, tf.cast(tf.shape(labels)[0], tf.float32)

        @tf.function(
            input_signature=[
                tf.TensorSpec((None, *self.input_shape), tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([decisions], tf.int32),
            ]
        )
        def eval_step(images, labels, actions):
            correct, count = strategy.run(replica_eval, args=(images, labels, actions))
            return strategy.reduce("SUM", correct, axis=None), strategy.reduce(
                "SUM", count, axis=None
            )

        return eval_step

    def trace_count(self):
        """Traces of the supernet's train and eval steps so far (1 each serves every architecture)."""
        return {
            "train": self._train_step.experimental_get_tracing_count(),
            "eval": self._eval_step.experimental_get_tracing_count(),
        }

    # -------------------------------------------------------------- sampling
    def sample_architectures(self, num, uniform=False):
        """`num` action lists from the current policy (uniform for the random arm or if asked),
        with their log-probability and entropy (`None` when uniform)."""
        if uniform or self.algorithm_name == "random":
            rng = self.algorithm.rng
            actions = np.stack([self.space.random_actions(rng) for _ in range(num)])
            return actions, [None] * num, [None] * num
        sample = self.algorithm.controller.sample(num, self.algorithm.rng)
        return sample["actions"], sample["log_prob"].tolist(), sample["entropy"].tolist()

    def training_path(self, uniform):
        """The architecture of one supernet step: uniform over `training_ops` when
        sampling uniformly, else the policy's."""
        if not uniform or self.training_ops is None:
            return self.sample_architectures(1, uniform=uniform)[0][0]
        allowed = [self.space.ops.index(op) for op in self.training_ops]
        rng = self.algorithm.rng
        edges = len(self.space.num_choices())
        return np.asarray([allowed[int(rng.integers(len(allowed)))] for _ in range(edges)])

    def sample_policy(self, num, rng):
        """`num` architectures of the current policy, drawn with `rng` (no run state touched)."""
        if self.algorithm_name == "random":
            return [self.space.decode(self.space.random_actions(rng)) for _ in range(num)]
        actions = self.algorithm.controller.sample(num, rng)["actions"]
        return [self.space.decode(a) for a in actions]

    # ----------------------------------------------------------------- steps
    def train_on_batch(self, images, labels, actions, learning_rate=None):
        """One supernet step on uint8 images with one architecture: `(loss, accuracy)`."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        loss, accuracy = self._train_step(
            tf.constant(_scale(images)),
            tf.constant(labels, tf.int32),
            tf.constant(np.asarray(actions), tf.int32),
            tf.constant(lr, tf.float32),
        )
        return float(loss), float(accuracy)

    def accuracy(self, images, labels, actions, batch_size=None):
        """The supernet's accuracy of one architecture on uint8 images (batch statistics BN).

        BN normalises with each batch's statistics, so the images are scored in
        batches of one fixed shuffled order (the same for every architecture):
        a split stored class by class would otherwise give one-class batches.
        """
        batch_size = batch_size or max(self.batch_size, 256)
        actions = tf.constant(np.asarray(actions), tf.int32)
        order = evaluation_order(len(labels))
        correct, count = 0.0, 0.0
        for start in range(0, len(labels), batch_size):
            chunk = order[start : start + batch_size]
            right, seen = self._eval_step(
                tf.constant(_scale(images[chunk])), tf.constant(labels[chunk], tf.int32), actions
            )
            correct, count = correct + float(right), count + float(seen)
        # Under a strategy, a chunk's remainder after an even split over replicas is not seen.
        return correct / max(count, 1.0)

    # ------------------------------------------------------------------ run
    def search(
        self,
        train_data,
        validation_data,
        epochs=10,
        directory=None,
        resume=False,
        callbacks=None,
        verbose=1,
        max_seconds=None,
    ):
        """Runs the schedule for `epochs` epochs, then derives the cell.

        Args:
            train_data, validation_data: `(uint8 images, labels)` pairs; the
                validation images must be held out of the training images.
            epochs: supernet epochs (each followed by the controller phase).
            directory: the run folder (`None`: nothing written).
            resume: continue the run in `directory` from its last epoch.
            callbacks: `SearchCallback`s (`on_epoch_end(epoch, logs)` included).
            verbose: 0 silent, 1 a line per epoch.
            max_seconds: stop training after the epoch that passes this wall
                time (the derivation still runs).

        Returns:
            A `SearchHistory` of the derived architectures (`best_trial`);
            `history.epochs` holds the per-epoch logs.
        """
        train = _check_arrays("train_data", train_data)
        val = _check_arrays("validation_data", validation_data)
        if train[0].shape[1:] != self.input_shape or val[0].shape[1:] != self.input_shape:
            _fail("train_data", f"images of shape {self.input_shape}", train[0].shape[1:])
        self.epochs = _check_int("epochs", epochs, 0)
        run_dir = None if directory is None else RunDirectory(directory)
        start_epoch, state = self._prepare(run_dir, resume)
        history = SearchHistory(None if run_dir is None else run_dir.path)
        history.epochs = list(state.get("epochs", []))
        self.history, self.run_dir = history, run_dir
        self.trials = state.get("trials", [])
        self.callbacks = CallbackList(callbacks, self)
        progress = ProgressLine(self.epochs) if verbose else None
        self.callbacks.on_search_begin({"epochs": self.epochs, "initial_epoch": start_epoch})
        started = time.time()
        for epoch in range(start_epoch, self.epochs):
            logs = self._run_epoch(epoch, train, val, progress)
            history.epochs.append(logs)
            self.callbacks.on_epoch_end(epoch, logs)
            self._checkpoint(epoch + 1, history)
            if progress:
                progress.epoch(epoch, logs, start_epoch)
            if self.stop_reason is None and max_seconds and time.time() - started > max_seconds:
                self.stop_reason = f"max_seconds={max_seconds} reached after epoch {epoch + 1}"
            if self.stop_reason:
                break
        if progress:
            progress.message(f"deriving: scoring {self.derive_samples} architectures on validation")
        self._derive(val, history)
        self.callbacks.on_search_end(history.summary())
        return history

    def _prepare(self, run_dir, resume):
        if run_dir is None:
            if resume:
                raise ValueError("`resume=True` needs the run's `directory`. Received: None")
            self.seed = (
                np.random.SystemRandom().randrange(2**31 - 1) if self.seed is None else self.seed
            )
            self._build(self.seed)
            return 0, {}
        if run_dir.has_run():
            if not resume:
                raise FileExistsError(
                    f"{run_dir.path} already holds a search run. Pass resume=True "
                    "(CLI: --resume) to continue it, or choose another directory."
                )
            return self._restore(run_dir)
        if self.seed is None:
            self.seed = np.random.SystemRandom().randrange(2**31 - 1)
        self._build(self.seed)
        run_dir.create(self._run_info())
        open(run_dir.trials_path, "a").close()
        return 0, {}

    def get_config(self):
        return {
            "algorithm": self.algorithm_name,
            "settings": self.settings,
            "supernet": self.supernet.get_config() if self._built else self.supernet_kwargs,
            "num_classes": self.num_classes,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "min_learning_rate": self.min_learning_rate,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "derive_samples": self.derive_samples,
            "derive_images": self.derive_images,
            "training_ops": self.training_ops,
        }

    def _run_info(self):
        return {
            "kind": RUN_KIND,
            "space": self.space.get_config(),
            "algorithm": "ENAS" if self.algorithm_name == "enas" else "RandomWithWeightSharing",
            "algorithm_config": self.get_config(),
            "evaluator": "Supernet",
            "seed": self.seed,
            "epochs": self.epochs,
            "objective": {"name": "reward", "direction": "max", "transform": "identity"},
            "replicas": self.strategy.num_replicas_in_sync,
            "created": time.time(),
        }

    def _restore(self, run_dir):
        info = run_dir.read_run_info()
        if info is None or info.get("kind") != RUN_KIND:
            raise ValueError(
                f"Cannot resume {run_dir.path}: it is not a weight-sharing search run."
            )
        saved = json_safe(info.get("algorithm_config"))
        current = json_safe(self.get_config())
        # The derivation runs after the last epoch and touches no saved state, so a
        # finished run can be derived again with other settings.
        for key in ("supernet", *DERIVATION_SETTINGS):
            saved.pop(key, None), current.pop(key, None)
        if json_safe(info.get("space")) != json_safe(self.space.get_config()) or saved != current:
            raise ValueError(
                f"Cannot resume {run_dir.path}: it was started with another space or settings "
                f"({info.get('space')}, {info.get('algorithm_config')})."
            )
        if self.seed is not None and self.seed != info["seed"]:
            raise ValueError(
                f"Cannot resume {run_dir.path} with seed={self.seed}: the run was started "
                f"with seed={info['seed']}."
            )
        self.seed = info["seed"]
        self._build(self.seed)
        checkpoint = run_dir.load_checkpoint()
        if checkpoint is None:
            _truncate_lines(run_dir.trials_path, 0)
            return 0, {}
        arrays_state, runner = checkpoint
        mismatch = self._weights_mismatch(arrays_state["arrays"])
        if mismatch:
            raise ValueError(
                f"Cannot resume {run_dir.path}: its checkpoint holds {mismatch}; it was written "
                "by another version of the supernet. Start a new run in another directory."
            )
        self._set_state(arrays_state)
        _truncate_lines(run_dir.trials_path, runner["num_trials"])
        trials = [t for _, t in run_dir.read_trials()]
        return runner["epoch"], {"epochs": runner["epochs"], "trials": trials}

    # ---------------------------------------------------------------- epochs
    def _learning_rate(self, epoch):
        progress = epoch / max(self.epochs, 1)
        low, high = self.min_learning_rate, self.learning_rate
        return low + 0.5 * (high - low) * (1 + math.cos(math.pi * progress))

    def _run_epoch(self, epoch, train, val, progress):
        images, labels = train
        order = self.data_rng.permutation(len(labels))
        steps = self.steps_per_epoch or max(1, len(labels) // self.batch_size)
        uniform = self.algorithm_name == "random" or epoch < self.warmup_epochs
        lr = self._learning_rate(epoch)
        losses, accuracies = [], []
        start = time.time()
        for step in range(steps):
            index = np.take(
                order, range(step * self.batch_size, (step + 1) * self.batch_size), mode="wrap"
            )
            actions = self.training_path(uniform)
            batch = _augment(images[index], self.data_rng)
            loss, accuracy = self.train_on_batch(batch, labels[index], actions, lr)
            losses.append(loss)
            accuracies.append(accuracy)
            if progress and step % 10 == 0:
                progress.step(epoch, step, steps, float(np.mean(losses)))
        supernet_seconds = time.time() - start
        logs = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "accuracy": float(np.mean(accuracies)),
            "learning_rate": lr,
            "supernet_steps": steps,
            "supernet_step_seconds": supernet_seconds / steps,
        }
        logs.update(self._controller_phase(epoch, val))
        logs["seconds"] = time.time() - start
        return logs

    def _controller_phase(self, epoch, val):
        """ENAS: controller updates on validation minibatches. Random arm: the same
        scoring of uniform samples, as a monitor, without learning."""
        s = self.settings
        learn = self.algorithm_name == "enas" and epoch >= self.warmup_epochs
        num = s["controller_steps"] * s["aggregate"] if learn else s["aggregate"]
        images, labels = val
        rewards, accuracies, update_logs = [], [], []
        for _ in range(num):
            actions, log_probs, entropies = self.sample_architectures(1, uniform=not learn)
            index = self.data_rng.integers(0, len(labels), self.batch_size)
            accuracy = self.accuracy(images[index], labels[index], actions[0])
            entropy = entropies[0]
            reward = accuracy + (s["entropy_weight"] * entropy if entropy is not None else 0.0)
            trial = self._record(actions[0], accuracy, reward, epoch, "controller", len(index))
            trial.extra = {"log_prob": log_probs[0]} if log_probs[0] is not None else {}
            rewards.append(reward)
            accuracies.append(accuracy)
            if learn:
                logs = self.algorithm.update([trial])
                if logs:
                    update_logs.append(logs)
                    self.callbacks.on_controller_update(json_safe(logs))
        result = {
            "val_accuracy": float(np.mean(accuracies)),
            "controller_updates": len(update_logs),
        }
        result["mean_reward"] = float(np.mean(rewards)) if learn else None
        if update_logs:
            result["controller_entropy"] = update_logs[-1]["entropy"]
            result["baseline"] = update_logs[-1]["baseline"]
        return result

    def _record(self, actions, accuracy, reward, epoch, phase, num_images):
        architecture = self.space.decode([int(a) for a in actions])
        trial = Trial(
            trial_id=len(self.trials),
            actions=[int(a) for a in actions],
            architecture=self.space.to_data(architecture),
            arch_key=self.space.arch_key(architecture),
            status="completed",
            reward=float(reward),
            metrics={
                "val_accuracy": float(accuracy),
                "phase": phase,
                "epoch": epoch,
                "val_images": int(num_images),
            },
            seed=self.seed,
            policy_version=self.algorithm.version,
        )
        trial.end_time = time.time()
        self.trials.append(trial)
        if self.run_dir is not None:
            self.run_dir.append_trial(trial)
        self.callbacks.on_trial_end(
            trial,
            {
                "reward": trial.reward,
                "best_reward": self.history.best_reward,
                "status": trial.status,
                "cached": False,
                "num_trials": len(self.trials),
                "num_evaluated": len(self.trials),
            },
        )
        return trial

    def _derive(self, val, history):
        images, labels = val
        if self.derive_images is not None:
            subset = evaluation_order(len(labels))[: self.derive_images]
            images, labels = images[subset], labels[subset]
        actions, _, _ = self.sample_architectures(self.derive_samples)
        scored = {}
        for candidate in actions:
            key = tuple(int(a) for a in candidate)
            if key not in scored:
                scored[key] = self.accuracy(images, labels, candidate)
            trial = self._record(
                candidate, scored[key], scored[key], self.epochs, "derive", len(labels)
            )
            history.append(trial)
        derivation = {"samples": self.derive_samples, "images": int(len(labels))}
        self._write_summary(history, finished=True, derivation=derivation)

    # ----------------------------------------------------------------- state
    def _write_summary(self, history, finished, derivation=None):
        if self.run_dir is None:
            return
        summary = {
            **history.summary(),
            "kind": RUN_KIND,
            "algorithm": self.algorithm_name,
            "epochs": self.epochs,
            "epochs_done": len(history.epochs),
            "finished": finished,
            "stop_reason": self.stop_reason,
            "algorithm_version": self.algorithm.version,
            "objective": {"name": "reward", "direction": "max", "transform": "identity"},
            "epoch_logs": history.epochs,
        }
        if derivation:
            summary["derivation"] = derivation
        self.run_dir.write_summary(summary)

    def get_state(self):
        """Supernet, its optimizer, the algorithm (controller, Adam, baseline, RNG) and the data RNG."""
        state = self.algorithm.get_state()
        arrays = dict(state["arrays"])
        for i, value in enumerate(self.supernet.get_weights()):
            arrays[f"supernet/{i}"] = value
        for i, variable in enumerate(self.optimizer.variables):
            arrays[f"supernet_optimizer/{i}"] = np.asarray(variable.numpy())
        data = {**state["json"], "data_rng": self.data_rng.bit_generator.state}
        return {"json": data, "arrays": arrays}

    def _weights_mismatch(self, arrays):
        """What differs between the saved supernet weights and this supernet's ('' if none)."""
        saved = sorted(int(k.split("/")[1]) for k in arrays if k.startswith("supernet/"))
        weights = self.supernet.weights
        if saved != list(range(len(weights))):
            return f"{len(saved)} supernet weights where this supernet has {len(weights)}"
        for i, weight in enumerate(weights):
            shape = tuple(np.shape(arrays[f"supernet/{i}"]))
            if shape != tuple(weight.shape):
                return (
                    f"{weight.path} of shape {shape} where this supernet has {tuple(weight.shape)}"
                )
        return ""

    def _set_state(self, state):
        arrays = dict(state["arrays"])
        weights = [arrays.pop(f"supernet/{i}") for i in range(len(self.supernet.weights))]
        slots = [
            arrays.pop(f"supernet_optimizer/{i}") for i in range(len(self.optimizer.variables))
        ]
        self.supernet.set_weights(weights)
        for variable, value in zip(self.optimizer.variables, slots):
            variable.assign(value)
        data = dict(state["json"])
        self.data_rng.bit_generator.state = data.pop("data_rng")
        self.algorithm.set_state({"json": data, "arrays": arrays})

    def _checkpoint(self, epoch, history):
        if self.run_dir is None:
            return
        runner = {
            "sequence": epoch,
            "epoch": epoch,
            "num_trials": len(self.trials),
            "epochs": history.epochs,
            "time": time.time(),
        }
        self.run_dir.save_checkpoint(self.get_state(), runner)
        self._write_summary(history, finished=False)


@functools.lru_cache(maxsize=8)
def evaluation_order(count):
    """A fixed shuffled order of `count` images (seed 0), shared by every scored architecture."""
    order = np.random.default_rng(0).permutation(count)
    order.flags.writeable = False
    return order


def _replica_slice(images, labels, context):
    """This replica's share of a global batch (the whole batch without a strategy)."""
    replicas = context.num_replicas_in_sync
    if replicas == 1:
        return images, labels
    per = tf.shape(labels)[0] // replicas
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * per
    return images[start : start + per], labels[start : start + per]


def _truncate_lines(path, count):
    """Keeps the first `count` lines of a JSONL file (those a checkpoint accounts for)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n")][:count]
    if len(kept) != len(lines):
        from nasnet_app.io_utils import atomic_path

        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(kept)


def table_accuracies(table_path, archs):
    """NAS-Bench-201 table accuracies (fractions) of arch strings, for monitoring only."""
    from nasnet_app.search.tabular import TabularEvaluator

    evaluator = TabularEvaluator(table_path, space=NASBench201Space())
    return [evaluator.evaluate(arch, trial=None)["reward"] for arch in archs]


class PolicyTableMonitor(SearchCallback):
    """After each epoch: the policy's expected table accuracy over `samples` draws.

    Ground truth for benchmarks only: it never feeds the search. The numbers go
    to `logs["policy_table_accuracy"]` and to `path` (JSON lines) if given.
    """

    def __init__(self, table_path, samples=1000, path=None, seed=0):
        from nasnet_app.search.tabular import TabularEvaluator

        super().__init__()
        self.evaluator = TabularEvaluator(table_path, space=NASBench201Space())
        self.samples, self.path, self.seed = samples, path, seed
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        rng = np.random.default_rng(self.seed + epoch)
        archs = self.search.sample_policy(self.samples, rng)
        rewards = [self.evaluator.evaluate(a, trial=None)["reward"] for a in archs]
        skip = sum(a.count("skip_connect") == 6 for a in archs) / len(archs)
        record = {
            "epoch": epoch,
            "policy_table_accuracy": float(np.mean(rewards)),
            "all_skip_share": skip,
        }
        self.values.append(record)
        if logs is not None:
            logs.update(record)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


def demo_weight_sharing(out_dir, seconds=90, seed=0, verbose=1):
    """A short ENAS search on the bundled CIFAR-10 images, for `nasnet-app demo`.

    The NAS-Bench-201 space at 16 px with a small supernet (8 channels, one
    cell per stage) on the 2,000 bundled training images (half held out for
    validation); epochs run until about `seconds` have passed, then the cell
    is derived and drawn.

    Returns:
        A dict: `arch` (the derived cell), `mean_rewards` (the policy's mean
        reward per controller epoch), `val_accuracy` (the derived cell's
        supernet accuracy), `run_dir`, `drawing` (a PNG) and `seconds`.
    """
    from nasnet_app.evaluate.cells import draw_nasbench201

    start = time.time()
    train, val, _ = load_image_arrays("demo", val_fraction=0.5, seed=seed, image_size=(16, 16))
    search = WeightSharingSearch(
        NASBench201Space(),
        supernet_kwargs={"channels": 8, "cells_per_stage": 1},
        input_shape=(16, 16, 3),
        batch_size=32,
        warmup_epochs=1,
        derive_samples=5,
        controller_steps=10,
        seed=seed,
    )
    run_dir = os.path.join(out_dir, "weight_sharing_run")
    budget = max(1.0, seconds - (time.time() - start)) * 0.85  # leave time to derive
    history = search.search(
        train, val, epochs=12, directory=run_dir, verbose=verbose, max_seconds=budget
    )
    arch = history.best_trial.arch_key
    drawing = os.path.join(out_dir, "weight_sharing_cell.png")
    draw_nasbench201(arch, drawing, title="derived by ENAS (weight sharing)")
    return {
        "arch": arch,
        "mean_rewards": [e["mean_reward"] for e in history.epochs if e["mean_reward"] is not None],
        "val_accuracy": history.best_trial.reward,
        "run_dir": run_dir,
        "drawing": drawing,
        "seconds": time.time() - start,
    }
