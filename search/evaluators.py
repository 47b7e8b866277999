"""Child training: `ChildTrainer` turns an architecture into a reward by training it.

A child is a `nasnet_app.NASNet` built from the trial's genotype at a proxy
configuration (few cells, few filters, few epochs), or the macro model of
`nasnet_app.search.macro` for `NASMacroSpace` architectures. It trains with
SGD + momentum under a cosine schedule, inside a `tf.distribute` strategy
(`MirroredStrategy` over the visible GPUs by default). The reward is the best
validation accuracy of the last `reward_epochs` epochs, untransformed: the
search's `Objective` (`nasnet_app.search.base`) cubes it if asked. A NaN
loss, a build error or an out-of-memory error make the trial fail (the
search records it and goes on). Every child is deleted and the Keras
session cleared afterwards, so memory stays flat over thousands of children.

Data (`train_data` / `validation_data` of `CellSearch.search`) may be:

* a batched `tf.data.Dataset` of `(images, integer labels)`;
* a pair of numpy arrays `(images, labels)`;
* a `nasnet_app.data.ImageData`, a folder or archive path, or `"demo"`: its
  `train` split trains the child and its `val` split (`val_fraction` of the
  training images held out by seed when the source has none) gives the reward;
* a zero-argument callable returning one of the above (for process executors,
  where datasets cannot be pickled).

The test split is never used for rewards.

Example:

>>> import numpy as np
>>> from nasnet_app.search.base import Trial
>>> from nasnet_app.search.spaces import NASNetCellSpace
>>> space = NASNetCellSpace(num_blocks=2)
>>> genotype = space.to_data(space.decode([0, 1, 10, 0, 0] * 4))
>>> x = np.random.default_rng(0).random((16, 32, 32, 3), "float32")
>>> y = np.arange(16) % 2
>>> trainer = ChildTrainer(num_blocks=1, filters=4, epochs=1, batch_size=8, strategy="default")
>>> trial = Trial(trial_id=0, actions=[], architecture=genotype, arch_key="", seed=1)
>>> result = trainer.evaluate(genotype, trial=trial, train_data=(x, y), validation_data=(x, y))
>>> 0.0 <= result["reward"] <= 1.0
True
"""

import copy
import math
import os
import time

import numpy as np

