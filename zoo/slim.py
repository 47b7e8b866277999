"""TF-Slim NASNet checkpoints into `nasnet_app.NASNet`.

The conversion is a set of pure functions:

* `slim_key(name, genotype)`: one TF-Slim variable name to the model's weight
  key (see `NASNet.weight_map`), for any genotype built from the TF-Slim ops
  (separable 3x3/5x5/7x7, 3x3 avg/max pool, identity);
* `select_names(names)`: for every variable, the stored name to read: the EMA
  shadow `<name>/ExponentialMovingAverage` first (the published checkpoints
  keep the averaged weights there), then the plain name;
* `convert_slim(tensors, target_shapes, genotype)`: a `{key: array}` dict with
  shape checks, the background class of 1001-class heads dropped for
  1000-class models, and `aux_*` / `global_step` / optimizer slots ignored.

`load_slim_checkpoint(model, path)` is the loader: it opens a checkpoint
prefix, a folder or the official `.tar.gz` archive and assigns the converted
weights to an already built model. Models for TF-Slim weights must use
`strided_pool_padding="same"`.

Example:

>>> import nasnet_app
>>> from nasnet_app.zoo import slim
>>> model = nasnet_app.NASNet(num_blocks=4, penultimate_filters=1056,
...     input_shape=(224, 224, 3), classes=1000)  # doctest: +SKIP
>>> slim.load_slim_checkpoint(model, "nasnet-a_mobile_04_10_2017.tar.gz")  # doctest: +SKIP
"""

import glob
import os
import re

import numpy as np

from nasnet_app.genotype import resolve_genotype
from nasnet_app.op_registry import find_op

EMA_SUFFIX = "/ExponentialMovingAverage"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
LEAVES = {
    "weights": "kernel",
    "depthwise_weights": "depthwise_kernel",
    "pointwise_weights": "pointwise_kernel",
    "biases": "bias",
    "beta": "beta",
    "gamma": "gamma",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
}
TOP_SCOPES = {
    "conv0": "stem/conv",
    "conv0_bn": "stem/bn",
    "l1_stem_3x3": "stem/conv",
    "l1_stem_bn": "stem/bn",
    "final_layer/FC": "head/dense",
}
CELL_SCOPES = {
    "1x1": "base/conv",
    "beginning_bn": "base/bn",
    "prev_1x1": "adjust/conv",
    "prev_bn": "adjust/bn",
    "path1_conv": "adjust/path1_conv",
    "path2_conv": "adjust/path2_conv",
    "final_path_bn": "adjust/bn",
}
OUTPUT_SCOPES = {
    "path_conv": "conv",
    "path_bn": "bn",
    "path1_conv": "path1_conv",
    "path2_conv": "path2_conv",
    "final_path_bn": "bn",
}
_CELL = re.compile(r"^(cell_stem_\d+|cell_\d+|reduction_cell_\d+)/(.+)$")
_BRANCH = re.compile(r"^comb_iter_(\d+)/(left|right)/(.+)$")
_SEPARABLE = re.compile(r"^(bn_sep|separable)_(\d)x\2_([12])$")
_OUTPUT = re.compile(r"^cell_output/reduction_(\d+)/(.+)$")
HEAD_KEYS = ("head/dense/kernel", "head/dense/bias")


class UnknownSlimName(ValueError):
    """A name under a model scope that no NASNet weight corresponds to."""


def _branch_key(rest, cell, genotype_cell):
    block, side, scope = _BRANCH.match(rest).groups()
    block = int(block)
    separable = _SEPARABLE.match(scope)
    if separable:
        kind, size, layer = separable.groups()
        part = f"bn{layer}" if kind == "bn_sep" else f"sep{layer}"
        return f"block{block}/{side}/{find_op('sep_conv', int(size))}/{part}"
    if scope in ("1x1", "bn_1"):
        if block >= len(genotype_cell.blocks):
            raise UnknownSlimName(f"{cell} has no block {block} in this genotype")
        op = genotype_cell.blocks[block].ops[0 if side == "left" else 1]
        return f"block{block}/{side}/{op}/{'proj_conv' if scope == '1x1' else 'proj_bn'}"
    raise UnknownSlimName(scope)


def _cell_scope_key(cell, rest, genotype):
    kind = "normal" if cell.startswith("cell_") and not cell.startswith("cell_stem") else "red"
    genotype_cell = genotype.normal if kind == "normal" else genotype.reduction
    if rest in CELL_SCOPES:
        return CELL_SCOPES[rest]
    if _BRANCH.match(rest):
        return _branch_key(rest, cell, genotype_cell)
    output = _OUTPUT.match(rest)
    if output and output.group(2) in OUTPUT_SCOPES:
        return f"output/state{output.group(1)}/{OUTPUT_SCOPES[output.group(2)]}"
    raise UnknownSlimName(rest)


