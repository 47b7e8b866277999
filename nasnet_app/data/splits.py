"""Splits: finding them in a folder tree, holding fractions out, and choosing what validates.

A tree is `<class>/<image>` (one `train` split) or `<split>/<class>/<image>`
with split folders `train`, `val` (`valid`, `validation`) and `test`.
`hold_out` carves seeded, per-class fractions out of `train`;
`choose_validation` decides which split a training run validates on, and
`describe` says what was found and what validates.
"""

import numbers

import numpy as np

from nasnet_app.data.images import IMAGE_EXTENSIONS, is_image_name

SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
DEFAULT_VALIDATION_FRACTION = 0.1
VALIDATION_CHOICES = ("auto", "holdout", "val", "test", "train", "none")


def _fail(name, expectation, value):
    raise ValueError(f"`{name}` must be {expectation}. Received: {name}={value!r}")


# --------------------------------------------------------------------------- split detection


def class_tree(files, dirs, where):
    """`{split: {class: [relative file paths]}}` from the relative paths of a tree.

    `dirs` lists every folder (so that empty class folders are noticed).
    """
    tops = {p.split("/")[0] for p in dirs} | {p.split("/")[0] for p in files if "/" in p}
    split_tops = {t for t in tops if t.lower() in SPLIT_FOLDERS}
    if split_tops:
        others = sorted(tops - split_tops)
        if others:
            raise ValueError(
                f"`{where}` mixes split folders ({', '.join(sorted(split_tops))}) with other "
                f"folders ({', '.join(others)}); put every class folder under a split folder."
            )
        tree = {}
        for top in sorted(split_tops, key=lambda t: SPLITS.index(SPLIT_FOLDERS[t.lower()])):
            split = SPLIT_FOLDERS[top.lower()]
            if split in tree:
                raise ValueError(f"`{where}` has two folders for the {split!r} split.")
            tree[split] = _classes_under(top + "/", files, dirs, f"{where}/{top}")
        _check_same_classes(tree, where)
        return tree
    return {"train": _classes_under("", files, dirs, where)}


def _classes_under(prefix, files, dirs, where):
    relative = (d[len(prefix) :] for d in dirs if d.startswith(prefix))
    names = sorted(n for n in relative if n and "/" not in n and not n.startswith("."))
    if not names:
        raise ValueError(f"`{where}` has no class sub-folders (expected {where}/<class>/<image>).")
    classes = {name: [] for name in names}
    for file in files:
        if file.startswith(prefix) and is_image_name(file):
            head, _, rest = file[len(prefix) :].partition("/")
            if rest and head in classes:
                classes[head].append(file)
    for name, inside in classes.items():
        if not inside:
            raise ValueError(
                f"Class folder `{where}/{name}` contains no images ({', '.join(IMAGE_EXTENSIONS)})."
            )
        inside.sort()
    return classes


def _check_same_classes(tree, where):
    reference_split = "train" if "train" in tree else next(iter(tree))
    reference = set(tree[reference_split])
    for split, classes in tree.items():
        missing, extra = sorted(reference - set(classes)), sorted(set(classes) - reference)
        if missing or extra:
            details = "; ".join(
                text
                for text in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"extra {', '.join(extra)}" if extra else "",
                )
                if text
            )
            raise ValueError(
                f"The class folders of `{where}/{split}` differ from those of "
                f"`{where}/{reference_split}` ({details}). Every split needs the same classes."
            )


# --------------------------------------------------------------------------- hold-outs


def hold_out(data, val_fraction=None, test_fraction=None, seed=0):
    """Moves a stratified, seeded fraction of each class from train to val / test.

    Each class gives `round(fraction * its images)`; the choice depends only on
    `seed` and the training files, and is recorded in `info.held_out`.
    """
    wanted = [(s, f) for s, f in (("val", val_fraction), ("test", test_fraction)) if f]
    if not wanted:
        return data
    splits = dict(data.splits)
    for split, fraction in wanted:
        if not 0.0 < fraction < 1.0:
            _fail(f"{split}_fraction", "in (0, 1)", fraction)
        if split in splits:
            raise ValueError(
                f"`{split}_fraction` cannot be used: {data.info.source} already has a "
                f"{split!r} split. Received: {split}_fraction={fraction}"
            )
    train = splits["train"]
    if train.labels is None:
        raise ValueError("`val_fraction` / `test_fraction` need an indexable training split.")
    rng = np.random.default_rng(seed)
    parts = {split: [] for split, _ in wanted}
    keep = []
    for label in range(data.info.num_classes):
        members = rng.permutation(np.flatnonzero(train.labels == label))
        start = 0
        for split, fraction in wanted:
            take = int(round(fraction * len(members)))
            parts[split].extend(members[start : start + take])
            start += take
        keep.extend(members[start:])
    splits["train"] = train.subset(np.sort(np.array(keep, np.int64)))
    for split, members in parts.items():
        splits[split] = train.subset(np.sort(np.array(members, np.int64)))
    held_out = dict(data.info.held_out)
    held_out.update(
        {split: {"from": "train", "fraction": float(f), "seed": int(seed)} for split, f in wanted}
    )
    return data.replace(splits=splits, held_out=held_out)


# --------------------------------------------------------------------------- validation


