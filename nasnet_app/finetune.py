"""Fine-tuning a NASNet (or training one from a genotype) on an image dataset.

`finetune(model, data, out_dir, epochs)` gives the model a new head for the
dataset's classes and trains in two phases: the head alone with the backbone
frozen, then the whole network at a lower learning rate. From a genotype it
trains from scratch in one phase with the auxiliary head and scheduled drop
path. Each phase uses a cosine learning-rate decay, label smoothing and
decoupled weight decay (SGD with momentum or AdamW).

A checkpoint is written atomically after every epoch (all model variables,
the random-generator states among them, and the optimizer's); `resume=True`
continues a killed run from its last finished epoch, with the same batches
and augmentation (the data pipeline is a function of `(seed, epoch)`).

The run folder ends with `model.keras`, `history.json`, `classes.json` and
`training_curves.png`.

Example:

>>> import nasnet_app
>>> from nasnet_app.data import demo_cifar10
>>> from nasnet_app.finetune import finetune
>>> model = nasnet_app.NASNet(num_blocks=1, penultimate_filters=48, stem="cifar",
...     stem_filters=12, input_shape=(32, 32, 3), classes=10)
>>> result = finetune(model, demo_cifar10(), "runs/demo", epochs=2, verbose=0)  # doctest: +SKIP
>>> sorted(result.paths)  # doctest: +SKIP
['classes', 'curves', 'history', 'model']
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from nasnet_app import data as data_lib
from nasnet_app.genotype import Genotype
from nasnet_app.image_classifier import DropPathSchedule
from nasnet_app.io_utils import atomic_path, atomic_write_json
from nasnet_app.model import NASNet, load_model

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LEARNING_RATE = {"sgd": 0.05, "adamw": 1e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}
# Why the whole network trains at the peak rate by default, and the head alone
# only in runs of 4 epochs or more: a pretrained backbone is a starting point,
# not a fixed feature extractor, when the new images differ from its training
# set. Measured on glyphs10 (tools/make_glyph_dataset.py: letters in unseen
# fonts, 300 images a class) from the shipped CIFAR-10 checkpoint, 3 epochs,
# SGD 0.05: one frozen-backbone epoch, then the rest at a tenth of the rate,
# 36.7 % test top-1; the same split at the full rate 79.7 %; every layer at
# the full rate from the start 85.6 %; random weights, same recipe, 8.7 %.
DEFAULT_BACKBONE_LEARNING_RATE_FACTOR = 1.0
# TF-Slim's CIFAR batch-norm settings: 0.9997 barely moves the moving averages in a short run.
SCRATCH_CONFIG = {
    "num_blocks": 2,
    "penultimate_filters": 192,
    "stem": "cifar",
    "stem_filters": 32,
    "bn_momentum": 0.9,
    "bn_epsilon": 1e-5,
}
STATE_FILE = "state.json"
NO_DECAY_NAMES = ["bias", "gamma", "beta"]


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class Phase:
    """Epochs `[start, end)` trained with one optimizer and one set of trainable layers."""

    name: str
    start: int
    end: int
    learning_rate: float
    backbone_trainable: bool


@dataclasses.dataclass
class FinetuneResult:
    """What `finetune` returns: the trained model, per-epoch history and the files written."""

    model: keras.Model
    history: list
    run_dir: str
    paths: dict


# --------------------------------------------------------------------------- models


def _resolve_source(source):
    """`("model", keras.Model)` or `("genotype", Genotype)` from what the user passed."""
    if isinstance(source, keras.Model):
        return "model", source
    if isinstance(source, (Genotype, dict)):
        return "genotype", source
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.endswith(".keras"):
            if not os.path.isfile(text):
                raise FileNotFoundError(f"`model` file {text!r} does not exist.")
            return "model", load_model(text)
        return "genotype", text
    return _fail(
        "model",
        "a keras.Model, a .keras path, or a genotype (Genotype, dict, catalogue name, JSON path)",
        source,
    )


def _model_image_size(model):
    if isinstance(model, NASNet):
        return model.image_size
    try:
        shape = tuple(model.input_shape)[1:]
    except (AttributeError, ValueError):
        return None
    if shape[0] is None or shape[1] is None:
        return None
    return (int(shape[0]), int(shape[1]))


def _with_new_head(model, class_names, image_size):
    """A copy of `model` whose classification layer has one output per class."""
    num_classes = len(class_names)
    if isinstance(model, NASNet):
        config = model.get_config()
        config.update(
            class_names=list(class_names),
            preprocessor=_resized_converter(model.preprocessor, image_size),
            classes=num_classes,
            include_top=True,
            classifier_activation="softmax",
            input_shape=(*image_size, 3),
            aux_head=False,
            drop_path_keep_prob=1.0,
            drop_path_total_steps=None,
        )
        fresh = NASNet.from_config(config)
        old = model.weight_map()
        for key, variable in fresh.weight_map().items():
            if not key.startswith(("head/", "aux/")) and key in old:
                variable.assign(old[key])
        return fresh
    if not getattr(model, "outputs", None):  # subclassed models have no symbolic outputs
        _fail("model", "a NASNet or a functional Keras model ending in a Dense layer", model)
    policy = keras.config.dtype_policy().name
    if not _uses_policy(model, policy):
        model = _functional_copy(model, policy)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        _fail("model", "a NASNet or a functional Keras model ending in a Dense layer", model)
    head = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="finetune_head"
    )
    return keras.Model(model.inputs, head(dense[-1].input), name=f"{model.name}_finetuned")


def _resized_converter(converter, image_size):
    """The converter of a model fine-tuned on new data: the whole image (no evaluation crop
    of the pretrained preset) at the training size, the same value range."""
    config = keras.layers.serialize(converter)
    config["config"].update(
        image_size=list(image_size), crop_fraction=1.0, resize="crop", antialias=True
    )
    return config


def _functional_copy(model, policy):
    """A functional model rebuilt, with the same weights, with every layer in dtype `policy`."""

    def with_policy(layer):
        config = layer.get_config()
        if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=with_policy)
    copy.set_weights(model.get_weights())
    return copy


def _uses_policy(model, policy):
    layers = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    return all(layer.dtype_policy.name == policy for layer in layers)


def scratch_model(genotype, class_names, image_size, model_config=None, drop_path_keep_prob=1.0):
    """The `NASNet` that `finetune(genotype, ...)` trains from scratch (its defaults, then
    `model_config`), with the auxiliary head unless `model_config` turns it off."""
    config = {**SCRATCH_CONFIG, **(model_config or {})}
    config.update(
        genotype=genotype,
        classes=len(class_names),
        class_names=list(class_names),
        input_shape=(*image_size, 3),
        include_top=True,
        aux_head=config.get("aux_head", True),
        drop_path_keep_prob=drop_path_keep_prob,
    )
    return NASNet(**config)


def _head_layers(model):
    if isinstance(model, NASNet):
        return [model.head_dense]
    return [model.get_layer("finetune_head")]


def _set_backbone_trainable(model, trainable):
    head = _head_layers(model)
    for layer in model.layers:
        layer.trainable = trainable or any(layer is h for h in head)


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class _Settings:
    """The hyper-parameters of a run; stored with its checkpoints and checked on resume."""

    mode: str
    epochs: int
    head_epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    backbone_learning_rate_factor: float
    weight_decay: float
    label_smoothing: float
    augment: dict
    seed: int
    image_size: tuple
    validation_split: str | None
    mixed_precision: str | None
    drop_path_keep_prob: float
    jit_compile: bool
    class_names: tuple

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["image_size"] = list(self.image_size)
        values["class_names"] = list(self.class_names)
        return values


def _phases(settings):
    if settings.mode == "scratch":
        return [Phase("scratch", 0, settings.epochs, settings.learning_rate, True)]
    phases = []
    if settings.head_epochs:
        phases.append(Phase("head", 0, settings.head_epochs, settings.learning_rate, False))
    if settings.epochs > settings.head_epochs:
        low = settings.learning_rate * settings.backbone_learning_rate_factor
        phases.append(Phase("full", settings.head_epochs, settings.epochs, low, True))
    return phases


def mixed_precision_policy(mixed_precision):
    """The Keras dtype policy for a `mixed_precision` argument (`None` for float32).

    `True` picks float16 on a GPU and bfloat16 on a CPU. On this project's
    AVX-512 BF16 CPU, bfloat16 speeds NASNetMobile inference up but slows its
    training step down (README, Benchmarks), so nothing uses it by default.
    """
    if not mixed_precision:
        return None
    if mixed_precision is True:
        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    if mixed_precision not in ("mixed_float16", "mixed_bfloat16"):
        _fail(
            "mixed_precision", "False, True, 'mixed_float16' or 'mixed_bfloat16'", mixed_precision
        )
    return mixed_precision


def _check_numbers(epochs, head_epochs, batch_size, label_smoothing, factor):
    if not isinstance(epochs, int) or epochs < 1:
        _fail("epochs", "a positive integer", epochs)
    if head_epochs is not None and (
        not isinstance(head_epochs, int) or not 0 <= head_epochs <= epochs
    ):
        _fail("head_epochs", f"None or an integer in [0, epochs={epochs}]", head_epochs)
    if not isinstance(batch_size, int) or batch_size < 1:
        _fail("batch_size", "a positive integer", batch_size)
    if not 0.0 <= label_smoothing < 1.0:
        _fail("label_smoothing", "in [0, 1)", label_smoothing)
    if not 0.0 < factor <= 1.0:
        _fail("backbone_learning_rate_factor", "in (0, 1]", factor)


# --------------------------------------------------------------------------- checkpoints


def read_run_state(run_dir):
    """`run_dir`'s `state.json` record (`epochs_done`, `history`, `settings`), or
    None where no epoch has finished there yet."""
    path = os.path.join(run_dir, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def restore_checkpoint(run_dir, model):
    """Loads the weights of `run_dir`'s last finished epoch into `model`.

    `model` must be built as the run built it (same architecture and head),
    e.g. to evaluate or export a run whose schedule has not ended. Returns the
    run's `state.json` record (`epochs_done`, `history`, `settings`).
    """
    state = read_run_state(run_dir)
    if state is None:
        raise FileNotFoundError(
            f"`run_dir` must hold a {STATE_FILE}. Received: run_dir={run_dir!r}"
        )
    _load_arrays(os.path.join(run_dir, state["model_file"]), model.variables, "model")
    return state


def _save_arrays(path, variables):
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, *[np.asarray(v.numpy()) for v in variables])


def _load_arrays(path, variables, what):
    with np.load(path) as stored:
        arrays = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    if len(arrays) != len(variables) or any(
        tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables, strict=False)
    ):
        raise ValueError(
            f"The checkpoint {path!r} does not match this {what} "
            f"({len(arrays)} stored arrays, {len(variables)} variables). Resume with the "
            "same model, data and settings, or start a new run folder."
        )
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array)


def _save_checkpoint(run_dir, model, epochs_done, phase, history, settings):
    """Writes model + optimizer arrays, then `state.json` (the commit point), then prunes."""
    tag = f"epoch{epochs_done:04d}"
    model_file, optimizer_file = f"ckpt-{tag}.model.npz", f"ckpt-{tag}.optimizer.npz"
    _save_arrays(os.path.join(run_dir, model_file), model.variables)
    _save_arrays(os.path.join(run_dir, optimizer_file), model.optimizer.variables)
    state = {
        "epochs_done": epochs_done,
        "phase": phase.name,
        "model_file": model_file,
        "optimizer_file": optimizer_file,
        "history": history,
        "settings": settings.to_dict(),
    }
    atomic_write_json(os.path.join(run_dir, STATE_FILE), state)
    for name in os.listdir(run_dir):
        if name.startswith("ckpt-") and name not in (model_file, optimizer_file):
            os.remove(os.path.join(run_dir, name))


class _Checkpoint(keras.callbacks.Callback):
    """Appends the epoch's record to the history and saves a checkpoint."""

    def __init__(self, run_dir, phase, history, settings):
        super().__init__()
        self.run_dir, self.phase, self.history, self.settings = run_dir, phase, history, settings
        self.started = self.learning_rate = None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()
        rate = self.model.optimizer.learning_rate
        self.learning_rate = float(keras.ops.convert_to_numpy(rate))

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1, "phase": self.phase.name}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        record["learning_rate"] = self.learning_rate
        record["seconds"] = round(time.time() - self.started, 3)
        self.history.append(record)
        _save_checkpoint(
            self.run_dir, self.model, epoch + 1, self.phase, self.history, self.settings
        )


