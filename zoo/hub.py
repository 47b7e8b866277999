"""SavedModel and TF-Hub export, and TF-Hub image modules as Keras 3 feature extractors.

* `export_saved_model(model, out)`: a TF SavedModel with a `serving_default`
  signature (for TF Serving, `saved_model_cli`, `tf.saved_model.load`).
* `export_hub(model, out)`: two reusable TF2 SavedModels in the TF-Hub layout,
  `out/classification` (the model's outputs) and `out/feature_vector` (the
  global-pooled features). Each has a `@tf.function __call__(images,
  training=False)` traced for both modes, `variables`, `trainable_variables` and
  `regularization_losses`, so `tensorflow_hub.KerasLayer(path, trainable=True)`
  loads and fine-tunes it under tf_keras (BatchNormalization statistics update
  while training).
* `load_hub(handle)`: wraps a TF-Hub image module (a folder, or a hub handle
  resolved by `tensorflow_hub`) as a frozen Keras 3 layer. `hub.KerasLayer`
  itself is a tf_keras layer and cannot enter a Keras 3 model.

Example:

>>> import keras
>>> from nasnet_app.zoo import hub
>>> hub.export_hub(model, "exported")  # doctest: +SKIP
>>> features = hub.load_hub("exported/feature_vector")  # doctest: +SKIP
>>> head = keras.Sequential([keras.Input((224, 224, 3)), features,
...     keras.layers.Dense(5)])  # doctest: +SKIP
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

HUB_MODULES = ("classification", "feature_vector")


def _input_spec(model):
    try:
        shape = tuple(model.input_shape)[1:]
    except (AttributeError, ValueError):
        shape = (None, None, 3)
    return tf.TensorSpec((None,) + tuple(shape), tf.float32, name="images")


def _features(model, images, training):
    """Global-pooled features of the last cell (TF-Slim's `global_pool`)."""
    if getattr(model, "include_top", False) and hasattr(model, "endpoints"):
        return model.endpoints(images, training=training)["global_pool"]
    if hasattr(model, "endpoints"):
        outputs = model(images, training=training)
        return tf.reduce_mean(outputs, axis=[1, 2]) if outputs.shape.rank == 4 else outputs
    raise ValueError(
        "`model` must be a nasnet_app.NASNet to export a feature vector module. "
        f"Received: model of type {type(model).__name__}"
    )


def _reusable_module(model, forward):
    """A TF-Hub reusable SavedModel object around `forward(images, training)`."""
    spec = _input_spec(model)
    module = tf.__internal__.tracking.AutoTrackable()
    module.variables = list(model.variables)
    module.trainable_variables = list(model.trainable_variables)
    module.regularization_losses = []

    @tf.function(autograph=False)
    def call(images, training=False):
        return forward(images, training)

    for training in (False, True):
        call.get_concrete_function(spec, training=training)
    module.__call__ = call
    signature = call.get_concrete_function(spec, training=False)
    return module, {"serving_default": signature}


def _write_folder(out, overwrite, write):
    """Writes a folder atomically: into a temporary sibling, then renamed."""
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"`out` must not exist (pass overwrite=True). Received: out={out}")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=parent)
    try:
        write(staging)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return out


def export_saved_model(model, out, overwrite=False):
    """Exports a model as a SavedModel with a `serving_default` signature.

    Args:
        model: a Keras 3 model.
        out: folder to create.
        overwrite: replace an existing folder.

    Returns:
        The folder written.
    """
    spec = _input_spec(model)

    def write(folder):
        model.export(folder, format="tf_saved_model", input_signature=[spec], verbose=False)

    return _write_folder(out, overwrite, write)


def export_hub(model, out, overwrite=False):
    """Exports TF-Hub reusable SavedModels: `out/classification`, `out/feature_vector`.

    Args:
        model: a `nasnet_app.NASNet` with its top layer (the feature vector
            module is still written for a model without it; classification is not).
        out: folder to create.
        overwrite: replace an existing folder.

    Returns:
        The folder written.
    """
    forwards = {"feature_vector": lambda x, training: _features(model, x, training)}
    if getattr(model, "include_top", True):
        forwards["classification"] = lambda x, training: model(x, training=training)

    def write(folder):
        for name, forward in forwards.items():
            module, signatures = _reusable_module(model, forward)
            tf.saved_model.save(module, os.path.join(folder, name), signatures=signatures)

    return _write_folder(out, overwrite, write)


def _resolve_handle(handle):
    handle = os.fspath(handle)
    if os.path.isdir(handle):
        return handle
    if "://" in handle or handle.startswith(("@", "kaggle")):
        import tensorflow_hub

        return tensorflow_hub.resolve(handle)
    raise FileNotFoundError(
        f"TF-Hub module not found: {handle} (a SavedModel folder or a tfhub.dev / Kaggle handle)"
    )


@keras.saving.register_keras_serializable(package="nasnet_app")
class HubImageModule(keras.layers.Layer):
    """A TF-Hub image module (reusable TF2 SavedModel) as a frozen Keras 3 layer.

    Args:
        handle: the module folder, or a handle `tensorflow_hub` can resolve.
        output_key: for modules that return a dict, the entry to output.
    """

    def __init__(self, handle, output_key=None, **kwargs):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.handle, self.output_key = os.fspath(handle), output_key
        folder = _resolve_handle(self.handle)
        try:
            self._module = tf.saved_model.load(folder)
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise ValueError(f"Cannot load TF-Hub module {self.handle}: {error}") from None
        self._function = self._callable()

    def _callable(self):
        if callable(self._module):
            return lambda images: self._module(images, training=False)
        signatures = getattr(self._module, "signatures", {})
        if "serving_default" in signatures:
            return lambda images: signatures["serving_default"](images)
        raise ValueError(
            f"TF-Hub module {self.handle} has neither __call__ nor a serving_default signature."
        )

    def call(self, images):
        outputs = self._function(tf.cast(images, tf.float32))
        if isinstance(outputs, dict):
            key = self.output_key or sorted(outputs)[0]
            outputs = outputs[key]
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(handle=self.handle, output_key=self.output_key)
        return config


def load_hub(handle, output_key=None, name="hub_module"):
    """A TF-Hub image module (e.g. an exported `feature_vector`) as a frozen Keras 3 layer.

    Args:
        handle: module folder or hub handle.
        output_key: entry to output for modules that return dicts.
        name: layer name.

    Example:

    >>> layer = load_hub("exported/feature_vector")  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(10)])  # doctest: +SKIP
    """
    return HubImageModule(handle, output_key=output_key, name=name)
