"""Weight files: shape-checked assignment and the keras.applications `.h5` format.

The converter is a pure name map (`keras_applications_key`) plus a reader;
`assign_weights` is the single place that writes arrays into a model.
"""

import os
import re

import h5py
import numpy as np

_SEPARABLE_NAMES = {
    # keras.applications block name -> (block, side, op) of NASNet-A.
    "normal": {
        "left1": (0, "left", "sep_conv_5x5"),
        "right1": (0, "right", "sep_conv_3x3"),
        "left2": (1, "left", "sep_conv_5x5"),
        "right2": (1, "right", "sep_conv_3x3"),
        "left5": (4, "left", "sep_conv_3x3"),
    },
    "reduction": {
        "left1": (0, "left", "sep_conv_5x5"),
        "right1": (0, "right", "sep_conv_7x7"),
        "right2": (1, "right", "sep_conv_7x7"),
        "right3": (2, "right", "sep_conv_5x5"),
        "left4": (4, "left", "sep_conv_3x3"),
    },
}
_SEPARABLE = re.compile(
    r"^separable_conv_(?P<n>[12])_(?P<bn>bn_)?(?P<kind>normal|reduction)_"
    r"(?P<branch>(left|right)\d)_(?P<id>.+)$"
)
_CELL_LAYER = re.compile(
    r"^(?P<what>normal_conv_1|normal_bn_1|reduction_conv_1|reduction_bn_1|"
    r"adjust_conv_1|adjust_conv_2|adjust_conv_projection|adjust_bn)_(?P<id>.+)$"
)
_CELL_PART = {
    "normal_conv_1": "base/conv",
    "normal_bn_1": "base/bn",
    "reduction_conv_1": "base/conv",
    "reduction_bn_1": "base/bn",
    "adjust_conv_1": "adjust/path1_conv",
    "adjust_conv_2": "adjust/path2_conv",
    "adjust_conv_projection": "adjust/conv",
    "adjust_bn": "adjust/bn",
}


class WeightsError(ValueError):
    """A weights file that does not fit the model it is loaded into."""


def keras_cell_name(block_id, num_blocks):
    """Maps a keras.applications cell `block_id` to this project's cell name."""
    if block_id in ("stem_1", "stem_2"):
        return f"stem_cell_{int(block_id[-1]) - 1}"
    if block_id == f"reduce_{num_blocks}":
        return "reduction_cell_0"
    if block_id == f"reduce_{2 * num_blocks}":
        return "reduction_cell_1"
    if not block_id.isdigit():
        return None
    index = int(block_id)
    skipped = 0 if index < num_blocks else 1  # ids run 0..N-1, N+1..2N, 2N+1..3N
    return f"cell_{index - skipped}"


def keras_applications_key(layer_name, weight_name, num_blocks):
    """The model key of one keras.applications NASNet-A weight, or `None`.

    Args:
        layer_name: e.g. `separable_conv_1_normal_left1_0`.
        weight_name: e.g. `depthwise_kernel:0` or `depthwise_kernel`.
        num_blocks: normal cells per stack (4 for Mobile, 6 for Large).
    """
    variable = weight_name.split("/")[-1].split(":")[0]
    if layer_name == "stem_conv1":
        return f"stem/conv/{variable}"
    if layer_name == "stem_bn1":
        return f"stem/bn/{variable}"
    if layer_name == "predictions":
        return f"head/dense/{variable}"
    match = _SEPARABLE.match(layer_name)
    if match:
        cell = keras_cell_name(match["id"], num_blocks)
        block = _SEPARABLE_NAMES[match["kind"]].get(match["branch"])
        if cell is None or block is None:
            return None
        part = ("bn" if match["bn"] else "sep") + match["n"]
        return f"{cell}/block{block[0]}/{block[1]}/{block[2]}/{part}/{variable}"
    match = _CELL_LAYER.match(layer_name)
    if match:
        cell = keras_cell_name(match["id"], num_blocks)
        return None if cell is None else f"{cell}/{_CELL_PART[match['what']]}/{variable}"
    return None