def _check_resumable(state, settings, run_dir):
    """The run's settings must be this call's, except `epochs`, which may grow: the
    cosine schedule (and the drop-path ramp) is then re-planned over the new total,
    so the learning rate continues from that schedule's value at the current step."""
    stored = state.get("settings", {})
    current = settings.to_dict()
    if settings.epochs < stored.get("epochs", settings.epochs):
        raise ValueError(
            f"`epochs` must be at least the {stored['epochs']} epochs of the run in {run_dir!r} "
            f"(it can be extended, not shortened). Received: epochs={settings.epochs}"
        )
    changed = sorted(k for k in current if k != "epochs" and stored.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {stored.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(
            f"Cannot resume {run_dir!r}: its settings differ from this call's ({details}). "
            "Resume with the same settings, or start a new run folder."
        )


# --------------------------------------------------------------------------- training


def make_optimizer(name, learning_rate, decay_steps, weight_decay=None, momentum=0.9):
    """SGD (Nesterov) or AdamW with a cosine decay to 0 over `decay_steps`; biases and
    batch-norm parameters are not decayed. The one optimizer recipe of every training run
    (fine-tuning, training from scratch and the search's children)."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, decay_steps))
    if name == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=momentum, nesterov=True, weight_decay=weight_decay
        )
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay or 0.0)
    else:
        _fail("optimizer", "'sgd' or 'adamw'", name)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    return optimizer


def compile_model(
    model, optimizer, label_smoothing=0.0, sparse_labels=False, jit_compile=False, from_logits=None
):
    """Compiles with cross-entropy on the model's outputs and accuracy, and builds the
    optimizer's variables before the first step. `from_logits=None`: logits when the
    model's `classifier_activation` is None."""
    if from_logits is None:
        from_logits = getattr(model, "classifier_activation", "softmax") is None
    if sparse_labels:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.CategoricalCrossentropy(
            from_logits=from_logits, label_smoothing=label_smoothing
        )
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    optimizer.build(model.trainable_variables)
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile=jit_compile)


def _compile(model, phase, settings, steps_per_epoch):
    decay_steps = (phase.end - phase.start) * steps_per_epoch
    optimizer = make_optimizer(
        settings.optimizer, phase.learning_rate, decay_steps, settings.weight_decay
    )
    compile_model(model, optimizer, settings.label_smoothing, jit_compile=settings.jit_compile)


def _train_phase(model, data, phase, settings, run_dir, history, state, callbacks, verbose):
    start = max(phase.start, state["epochs_done"] if state else 0)
    _set_backbone_trainable(model, phase.backbone_trainable)
    steps = data.steps("train", settings.batch_size)
    _compile(model, phase, settings, steps)
    if state and state["phase"] == phase.name and state["epochs_done"] > phase.start:
        _load_arrays(
            os.path.join(run_dir, state["optimizer_file"]), model.optimizer.variables, "optimizer"
        )
    converter = _converter_of(model)
    train = data.dataset(
        "train",
        settings.batch_size,
        converter=converter,
        training=True,
        augment=data_lib.Augment(**settings.augment),
        seed=settings.seed,
        first_epoch=start,
        epochs=phase.end - start,
        one_hot=True,
    )
    validation = None
    if settings.validation_split:
        validation = data.dataset(
            settings.validation_split, settings.batch_size, one_hot=True, converter=converter
        )
    phase_callbacks = list(callbacks)
    if settings.mode == "scratch" and settings.drop_path_keep_prob < 1.0:
        phase_callbacks.append(DropPathSchedule(total_steps=settings.epochs * steps))
    phase_callbacks.append(_Checkpoint(run_dir, phase, history, settings))
    if verbose:
        print(f"phase {phase.name!r}: epochs {start + 1}-{phase.end} of {settings.epochs}")
    model.fit(
        train,
        epochs=phase.end,
        initial_epoch=start,
        steps_per_epoch=steps,
        validation_data=validation,
        callbacks=phase_callbacks,
        shuffle=False,  # the pipeline shuffles, by (seed, epoch)
        verbose=verbose,
    )


def _converter_of(model):
    """The model's own image converter (training sees what `classify` will feed it)."""
    from nasnet_app.preprocessing import NASNetImageConverter

    own = getattr(model, "preprocessor", None)
    return own if isinstance(own, NASNetImageConverter) else None


def _fit_naming_bad_files(
    model, data, phases, settings, run_dir, history, state, callbacks, verbose
):
    try:
        for phase in phases:
            if state and state["epochs_done"] >= phase.end:
                continue
            _train_phase(model, data, phase, settings, run_dir, history, state, callbacks, verbose)
    except tf.errors.InvalidArgumentError:
        data.check_images()  # names the file that TensorFlow could not decode
        raise


# --------------------------------------------------------------------------- outputs


def _inference_copy(model):
    """The trained model rebuilt in float32 without its optimizer, for `model.keras`."""
    with _dtype_policy("float32"):
        if isinstance(model, NASNet):
            copy = NASNet.from_config(model.get_config())
            copy.set_weights(model.get_weights())
        else:
            copy = _functional_copy(model, "float32")
    copy.trainable = True
    return copy


def save_training_curves(history, path, title=None):
    """Plots loss and accuracy per epoch (train and validation) to a PNG, atomically.

    Args:
        history: a list of per-epoch dicts with `epoch` and any of `loss`,
            `accuracy`, `val_loss`, `val_accuracy`, `learning_rate`, `phase`.
        path: the PNG to write.
        title: figure title.

    Example:

    >>> from nasnet_app.finetune import save_training_curves
    >>> save_training_curves([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.5}],
    ...                      "/tmp/curves.png")
    '/tmp/curves.png'
    """
    from nasnet_app.figures import new_figure, save_figure

    if not history:
        _fail("history", "a non-empty list of per-epoch records", history)
    epochs = [record["epoch"] for record in history]
    figure = new_figure((13, 3.8))
    for index, metric in enumerate(("loss", "accuracy", "learning_rate"), start=1):
        axis = figure.add_subplot(1, 3, index)
        series = ((metric, "train"), (f"val_{metric}", "validation"))
        if metric == "learning_rate":
            series = ((metric, None),)
        for key, label in series:
            values = [record.get(key) for record in history]
            if any(v is not None for v in values):
                values = [np.nan if v is None else v for v in values]
                axis.plot(epochs, values, marker="o", label=label)
        _mark_phase_changes(axis, history)
        axis.set_xlabel("epoch")
        axis.set_title(metric.replace("_", " "))
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def _mark_phase_changes(axis, history):
    for before, after in zip(history, history[1:], strict=False):
        if before.get("phase") != after.get("phase"):
            axis.axvline(before["epoch"] + 0.5, color="gray", linestyle="--", linewidth=1)


def _write_outputs(run_dir, model, history, settings, data):
    paths = {
        "model": os.path.join(run_dir, "model.keras"),
        "history": os.path.join(run_dir, "history.json"),
        "classes": os.path.join(run_dir, "classes.json"),
        "curves": os.path.join(run_dir, "training_curves.png"),
    }
    final = _inference_copy(model)
    with atomic_path(paths["model"], suffix=".keras") as tmp:
        final.save(tmp)
    atomic_write_json(paths["history"], history)
    atomic_write_json(
        paths["classes"],
        {
            "class_names": list(settings.class_names),
            "image_size": list(settings.image_size),
            "value_range": [-1.0, 1.0],
            "data": data.info.to_dict(),
        },
    )
    save_training_curves(history, paths["curves"], title=os.path.basename(os.path.abspath(run_dir)))
    return final, paths


class _dtype_policy:
    """Sets the global Keras dtype policy inside a `with` block."""

    def __init__(self, policy):
        self.policy, self.previous = policy, None

    def __enter__(self):
        self.previous = keras.config.dtype_policy()
        if self.policy:
            keras.config.set_dtype_policy(self.policy)

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self.previous)