from nasnet_app.search.base import Evaluator
from nasnet_app.search.executors import ChildFailure


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _positive_int(field, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        _fail(field, "a positive integer" + (" or None" if allow_none else ""), value)
    return int(value)


def _positive_float(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        _fail(field, "a positive number", value)
    return float(value)


class ChildTrainer(Evaluator):
    """Trains each proposed architecture briefly and returns its validation accuracy.

    Args:
        num_blocks: normal cells per stack of the proxy NASNet (N).
        filters: filters of the first stack's cells (F); doubled at each
            reduction.
        stem_filters: filters of the CIFAR stem conv (default `3 * filters`).
        epochs: training epochs per child.
        batch_size: global batch size (split over the strategy's replicas).
        learning_rate: the initial learning rate of the cosine schedule.
        momentum: SGD momentum (Nesterov).
        weight_decay: decoupled weight decay of SGD (`None`: off).
        reward_epochs: k; the reward is the best validation accuracy of the
            last k epochs.
        reward_transform: removed; the search's `Objective` owns the transform
            (`CellSearch(..., objective=Objective(transform="cube"))`).
        strategy: `None` (`MirroredStrategy` over `devices`, default all
            visible GPUs), `"default"` (no distribution), a
            `tf.distribute.Strategy`, or a zero-argument function returning one.
            A strategy object does not travel to worker processes (they build
            the default); pass a module-level function to choose another there.
        devices: device names for the default `MirroredStrategy`, e.g.
            `["/cpu:0", "/cpu:1"]`.
        image_size: `(height, width)` of images read from a folder or archive.
        val_fraction: training images held out for the reward when a data
            source has no validation split.
        steps_per_epoch, validation_steps: limits per epoch (`None`: all data).
        child_callbacks: `keras.callbacks` for every child (deep-copied per child).
        model_builder: a function `(architecture, input_shape, classes, seed)
            -> keras.Model` (logits) replacing the built-in NASNet / macro builders.
        verbose: verbosity of `fit`.

    Example:

    >>> ChildTrainer(epochs=2, reward_epochs=1).reward_epochs
    1
    """

    def __init__(
        self,
        num_blocks=1,
        filters=8,
        stem_filters=None,
        epochs=2,
        batch_size=32,
        learning_rate=0.05,
        momentum=0.9,
        weight_decay=None,
        reward_epochs=1,
        reward_transform=None,
        strategy=None,
        devices=None,
        image_size=(32, 32),
        val_fraction=0.1,
        steps_per_epoch=None,
        validation_steps=None,
        child_callbacks=(),
        model_builder=None,
        verbose=0,
    ):
        self.num_blocks = _positive_int("num_blocks", num_blocks)
        self.filters = _positive_int("filters", filters)
        self.stem_filters = _positive_int("stem_filters", stem_filters or 3 * self.filters)
        self.epochs = _positive_int("epochs", epochs)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.learning_rate = _positive_float("learning_rate", learning_rate)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            _fail("momentum", "a number in [0, 1)", momentum)
        self.momentum = float(momentum)
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.reward_epochs = _positive_int("reward_epochs", reward_epochs)
        if self.reward_epochs > self.epochs:
            _fail("reward_epochs", f"at most epochs={self.epochs}", reward_epochs)
        if reward_transform is not None:
            _fail(
                "reward_transform",
                "None: the transform belongs to the search's Objective "
                '(CellSearch(..., objective=Objective(transform="cube")))',
                reward_transform,
            )
        if not (strategy is None or strategy == "default" or callable(strategy)):
            if not hasattr(strategy, "scope"):
                _fail(
                    "strategy", "None, 'default', a tf.distribute.Strategy or a function", strategy
                )
        self.strategy = strategy
        self.devices = None if devices is None else [str(d) for d in devices]
        self.image_size = tuple(image_size)
        if not 0 < val_fraction < 1:
            _fail("val_fraction", "a number in (0, 1)", val_fraction)
        self.val_fraction = float(val_fraction)
        self.steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch, True)
        self.validation_steps = _positive_int("validation_steps", validation_steps, True)
        self.child_callbacks = list(child_callbacks or [])
        self.model_builder = model_builder
        self.verbose = verbose
        self._strategy = None
        self._sources = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_strategy"], state["_sources"] = None, {}  # rebuilt in the receiving process
        if hasattr(self.strategy, "scope") and not callable(self.strategy):
            state["strategy"] = None
        return state

    def get_config(self):
        names = (
            "num_blocks",
            "filters",
            "stem_filters",
            "epochs",
            "batch_size",
            "learning_rate",
            "momentum",
            "weight_decay",
            "reward_epochs",
            "devices",
            "image_size",
            "val_fraction",
            "steps_per_epoch",
            "validation_steps",
        )
        config = {name: getattr(self, name) for name in names}
        config["strategy"] = (
            self.strategy
            if isinstance(self.strategy, (str, type(None)))
            else (type(self.strategy).__name__)
        )
        return config

    # ------------------------------------------------------------ strategy
    def get_strategy(self):
        """The strategy children train under (created once per process)."""
        import tensorflow as tf

        if self._strategy is None:
            if self.strategy is None:
                self._strategy = tf.distribute.MirroredStrategy(devices=self.devices)
            elif self.strategy == "default":
                self._strategy = tf.distribute.get_strategy()
            elif hasattr(self.strategy, "scope"):
                self._strategy = self.strategy
            else:
                self._strategy = self.strategy()
        return self._strategy

    # ---------------------------------------------------------------- data
    def _source(self, data):
        """`nasnet_app.data.ImageData` for a path / "demo" (loaded once per process)."""
        from nasnet_app import data as data_module

        key = os.fspath(data)
        if key not in self._sources:
            self._sources[key] = data_module.load(
                key, image_size=self.image_size, val_fraction=self.val_fraction, cache=True
            )
        return self._sources[key]

    def _resolve(self, data):
        from nasnet_app.data import ImageData

        if callable(data) and not hasattr(data, "element_spec"):
            data = data()
        if isinstance(data, (str, os.PathLike)):
            data = self._source(data)
        if isinstance(data, ImageData) and "val" not in data.splits:
            data = self._source_with_val(data)
        return data

    def _source_with_val(self, data):
        from nasnet_app import data as data_module

        key = ("holdout", id(data))
        if key not in self._sources:
            self._sources[key] = data_module.load(
                {
                    "train": (
                        data.images("train", range(data.info.counts["train"])),
                        data.labels("train"),
                    )
                },
                val_fraction=self.val_fraction,
            )
        return self._sources[key]

    def _pipeline(self, data, split, training, seed, field):
        """`(dataset, steps per epoch, input shape, classes)` of one split."""
        import tensorflow as tf

        from nasnet_app.data import ImageData

        if isinstance(data, ImageData):
            dataset = data.dataset(
                split,
                self.batch_size,
                training=training,
                seed=seed,
                epochs=self.epochs if training else 1,
            )
            size = data.info.image_size
            return dataset, data.steps(split, self.batch_size), (*size, 3), data.info.num_classes
        if isinstance(data, tuple) and len(data) == 2:
            images, labels = np.asarray(data[0], "float32"), np.asarray(data[1]).astype("int32")
            if len(images) != len(labels) or images.ndim != 4:
                _fail(field, "a pair (images NHWC, labels) of equal length", (images.shape,))
            dataset = tf.data.Dataset.from_tensor_slices((images, labels))
            if training:
                dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
            dataset = dataset.batch(self.batch_size)
            steps = math.ceil(len(images) / self.batch_size)
            return dataset, steps, images.shape[1:], int(labels.max()) + 1
        if isinstance(data, tf.data.Dataset):
            steps = int(data.cardinality())
            steps = steps if steps > 0 else None
            images_spec = data.element_spec[0]
            return data, steps, tuple(images_spec.shape[1:]), None
        _fail(
            field,
            "a tf.data.Dataset, (images, labels) arrays, an ImageData, a path or a function",
            type(data).__name__,
        )

    def _datasets(self, train_data, validation_data, seed):
        from nasnet_app.data import ImageData

        if train_data is None:
            raise ValueError("ChildTrainer needs `train_data` to train children. Received: None")
        train_data = self._resolve(train_data)
        validation_data = self._resolve(validation_data) if validation_data is not None else None
        train = self._pipeline(train_data, "train", True, seed, "train_data")
        if validation_data is None:
            if not isinstance(train_data, ImageData):
                raise ValueError(
                    "ChildTrainer needs `validation_data` (the reward is a validation accuracy)"
                    " unless `train_data` is a data source with a validation split."
                )
            validation_data, split = train_data, "val"
        else:
            split = "val" if isinstance(validation_data, ImageData) else "train"
        val = self._pipeline(validation_data, split, False, seed, "validation_data")
        classes = train[3] or val[3]
        if classes is None:
            classes = self._count_classes(train[0])
        return train, val, classes

    @staticmethod
    def _count_classes(dataset):
        labels = np.concatenate([np.asarray(y).reshape(-1) for _, y in dataset])
        return int(labels.max()) + 1

    # --------------------------------------------------------------- model
    def build_model(self, architecture, input_shape, classes, seed=None):
        """The child network (logits) for a genotype or macro architecture."""
        if self.model_builder is not None:
            return self.model_builder(architecture, input_shape, classes, seed)
        if _is_macro(architecture):
            from nasnet_app.search.macro import build_macro_model

            return build_macro_model(
                architecture,
                input_shape=tuple(input_shape),
                classes=classes,
                classifier_activation=None,
            )
        from nasnet_app.model import NASNet
        from nasnet_app.presets import child_architecture

        config = child_architecture(architecture, self.num_blocks, self.filters, self.stem_filters)
        kwargs = {**config.model_kwargs(), "input_shape": tuple(input_shape)}
        return NASNet(**kwargs, classes=classes, classifier_activation=None, seed=seed)

    def _optimizer(self, total_steps):
        from nasnet_app.finetune import make_optimizer

        return make_optimizer(
            "sgd", self.learning_rate, total_steps, self.weight_decay, self.momentum
        )

    def _fresh_callbacks(self):
        try:
            return [copy.deepcopy(callback) for callback in self.child_callbacks]
        except Exception as error:
            raise ValueError(
                f"`child_callbacks` must be copyable with copy.deepcopy (one fresh copy per "
                f"child). Copying failed with {type(error).__name__}: {error}"
            ) from None

    # ------------------------------------------------------------ evaluate
    def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
        """Trains one child; returns `{"reward", "metrics"}` or raises on failure.

        Args:
            architecture: genotype data (dict / `Genotype`) or macro
                architecture data.
            trial: the `Trial` (its `seed` seeds the child).
            train_data, validation_data: see the module docstring.
        """
        import keras

        keras.utils.set_random_seed(trial.seed)
        train, val, classes = self._datasets(train_data, validation_data, trial.seed)
        model = None
        try:
            model, history, seconds, replicas = self._train(
                architecture, train, val, classes, trial
            )
            return self._result(history, model, seconds, replicas)
        finally:
            del model
            keras.backend.clear_session(free_memory=True)  # includes gc.collect()

    def _train(self, architecture, train, val, classes, trial):
        import keras

        from nasnet_app.finetune import compile_model

        train_ds, train_steps, input_shape, _ = train
        steps = self.steps_per_epoch or train_steps
        if steps is None:
            raise ValueError(
                "`steps_per_epoch` must be given when `train_data` has no known length."
            )
        strategy = self.get_strategy()
        with strategy.scope():
            model = self.build_model(architecture, input_shape, classes, trial.seed)
            optimizer = self._optimizer(self.epochs * steps)
            compile_model(model, optimizer, sparse_labels=True, from_logits=True)
        start = time.time()
        history = model.fit(
            train_ds,
            validation_data=val[0],
            epochs=self.epochs,
            steps_per_epoch=steps,
            validation_steps=self.validation_steps,
            callbacks=[keras.callbacks.TerminateOnNaN(), *self._fresh_callbacks()],
            shuffle=False,  # the pipelines shuffle, by seed
            verbose=self.verbose,
        )
        return model, history.history, time.time() - start, strategy.num_replicas_in_sync

    def _result(self, history, model, seconds, replicas):
        losses = [float(v) for v in history.get("loss", [])]
        bad = [epoch for epoch, loss in enumerate(losses) if not math.isfinite(loss)]
        if bad or not losses:
            epoch = bad[0] if bad else 0
            raise ChildFailure(f"The child's training loss became NaN in epoch {epoch}.")
        accuracies = [float(v) for v in history.get("val_accuracy", [])]
        if not accuracies:
            raise ChildFailure("The child produced no validation accuracy (no validation data).")
        accuracy = max(accuracies[-self.reward_epochs :])
        metrics = {
            "val_accuracy": accuracies,
            "loss": losses,
            "reward_accuracy": accuracy,
            "params": int(model.count_params()),
            "epochs": len(losses),
            "train_seconds": round(seconds, 3),
            "replicas": int(replicas),
        }
        return {"reward": accuracy, "metrics": metrics}


def _is_macro(architecture):
    if type(architecture).__name__ == "MacroArchitecture":
        return True
    return isinstance(architecture, dict) and "layers" in architecture