def read_legacy_h5(path):
    """Reads a Keras-2 HDF5 weights file into `{layer_name: [(weight_name, array)]}`.

    Accepts both `save_weights` files and whole-model files (`model_weights`).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found: {path}")
    try:
        with h5py.File(path, "r") as handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in group.attrs:
                raise WeightsError(
                    f"{path} is not a Keras-2 HDF5 weights file (no `layer_names` attribute)"
                )
            layers = {}
            for raw in group.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                layer = group[name]
                names = [
                    n.decode() if isinstance(n, bytes) else str(n)
                    for n in layer.attrs["weight_names"]
                ]
                layers[name] = [(n, np.asarray(layer[n])) for n in names]
            return layers
    except WeightsError:
        raise
    except (OSError, KeyError, ValueError) as error:
        raise WeightsError(f"Cannot read HDF5 weights file {path}: {error}") from None


def keras_h5_to_arrays(layers, num_blocks, source="the weights file"):
    """Converts keras.applications NASNet-A weights into `{model key: array}`."""
    arrays, unknown = {}, []
    for layer_name, weights in layers.items():
        for weight_name, value in weights:
            key = keras_applications_key(layer_name, weight_name, num_blocks)
            if key is None:
                unknown.append(f"{layer_name}/{weight_name}")
            else:
                arrays[key] = value
    if unknown:
        raise WeightsError(
            f"The weights in {source} do not fit a NASNet-A keras.applications model with "
            f"{num_blocks} cells per stack: {len(unknown)} unexpected weights (first: "
            + ", ".join(unknown[:5])
            + ")"
        )
    return arrays


def assign_weights(model, arrays, source, ignore_missing=()):
    """Writes `{key: array}` into `model.weight_map()` after checking every name and shape.

    Args:
        model: a `nasnet_app.NASNet`.
        arrays: converted arrays by model key.
        source: the file (or description) named in errors.
        ignore_missing: key prefixes the source may lack (e.g. `"aux/"`).

    Raises:
        WeightsError: naming the first missing, unexpected or mismatched weights.
    """
    targets = model.weight_map()
    missing = [k for k in targets if k not in arrays and not k.startswith(tuple(ignore_missing))]
    unexpected = [k for k in arrays if k not in targets]
    mismatched = [
        f"{k}: file {tuple(np.shape(arrays[k]))} vs model {tuple(targets[k].shape)}"
        for k in targets
        if k in arrays and tuple(np.shape(arrays[k])) != tuple(targets[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (first: {', '.join(missing[:5])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:5])})")
    if mismatched:
        problems.append(f"{len(mismatched)} of another shape (first: {'; '.join(mismatched[:5])})")
    if problems:
        raise WeightsError(
            f"The weights in {source} do not fit this model "
            f"({model.name}, {len(targets)} weights): " + "; ".join(problems)
        )
    for key, variable in targets.items():
        if key in arrays:
            variable.assign(np.asarray(arrays[key], dtype=variable.dtype))


def load_keras_h5(model, path):
    """Loads an official-format keras.applications NASNet `.h5` file into `model`."""
    arrays = keras_h5_to_arrays(read_legacy_h5(path), model.num_blocks, path)
    if not model.include_top:  # a with-top file also serves a model without top
        arrays = {k: v for k, v in arrays.items() if not k.startswith("head/")}
    assign_weights(model, arrays, path, ignore_missing=("aux/",))


def write_legacy_h5(keras_model, path):
    """Writes a Keras model's weights in the Keras-2 HDF5 format of the official files.

    Layer order and `layer/weight:0` names follow Keras 2's `save_weights`,
    so keras.applications can read the file back. Written atomically.
    """
    from nasnet_app.io_utils import atomic_path

    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["backend"] = b"tensorflow"
            handle.attrs["keras_version"] = b"2.1.3"
            handle.attrs["layer_names"] = [layer.name.encode() for layer in keras_model.layers]
            for layer in keras_model.layers:
                group = handle.create_group(layer.name)
                names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
                group.attrs["weight_names"] = [n.encode() for n in names]
                for name, weight in zip(names, layer.weights):
                    group.create_dataset(name, data=np.asarray(weight))
