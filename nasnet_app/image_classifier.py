"""`NASNetImageClassifier`: a Task made of a `NASNetBackbone`, a head and its preprocessing.

The task owns what a classifier adds to the backbone: global pooling,
dropout, the top layer, TF-Slim's auxiliary head and its loss (training only),
the scheduled drop path ramp (drop probability grows with
`optimizer.iterations / drop_path_total_steps`), the image converter that
prepares raw images and the class names. All of it is saved in `.keras` files.
"""

import collections

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from nasnet_app.backbone import NASNetBackbone, _weight_map, fail
from nasnet_app.ops import batch_norm, build_sequence
from nasnet_app.preprocessing import NASNetImageConverter

POOLINGS = (None, "avg", "max")
Prediction = collections.namedtuple("Prediction", ["index", "wnid", "name", "probability"])


@keras.saving.register_keras_serializable(package="nasnet_app")
class AuxiliaryHead(layers.Layer):
    """TF-Slim's auxiliary classifier: used for the training loss only."""

    def __init__(self, classes, activation=None, bn_momentum=0.9997, bn_epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.activation = classes, activation
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        self.proj_conv = layers.Conv2D(128, 1, use_bias=False, name="proj_conv")
        self.proj_bn = batch_norm("proj_bn", bn_momentum, bn_epsilon)
        self.bn = batch_norm("bn", bn_momentum, bn_epsilon)
        self.dense = layers.Dense(classes, activation=activation, name="dense")
        self.conv = None

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        self.pooled = height is not None and width is not None and min(height, width) >= 5
        kernel = ((height - 5) // 3 + 1, (width - 5) // 3 + 1) if self.pooled else (1, 1)
        self.conv = layers.Conv2D(768, kernel, use_bias=False, name="conv")
        batch, channels = input_shape[0], input_shape[-1]
        pooled = (
            (batch, (height - 5) // 3 + 1, (width - 5) // 3 + 1, channels)
            if self.pooled
            else tuple(input_shape)
        )
        shape = build_sequence([self.proj_conv, self.proj_bn, self.conv, self.bn], pooled)
        self.dense.build((batch, shape[-1]))
        self.built = True

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.classes)

    def call(self, x, training=None):
        x = tf.nn.relu(x)
        if self.pooled:
            x = tf.nn.avg_pool2d(x, 5, 3, "VALID")
        x = tf.nn.relu(self.proj_bn(self.proj_conv(x), training=training))
        x = tf.nn.relu(self.bn(self.conv(x), training=training))
        x = tf.reduce_mean(x, axis=[1, 2])
        return self.dense(x)

    def named_layers(self):
        return {
            "proj_conv": self.proj_conv,
            "proj_bn": self.proj_bn,
            "conv": self.conv,
            "bn": self.bn,
            "dense": self.dense,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            classes=self.classes,
            activation=keras.activations.serialize(keras.activations.get(self.activation)),
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config


def _activation_name(activation):
    activation = keras.activations.get(activation)
    return getattr(activation, "__name__", str(activation))


@keras.saving.register_keras_serializable(package="nasnet_app")
class NASNetImageClassifier(keras.Model):
    """An image classifier on a `NASNetBackbone` (keras-hub's Task role).

    Args:
        backbone: a `NASNetBackbone`.
        num_classes: classes of the top layer; `None` ends the model without a
            head (the output is then the feature map, or pooled by `pooling`).
        pooling: without a head: `None`, `"avg"` or `"max"`.
        activation: activation of the top layer (`"softmax"`, or `None` for logits).
        dropout: dropout rate before the top layer.
        aux_head: add TF-Slim's auxiliary classifier (training loss only).
        aux_weight: weight of the auxiliary loss.
        drop_path_total_steps: training steps over which drop path ramps up
            (TF-Slim's `total_training_steps`); `None`: no ramp.
        preprocessor: a `NASNetImageConverter` for raw images; by default one
            for the backbone's input size (or 224 px) scaling to [-1, 1].
        class_names: names of the classes, in output order.

    Example:

    >>> import numpy as np
    >>> from nasnet_app import NASNetBackbone, NASNetImageClassifier
    >>> backbone = NASNetBackbone("nasnet_a", num_blocks=1, penultimate_filters=48,
    ...     stem="cifar", stem_filters=12, input_shape=(32, 32, 3))
    >>> model = NASNetImageClassifier(backbone, num_classes=3, class_names=["a", "b", "c"])
    >>> model.classify(np.zeros((40, 50, 3), "uint8"), top=1)[0][0].name in ("a", "b", "c")
    True
    """

    def __init__(
        self,
        backbone,
        num_classes=1000,
        pooling=None,
        activation="softmax",
        dropout=0.0,
        aux_head=False,
        aux_weight=0.4,
        drop_path_total_steps=None,
        preprocessor=None,
        class_names=None,
        name=None,
        **kwargs,
    ):
        if not isinstance(backbone, NASNetBackbone):
            fail("backbone", "a NASNetBackbone", backbone)
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            fail("classes", "a positive integer", num_classes)
        if pooling not in POOLINGS:
            fail("pooling", "None, 'avg' or 'max'", pooling)
        if not 0.0 <= dropout < 1.0:
            fail("dropout", "in [0, 1)", dropout)
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            fail("class_names", f"a list of {num_classes} names", class_names)
        features = backbone.output
        pooled = head_dropout = head_dense = None
        if num_classes is not None:
            pooled = layers.GlobalAveragePooling2D(name="global_pool")(features)
            head_dropout = layers.Dropout(dropout, name="head_dropout")
            head_dense = layers.Dense(num_classes, activation=activation, name="head_dense")
            outputs = head_dense(head_dropout(pooled))
        elif pooling == "avg":
            outputs = layers.GlobalAveragePooling2D(name="avg_pool")(features)
        elif pooling == "max":
            outputs = layers.GlobalMaxPooling2D(name="max_pool")(features)
        else:
            outputs = features
        super().__init__(inputs=backbone.input, outputs=outputs, name=name, **kwargs)

        self.backbone = backbone
        self.num_classes, self.pooling, self.dropout = num_classes, pooling, dropout
        self.classifier_activation = activation
        self.aux_weight, self.drop_path_total_steps = aux_weight, drop_path_total_steps
        self.head_dropout, self.head_dense = head_dropout, head_dense
        self.aux = None
        if aux_head and num_classes is not None:
            self.aux = AuxiliaryHead(
                num_classes, activation, backbone.bn_momentum, backbone.bn_epsilon, name="aux"
            )
            aux_input = backbone.get_layer(f"cell_{2 * backbone.num_blocks - 1}").output
            training_outputs = [outputs, self.aux(aux_input)]
            # Not an attribute Keras tracks: it shares every layer with this model.
            object.__setattr__(self, "_training_model", keras.Model(self.inputs, training_outputs))
        self.preprocessor = preprocessor or NASNetImageConverter(
            image_size=backbone.image_size or (224, 224), name="preprocessor"
        )
        self.class_names = None if class_names is None else [_class_name(c) for c in class_names]
        object.__setattr__(self, "_pooled_tensor", pooled)
        object.__setattr__(self, "_endpoint_model", None)

    # ------------------------------------------------------------------ properties

    @property
    def genotype(self):
        return self.backbone.genotype

    @property
    def include_top(self):
        return self.num_classes is not None

    @property
    def classes(self):
        return self.num_classes

    @property
    def aux_head(self):
        return self.aux is not None

    @property
    def image_size(self):
        """`(height, width)` of a fixed-size input, else None."""
        return self.backbone.image_size

    # ------------------------------------------------------------------ training

    def _drop_path_progress(self, training):
        if not training or self.drop_path_total_steps is None or self.optimizer is None:
            return None
        step = tf.cast(self.optimizer.iterations, "float32")
        return tf.minimum(step / float(self.drop_path_total_steps), 1.0)

    def _resolve_auto_jit_compile(self):
        # Keras' jit_compile="auto" turns XLA on whenever layers allow it; on
        # CPU, XLA made NASNet training about 10x slower in our measurements,
        # so "auto" means XLA only when a GPU is visible. (A hook rather than a
        # `compile` override, which would stop `.keras` files recompiling.)
        if not tf.config.list_logical_devices("GPU"):
            return False
        return super()._resolve_auto_jit_compile()

    def train_step(self, data):
        self.backbone.set_drop_path_progress(self._drop_path_progress(True))
        try:
            if self.aux is None:
                return super().train_step(data)
            return self._train_step_with_aux(data)
        finally:
            self.backbone.set_drop_path_progress(None)

    def _train_step_with_aux(self, data):
        from keras.src import tree
        from keras.src.losses import loss as loss_module

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred, aux_pred = self._training_model(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
            if self._compile_loss is not None:
                loss = loss + self.aux_weight * self._compile_loss(y, aux_pred, sample_weight)
            batch = tf.shape(next(t for t in tree.flatten(x) if t is not None))[0]
            self._loss_tracker.update_state(
                loss_module.unscale_loss_for_distribution(loss), sample_weight=batch
            )
            if self.optimizer is not None:
                loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    # ------------------------------------------------------------------ features

    def endpoints(self, inputs, training=False):
        """Named intermediate outputs, with TF-Slim's end-point names.

        Keys: `Stem`, `cell_stem_0` (ImageNet stem), `Cell_i`,
        `Reduction_Cell_j`, `global_pool` and `Logits`/`Predictions` (top
        layer output, named after whether it is activated).
        """
        if self._endpoint_model is None:
            names = list(self.backbone.feature_outputs)
            tensors = list(self.backbone.feature_outputs.values())
            if self._pooled_tensor is not None:
                names.append("global_pool")
                tensors.append(self._pooled_tensor)
            names.append("Logits" if self.classifier_activation is None else "Predictions")
            tensors.append(self.outputs[0])
            model = keras.Model(self.inputs, tensors)
            object.__setattr__(self, "_endpoint_model", (names, model))
        names, model = self._endpoint_model
        values = model(tf.convert_to_tensor(inputs), training=training)
        return collections.OrderedDict(zip(names, values))

    def named_layers(self):
        """Every weighted layer under its stable key (see `weight_map`)."""
        named = self.backbone.named_layers()
        if self.aux is not None:
            named.update({f"aux/{k}": sub for k, sub in self.aux.named_layers().items()})
        if self.head_dense is not None:
            named["head/dense"] = self.head_dense
        return named

    def weight_map(self):
        """Every variable under a stable key such as `cell_0/block0/left/sep_conv_5x5/sep1/depthwise_kernel`."""
        return _weight_map(self.named_layers())

    # ------------------------------------------------------------------ images

    def outputs_probabilities(self):
        return self.classifier_activation is not None and (
            _activation_name(self.classifier_activation) == "softmax"
        )

    def predict_images(self, images, batch_size=32):
        """Class probabilities `(N, classes)` for raw images (arrays in [0, 255], any size)."""
        images = (
            list(images) if not isinstance(images, np.ndarray) or images.ndim == 4 else [images]
        )
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = self.preprocessor.convert_images(images[start : start + batch_size])
            chunks.append(np.asarray(self(batch, training=False), dtype=np.float32))
        outputs = np.concatenate(chunks)
        return outputs if self.outputs_probabilities() else softmax(outputs)

    def decode(self, probabilities, top=5):
        """Top-`top` `Prediction(index, wnid, name, probability)` per row, most probable first."""
        return decode_predictions(probabilities, self.class_names, top)

    def classify(self, images, top=5, batch_size=32):
        """`decode(predict_images(images), top)`."""
        return self.decode(self.predict_images(images, batch_size), top)

    # ------------------------------------------------------------------ config

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "activation": keras.activations.serialize(
                keras.activations.get(self.classifier_activation)
            ),
            "dropout": self.dropout,
            "aux_head": self.aux_head,
            "aux_weight": self.aux_weight,
            "drop_path_total_steps": self.drop_path_total_steps,
            "preprocessor": keras.layers.serialize(self.preprocessor),
            "class_names": self.class_names,
        }

    @classmethod
    def from_preset(cls, preset, weights=None, **kwargs):
        """A classifier for a published architecture or a zoo preset record, with weights.

        The core knows the architectures of `nasnet_app.presets.ARCHITECTURES`
        (`"mobile"`, `"large"`, `"cifar"`, or any `ModelConfig`) and the
        official keras-applications weights (`weights="imagenet"` for Mobile and
        Large, or a `.h5` / `.weights.h5` path), as `NASNetMobile` & co. The
        pretrained presets (`"nasnet_a_mobile_imagenet"`, TF-Slim weights, the
        shipped checkpoints) live in `nasnet_app.zoo`, which the core never
        imports: load one by name with `nasnet_app.zoo.load(name, weights=...)`,
        or pass its record here (`from_preset(zoo.get_preset(name), "pretrained")`).

        Args:
            preset: a `ModelConfig`, an architecture name, or a zoo `Preset`.
            weights: None, `"imagenet"` or a weights file (for a zoo preset:
                anything `nasnet_app.zoo.load` accepts).
            **kwargs: other `NASNet` arguments (`include_top`, `classes`, ...).

        Example:

        >>> from nasnet_app import NASNetImageClassifier
        >>> NASNetImageClassifier.from_preset("mobile", include_top=False).count_params()
        4269716
        """
        from nasnet_app import applications
        from nasnet_app.model import NASNet
        from nasnet_app.presets import ARCHITECTURES, get_architecture

        if callable(getattr(preset, "load", None)):
            return preset.load(weights, **kwargs)
        architecture = get_architecture(preset)
        if ARCHITECTURES.get(architecture.name) == architecture:
            build = {
                "mobile": applications.NASNetMobile,
                "large": applications.NASNetLarge,
                "cifar": applications.NASNetCIFAR,
            }[architecture.name]
            return build(weights=weights, **kwargs)
        model = NASNet(**{**architecture.model_kwargs(), **kwargs})
        if weights is not None:
            applications.load_weights_file(model, weights)
        return model

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("dtype", None)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        if isinstance(config.get("preprocessor"), dict):
            config["preprocessor"] = keras.layers.deserialize(config["preprocessor"])
        if isinstance(config.get("activation"), dict):
            config["activation"] = keras.activations.deserialize(config["activation"])
        return cls(**config)


def _class_name(entry):
    """A class name, or a `[wnid, name]` pair (ImageNet)."""
    return str(entry) if isinstance(entry, str) else [str(part) for part in entry]


def softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def decode_predictions(probabilities, class_names=None, top=5):
    """Top-`top` `Prediction`s per row; `class_names` entries are names or `(wnid, name)`."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2:
        fail("probabilities", "an array of shape (N, classes)", probabilities.shape)
    if class_names is not None and probabilities.shape[-1] != len(class_names):
        raise ValueError(
            f"`probabilities` must have {len(class_names)} columns, one per class name. "
            f"Received: probabilities.shape={probabilities.shape}"
        )
    if not isinstance(top, int) or top < 1:
        fail("top", "a positive integer", top)
    results = []
    for row in probabilities:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([_prediction(int(i), float(row[i]), class_names) for i in order])
    return results


def _prediction(index, probability, class_names):
    if class_names is None:
        return Prediction(index, None, str(index), probability)
    entry = class_names[index]
    wnid, name = entry if isinstance(entry, (list, tuple)) else (None, str(entry))
    return Prediction(index, wnid, name, probability)


class DropPathSchedule(keras.callbacks.Callback):
    """Ramps scheduled drop path up over a whole `fit` (TF-Slim's schedule).

    Sets the model's `drop_path_total_steps` to `epochs * steps` at the start
    of training, so the drop probability of each cell grows linearly from 0 to
    its final value with `optimizer.iterations`.
    """

    def __init__(self, total_steps=None):
        super().__init__()
        self.total_steps = total_steps

    def on_train_begin(self, logs=None):
        total = self.total_steps
        if total is None:
            epochs, steps = self.params.get("epochs"), self.params.get("steps")
            if not epochs or not steps:
                raise ValueError(
                    "`total_steps` must be given when fit() does not know its steps per epoch. "
                    f"Received: total_steps=None with params={self.params}"
                )
            total = epochs * steps
        self.model.drop_path_total_steps = int(total)