def _cell_name(scope):
    return scope.replace("cell_stem_", "stem_cell_")


def slim_key(name, genotype="nasnet_a"):
    """The model weight key of a TF-Slim variable, or None for variables to ignore.

    Args:
        name: a TF-Slim variable name without the EMA suffix, e.g.
            `cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights`.
        genotype: the genotype the checkpoint was built with (it names the
            ops of per-branch projections).

    Raises:
        UnknownSlimName: a name under a model scope that matches no weight.

    Example:

    >>> slim_key("cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights")
    'cell_0/block0/left/sep_conv_5x5/sep1/depthwise_kernel'
    >>> slim_key("aux_7/aux_logits/FC/weights") is None
    True
    """
    scope, _, leaf = name.rpartition("/")
    if leaf not in LEAVES or not scope or scope.startswith("aux_") or "/aux_logits" in scope:
        return None
    if scope in TOP_SCOPES:
        return f"{TOP_SCOPES[scope]}/{LEAVES[leaf]}"
    cell = _CELL.match(scope)
    if cell is None:
        if scope.split("/")[0] in ("global_step", "beta1_power", "beta2_power"):
            return None
        raise UnknownSlimName(name)
    try:
        inner = _cell_scope_key(cell.group(1), cell.group(2), resolve_genotype(genotype))
    except UnknownSlimName:
        raise UnknownSlimName(name) from None
    return f"{_cell_name(cell.group(1))}/{inner}/{LEAVES[leaf]}"


def select_names(names):
    """Maps each plain variable name to the stored name to read, EMA shadow first.

    Example:

    >>> select_names(["a/weights", "a/weights/ExponentialMovingAverage", "b/beta"])
    {'a/weights': 'a/weights/ExponentialMovingAverage', 'b/beta': 'b/beta'}
    """
    chosen = {}
    for name in sorted(names):
        if name.endswith(EMA_SUFFIX):
            chosen[name[: -len(EMA_SUFFIX)]] = name
        else:
            chosen.setdefault(name, name)
    return dict(sorted(chosen.items()))


def _fit_head(key, array, target_shape):
    """Drops TF-Slim's background class (index 0) when the model has one class fewer."""
    if key in HEAD_KEYS and array.shape[-1] == target_shape[-1] + 1:
        return array[..., 1:]
    return array


def _describe(entries, limit=3):
    shown = "; ".join(entries[:limit])
    more = f" (and {len(entries) - limit} more)" if len(entries) > limit else ""
    return shown + more


def convert_slim(tensors, target_shapes, genotype="nasnet_a", source="TF-Slim checkpoint"):
    """TF-Slim tensors to `{model key: array}` for a model with `target_shapes`.

    Args:
        tensors: a mapping from stored variable names to arrays (such as
            `CheckpointTensors`); EMA shadows are preferred.
        target_shapes: `{key: shape}` of the model (from `NASNet.weight_map()`).
            Keys under `aux/` may stay unset (the auxiliary head is training-only).
        genotype: the genotype of the checkpoint's network.
        source: a name for error messages (the checkpoint path).

    Returns:
        A dict with one array per key of `target_shapes` (except `aux/`).

    Raises:
        ValueError: variables are missing, unused or of the wrong shape: the
            checkpoint is of another architecture or size. The message names
            the first ones, with both shapes.
    """
    arrays, unused, mismatched, origin = {}, [], [], {}
    for plain, stored in select_names(tensors.keys()).items():
        try:
            key = slim_key(plain, genotype)
        except UnknownSlimName:
            unused.append(f"{plain} (no NASNet weight has this name)")
            continue
        if key is None or (key in HEAD_KEYS and key not in target_shapes):
            continue
        if key not in target_shapes:
            unused.append(f"{plain} {list(np.shape(tensors[stored]))}")
            continue
        array = _fit_head(key, np.asarray(tensors[stored]), target_shapes[key])
        if tuple(array.shape) != tuple(target_shapes[key]):
            mismatched.append(
                f"{key}: checkpoint {plain} has shape {list(np.shape(tensors[stored]))}, "
                f"the model expects {list(target_shapes[key])}"
            )
            continue
        arrays[key], origin[key] = array, plain
    reported = _mismatched_keys(mismatched)
    missing = [
        f"{key} {list(shape)}"
        for key, shape in target_shapes.items()
        if key not in arrays and key not in reported and not key.startswith("aux/")
    ]
    _raise_if_incompatible(source, missing, mismatched, unused)
    return arrays


def _mismatched_keys(mismatched):
    return {entry.split(":", 1)[0] for entry in mismatched}