# --------------------------------------------------------------------------- entry point


def finetune(
    model,
    data,
    out_dir,
    epochs=10,
    head_epochs=None,
    batch_size=64,
    optimizer="sgd",
    learning_rate=None,
    backbone_learning_rate_factor=None,
    weight_decay=None,
    label_smoothing=0.1,
    augment=None,
    image_size=None,
    validation_split=None,
    model_config=None,
    drop_path_keep_prob=0.6,
    mixed_precision=False,
    jit_compile=False,
    callbacks=None,
    resume=False,
    seed=0,
    verbose=1,
):
    """Fine-tunes a model (or trains a genotype from scratch) on `data`.

    Args:
        model: a `keras.Model` (a `NASNet` or a functional model ending in a
            Dense layer), a `.keras` path, or a genotype (`Genotype`, dict,
            catalogue name such as `"nasnet_a"`, or JSON path) to train from
            scratch. For a zoo preset pass `nasnet_app.zoo.load(name, weights="pretrained")`.
        data: an `ImageData` or anything `nasnet_app.data.load` accepts (a
            folder, an archive, `"tfds:NAME"`, `"demo"`).
        out_dir: the run folder (checkpoints, final model, history, curves).
        epochs: total epochs, both phases together.
        head_epochs: epochs with the backbone frozen (pretrained models);
            default `epochs // 4` (so none below 4 epochs: a short run
            cannot spare an epoch that leaves the backbone as it is); 0
            trains everything from the start.
        batch_size: images per step.
        optimizer: `"sgd"` (momentum 0.9, Nesterov) or `"adamw"`.
        learning_rate: peak learning rate of the first phase (default 0.05 for
            SGD, 1e-3 for AdamW); the second phase uses it times
            `backbone_learning_rate_factor`. Each phase decays it to 0 (cosine).
        backbone_learning_rate_factor: in (0, 1]; default 1.0 (a resumed run
            keeps its own), because on images unlike the backbone's training
            set a lower rate leaves a short run underfitted (see
            `DEFAULT_BACKBONE_LEARNING_RATE_FACTOR`); pass e.g. 0.1 to keep
            the pretrained features closer to where they are.
        weight_decay: decoupled weight decay (default 5e-4 SGD, 0.05 AdamW);
            biases and batch-norm parameters are not decayed.
        label_smoothing: label smoothing of the cross-entropy.
        augment: an `nasnet_app.data.Augment` (default: random crop with
            padding and flip; pass `Augment(cutout=16)` for cutout).
        image_size: training resolution when the model accepts any size
            (default: the data's); a model with a fixed input size sets it.
        validation_split: what is evaluated after each epoch
            (`nasnet_app.data.choose_validation`): by default `"val"` if the
            data has it, else 10 % of each class held out of `train` (the
            `test` split stays for `evaluate`); `"holdout"`, a fraction,
            `"val"`, `"test"`, `"train"` or `"none"` choose.
        model_config: `NASNet` arguments when training a genotype (default
            `SCRATCH_CONFIG`; the auxiliary head is on unless `aux_head=False`).
        drop_path_keep_prob: final drop-path keep probability, scheduled over
            the run, when training a genotype.
        mixed_precision: `True` (float16 on GPU, bfloat16 on CPU),
            `"mixed_float16"`, `"mixed_bfloat16"` or `False`.
        jit_compile: compile training steps with XLA (on CPU, NASNet steps
            trained ~10x slower with XLA than without in our measurement).
        callbacks: extra Keras callbacks.
        resume: continue the run in `out_dir` from its last checkpoint.
        seed: seeds initialisation, data order and augmentation.
        verbose: 0 silent, 1 progress bars, 2 one line per epoch.

    Returns:
        A `FinetuneResult` (`model`, `history`, `run_dir`, `paths`).
    """
    run_dir = os.fspath(out_dir)
    state = read_run_state(run_dir)
    if state is not None and not resume:
        raise FileExistsError(
            f"`out_dir` {run_dir!r} already holds a run (epoch {state['epochs_done']}); pass "
            "resume=True to continue it or choose another folder."
        )
    if optimizer not in OPTIMIZERS:
        _fail("optimizer", "'sgd' or 'adamw'", optimizer)
    data = data_lib.load(data)
    if data.info.num_classes < 2:
        _fail("data", "a dataset with at least 2 classes", data.info.source)
    mode, source = _resolve_source(model)
    policy = mixed_precision_policy(mixed_precision)
    keras.utils.set_random_seed(seed)
    with _dtype_policy(policy):
        model, image_size = _prepared_model(
            mode, source, data, image_size, model_config, drop_path_keep_prob
        )
    data = data.with_image_size(image_size)
    data, validation_split = _validation_split(data, validation_split, seed, verbose)
    backbone_learning_rate_factor = _default_factor(backbone_learning_rate_factor, state)
    _check_numbers(epochs, head_epochs, batch_size, label_smoothing, backbone_learning_rate_factor)
    settings = _Settings(
        mode="scratch" if mode == "genotype" else "finetune",
        epochs=epochs,
        head_epochs=0 if mode == "genotype" else _default_head_epochs(head_epochs, epochs, state),
        batch_size=batch_size,
        optimizer=optimizer,
        learning_rate=float(learning_rate or DEFAULT_LEARNING_RATE[optimizer]),
        backbone_learning_rate_factor=float(backbone_learning_rate_factor),
        weight_decay=float(
            DEFAULT_WEIGHT_DECAY[optimizer] if weight_decay is None else weight_decay
        ),
        label_smoothing=float(label_smoothing),
        augment=dataclasses.asdict(
            data_lib.resolve_augment(augment, True) or data_lib.Augment(0, False, 0)
        ),
        seed=seed,
        image_size=tuple(image_size),
        validation_split=validation_split,
        mixed_precision=policy,
        drop_path_keep_prob=float(drop_path_keep_prob if mode == "genotype" else 1.0),
        jit_compile=bool(jit_compile),
        class_names=tuple(data.class_names),
    )
    return _run(model, data, settings, run_dir, state, callbacks or [], verbose)