def choose_validation(data, validation_split=None, seed=0):
    """The data a training run uses and the split it validates on: `(data, split or None)`.

    Args:
        data: an `ImageData`.
        validation_split: what validates:
            * `None` or `"auto"`: `val` if the data has one; else a
              `DEFAULT_VALIDATION_FRACTION` (10%) of each class held out of
              `train` (so `test` stays unseen for evaluation); else, when
              `train` is too small to give any image at 10% or cannot be
              indexed (TFDS), `test` if present; else nothing.
            * `"holdout"` or a fraction in (0, 1) (also as text, `"0.2"`):
              hold that fraction (default 10%) of each class out of `train`
              as `val`; an error if `val` exists or nothing would be held out.
            * `"val"`, `"test"`, `"train"`: that split, which must exist.
            * `"none"`: no validation.
        seed: fixes the held-out images (the same seed gives the same split).

    Example:

    >>> from nasnet_app.data import choose_validation, demo_cifar10
    >>> data, split = choose_validation(demo_cifar10(), seed=0)
    >>> split, data.info.counts
    ('val', {'train': 1800, 'test': 1000, 'val': 200})
    """
    choice = _validation_choice(validation_split)
    if choice == "none":
        return data, None
    if choice in ("val", "test", "train"):
        data.split(choice)
        return data, choice
    if choice == "auto":
        if "val" in data.splits:
            return data, "val"
        held = _try_hold_out(data, DEFAULT_VALIDATION_FRACTION, seed)
        if held is not None:
            return held, "val"
        return data, ("test" if "test" in data.splits else None)
    fraction = DEFAULT_VALIDATION_FRACTION if choice == "holdout" else choice
    if "val" in data.splits:
        raise ValueError(
            f"`validation_split` cannot hold out of train: {data.info.source} already has a "
            f"'val' split; use validation_split='val'. Received: validation_split={validation_split!r}"
        )
    held = _try_hold_out(data, fraction, seed)
    if held is None:
        raise ValueError(
            f"`validation_split` holds out {fraction:.0%} of each class of train, which gives no "
            f"image for {data.info.source} ({data.info.counts.get('train', 0)} training images); "
            f"use a larger fraction or another split. Received: validation_split={validation_split!r}"
        )
    return held, "val"


def _validation_choice(value):
    """`"auto"`, `"none"`, a split name, `"holdout"` or a float fraction."""
    if value is None:
        return "auto"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in VALIDATION_CHOICES:
            return text
        try:
            value = float(text)
        except ValueError:
            value = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 < value < 1.0:
        return float(value)
    return _fail(
        "validation_split",
        f"one of {', '.join(VALIDATION_CHOICES)} or a fraction in (0, 1)",
        value if value is not None else "",
    )


def _try_hold_out(data, fraction, seed):
    """`hold_out(data, fraction)`, or `None` where train cannot give a single image."""
    train = data.splits.get("train")
    if train is None or train.labels is None:
        return None
    counts = np.bincount(train.labels, minlength=data.info.num_classes)
    if not any(int(round(fraction * int(n))) for n in counts):
        return None
    return hold_out(data, val_fraction=fraction, seed=seed)


# --------------------------------------------------------------------------- description


def describe(data, validation_split=None):
    """What `data` holds and what a run validates on, as a few printable lines.

    Args:
        data: an `ImageData` (e.g. the first result of `choose_validation`).
        validation_split: the split that validates (the second result of
            `choose_validation`), or `None` for none.

    Example:

    >>> from nasnet_app.data import choose_validation, demo_cifar10, describe
    >>> print(describe(*choose_validation(demo_cifar10())))  # doctest: +ELLIPSIS
    data .../cifar10_subset.tar: 10 classes (airplane, automobile, ..., truck), 32x32 images
      train: 1800 images (180 per class)
      test: 1000 images (100 per class)
      val: 200 images (20 per class), held out of train (10% of each class, seed 0)
    validation: val (held out of train); test is kept for evaluation
    """
    info = data.info
    height, width = info.image_size
    lines = [
        f"data {info.source}: {info.num_classes} classes ({_class_list(info.class_names)}), "
        f"{height}x{width} images"
    ]
    for split, count in info.counts.items():
        lines.append(
            f"  {split}: {count} images{_per_class(info.class_counts[split])}"
            f"{_origin(info.held_out.get(split))}"
        )
    if data.bad_files:
        lines.append(f"  skipped {len(data.bad_files)} unreadable images")
    lines.append(f"validation: {_validation_text(data, validation_split)}")
    return "\n".join(lines)


def _class_list(names, shown=4):
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join([*names[: shown // 2], "...", *names[-1:]])


def _per_class(counts):
    if not counts:
        return ""
    low, high = min(counts), max(counts)
    return f" ({low} per class)" if low == high else f" ({low}-{high} per class)"


def _origin(held):
    if not held:
        return ""
    return (
        f", held out of {held['from']} ({held['fraction']:.0%} of each class, seed {held['seed']})"
    )


def _validation_text(data, split):
    if split is None:
        return "none (no validation split)"
    if split == "test":
        return (
            "test (the same images validate and evaluate the model; to keep them apart, hold "
            "part of train out: --validation-split holdout, validation_split='holdout')"
        )
    text = split
    if split in data.info.held_out:
        text += f" (held out of {data.info.held_out[split]['from']})"
    if split != "test" and "test" in data.splits:
        text += "; test is kept for evaluation"
    return text