def _raise_if_incompatible(source, missing, mismatched, unused):
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches, first: {_describe(mismatched)}")
    if missing:
        problems.append(
            f"{len(missing)} model weights missing from the checkpoint, first: {_describe(missing)}"
        )
    if unused:
        problems.append(
            f"{len(unused)} checkpoint variables the model has no place for, first: "
            f"{_describe(unused)}"
        )
    if problems:
        raise ValueError(
            f"{source} does not fit this model (another architecture or size?): "
            + ". ".join(problems)
            + "."
        )


class CheckpointTensors:
    """A read-only mapping `name -> np.ndarray` over a TF checkpoint (read on access)."""

    def __init__(self, prefix):
        import tensorflow as tf

        self.prefix = prefix
        try:
            self._reader = tf.train.load_checkpoint(prefix)
            self._shapes = self._reader.get_variable_to_shape_map()
        except (tf.errors.OpError, IndexError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"Cannot read TF checkpoint {prefix} (missing, truncated or corrupt): "
                f"{_first_line(error)}"
            ) from None

    def keys(self):
        return self._shapes.keys()

    def __contains__(self, name):
        return name in self._shapes

    def __len__(self):
        return len(self._shapes)

    def __iter__(self):
        return iter(self._shapes)

    def __getitem__(self, name):
        import tensorflow as tf

        if name not in self._shapes:
            raise KeyError(name)
        try:
            return self._reader.get_tensor(name)
        except (tf.errors.OpError, IndexError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"Cannot read variable {name} from TF checkpoint {self.prefix} "
                f"(truncated or corrupt): {_first_line(error)}"
            ) from None


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _prefix_in_folder(folder):
    indexes = sorted(glob.glob(os.path.join(folder, "**", "*.index"), recursive=True))
    if not indexes:
        raise FileNotFoundError(f"No TF checkpoint (*.index file) in {folder}")
    if len(indexes) > 1:
        raise ValueError(
            f"{folder} holds several checkpoints ({', '.join(indexes)}); pass one prefix."
        )
    return indexes[0][: -len(".index")]


def _extraction_folder(archive):
    from nasnet_app.download import cache_dir, file_hash

    stem = os.path.basename(archive)
    for suffix in ARCHIVE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return os.path.join(cache_dir(), "extracted", f"{stem}-{file_hash(archive)[:12]}")


def resolve_checkpoint(path, extract_to=None):
    """The checkpoint prefix for a prefix, a `.index`/`.data-*` file, a folder or an archive.

    Archives are extracted safely (see `nasnet_app.zoo.archive`), by default
    into the cache (`$NASNET_APP_HOME/extracted/`), once.
    """
    from nasnet_app.zoo.archive import extract_archive

    path = os.fspath(path)
    if path.endswith(ARCHIVE_SUFFIXES):
        folder = extract_archive(path, extract_to or _extraction_folder(path))
        return _prefix_in_folder(folder)
    if os.path.isdir(path):
        return _prefix_in_folder(path)
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    path = re.sub(r"\.data-\d{5}-of-\d{5}$", "", path)
    if not os.path.exists(path + ".index"):
        raise FileNotFoundError(
            f"TF-Slim checkpoint not found: {path} (expected {path}.index and "
            f"{path}.data-00000-of-00001, a folder holding them, or a .tar.gz archive)"
        )
    return path


def read_slim_checkpoint(path, extract_to=None):
    """`CheckpointTensors` for a checkpoint prefix, folder or archive."""
    return CheckpointTensors(resolve_checkpoint(path, extract_to))


def load_slim_checkpoint(model, path, extract_to=None):
    """Assigns a TF-Slim checkpoint to a built `NASNet` and returns the model.

    Args:
        model: a built `nasnet_app.NASNet` (`strided_pool_padding="same"`).
        path: checkpoint prefix, folder, or the official `.tar.gz` archive.
        extract_to: folder for the extracted archive (default: the cache).
    """
    from nasnet_app.weights import assign_weights

    padding = getattr(model, "strided_pool_padding", "same")
    if padding != "same":
        raise ValueError(
            "`strided_pool_padding` must be 'same' for TF-Slim weights (TF-Slim pools ignore "
            f"padded cells). Received a model with strided_pool_padding={padding!r}"
        )
    tensors = read_slim_checkpoint(path, extract_to)
    shapes = {key: tuple(v.shape) for key, v in model.weight_map().items()}
    arrays = convert_slim(tensors, shapes, model.genotype, source=f"TF-Slim checkpoint {path}")
    assign_weights(model, arrays, f"TF-Slim checkpoint {path}", ignore_missing=("aux/",))
    return model