def _run(model, data, settings, run_dir, state, callbacks, verbose):
    os.makedirs(run_dir, exist_ok=True)
    history = []
    if state is not None:
        _check_resumable(state, settings, run_dir)
        _load_arrays(os.path.join(run_dir, state["model_file"]), model.variables, "model")
        history = list(state["history"])
        if verbose:
            print(f"resuming {run_dir} after epoch {state['epochs_done']} of {settings.epochs}")
    with _dtype_policy(settings.mixed_precision):
        _fit_naming_bad_files(
            model, data, _phases(settings), settings, run_dir, history, state, callbacks, verbose
        )
    final, paths = _write_outputs(run_dir, model, history, settings, data)
    if verbose:
        print(f"wrote {paths['model']}, {paths['history']} and {paths['curves']}")
    return FinetuneResult(final, history, run_dir, paths)


def _prepared_model(mode, source, data, image_size, model_config, drop_path_keep_prob):
    """The model to train and its training resolution."""
    if mode == "genotype":
        if not 0.0 < drop_path_keep_prob <= 1.0:
            _fail("drop_path_keep_prob", "in (0, 1]", drop_path_keep_prob)
        size = data_lib.check_image_size(image_size or data.info.image_size)
        genotype = source if not isinstance(source, dict) else Genotype.from_dict(source)
        model = scratch_model(genotype, data.class_names, size, model_config, drop_path_keep_prob)
        return model, size
    fixed = _model_image_size(source)
    size = data_lib.check_image_size(fixed or image_size or data.info.image_size)
    if fixed and image_size and tuple(data_lib.check_image_size(image_size)) != fixed:
        _fail("image_size", f"None or {fixed}, the model's fixed input size", image_size)
    return _with_new_head(source, data.class_names, size), size


def _resumable_setting(given, state, key, default, saved_before_key=None):
    """`given`; else what the resumed run saved under `key` (`saved_before_key` for a
    run saved before the setting existed), so that rerunning a command without the
    flag continues the run it started; else `default` for a new run."""
    if given is not None:
        return given
    if state is not None:
        return state["settings"].get(key, saved_before_key)
    return default


def _default_head_epochs(head_epochs, epochs, state=None):
    return _resumable_setting(head_epochs, state, "head_epochs", epochs // 4)


def _default_factor(factor, state=None):
    # Runs saved before the setting existed trained the backbone at a tenth of the rate.
    return _resumable_setting(
        factor,
        state,
        "backbone_learning_rate_factor",
        DEFAULT_BACKBONE_LEARNING_RATE_FACTOR,
        saved_before_key=0.1,
    )


def _validation_split(data, requested, seed, verbose):
    """The data to train on and the split that validates (`data.choose_validation`)."""
    data, split = data_lib.choose_validation(data, requested, seed)
    if verbose:
        print(data_lib.describe(data, split))
    return data, split
