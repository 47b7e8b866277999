"""Tests of nasnet_app.data.splits: split folders, held-out fractions, the validation choice, describe."""

import pytest

from nasnet_app import data
from tests.data_helpers import jpeg_tree


def test_splits_counts_and_info(tmp_path):
    layout = {
        "train/cat": 3,
        "train/dog": 2,
        "val/cat": 1,
        "val/dog": 1,
        "test/cat": 2,
        "test/dog": 1,
    }
    ds = data.load(jpeg_tree(tmp_path, layout))
    assert ds.class_names == ("cat", "dog")
    assert ds.info.counts == {"train": 5, "val": 2, "test": 3}
    assert ds.info.class_counts["train"] == (3, 2)
    assert ds.info.to_dict()["image_size"] == [32, 32]
    assert ds.evaluation_split == "test"
    assert ds.labels("train").tolist() == [0, 0, 0, 1, 1]


def test_validation_fraction_is_stratified_disjoint_and_seeded(tmp_path):
    ds = data.from_folder(jpeg_tree(tmp_path, {"a": 10, "b": 20}), val_fraction=0.2, seed=3)
    train, val = ds.split("train"), ds.split("val")
    assert ds.info.class_counts == {"train": (8, 16), "val": (2, 4)}
    assert not set(train.names) & set(val.names)
    assert len(set(train.names) | set(val.names)) == 30
    again = data.from_folder(str(tmp_path), val_fraction=0.2, seed=3)
    other = data.from_folder(str(tmp_path), val_fraction=0.2, seed=4)
    assert again.split("val").names == val.names
    assert other.split("val").names != val.names


def test_val_fraction_with_existing_val_split_is_rejected(tmp_path):
    root = jpeg_tree(tmp_path, {"train/a": 2, "val/a": 1})
    with pytest.raises(ValueError, match="already has a 'val' split"):
        data.from_folder(root, val_fraction=0.5)


def test_inconsistent_classes_across_splits_are_named(tmp_path):
    root = jpeg_tree(tmp_path, {"train/cat": 1, "train/dog": 1, "test/cat": 1, "test/cow": 1})
    with pytest.raises(ValueError, match=r"`.*/test` differ .*missing dog; extra cow"):
        data.from_folder(root)


def test_split_folders_mixed_with_class_folders(tmp_path):
    root = jpeg_tree(tmp_path, {"train/cat": 1, "dog": 1})
    with pytest.raises(ValueError, match="mixes split folders"):
        data.from_folder(root)


def _train_test_tree(root, train=10, test=2):
    layout = {"train/a": train, "train/b": train, "test/a": test, "test/b": test}
    return data.load(jpeg_tree(root, layout))


def test_default_validation_is_held_out_of_train_and_test_is_kept(tmp_path):
    ds = _train_test_tree(tmp_path)
    held, split = data.choose_validation(ds, seed=1)
    assert split == "val"
    assert held.info.counts == {"train": 18, "val": 2, "test": 4}
    assert held.info.class_counts["val"] == (1, 1)
    assert held.info.held_out == {"val": {"from": "train", "fraction": 0.1, "seed": 1}}
    assert held.split("test").names == ds.split("test").names
    train, val = set(held.split("train").names), set(held.split("val").names)
    assert not train & val and train | val == set(ds.split("train").names)
    assert data.choose_validation(ds, seed=1)[0].split("val").names == sorted(val)
    others = {tuple(data.choose_validation(ds, seed=s)[0].split("val").names) for s in range(6)}
    assert len(others) > 1  # the seed chooses the images
    text = data.describe(held, split)
    assert "val: 2 images (1 per class), held out of train (10% of each class, seed 1)" in text
    assert text.endswith("validation: val (held out of train); test is kept for evaluation")
    assert text.splitlines()[0] == f"data {tmp_path}: 2 classes (a, b), 32x32 images"


def test_validation_split_choices(tmp_path):
    ds = _train_test_tree(tmp_path)
    assert data.choose_validation(ds, "test") == (ds, "test")
    assert data.choose_validation(ds, "none") == (ds, None)
    half, split = data.choose_validation(ds, 0.5, seed=0)
    assert split == "val" and half.info.counts == {"train": 10, "val": 10, "test": 4}
    text_half, _ = data.choose_validation(ds, "0.5", seed=0)
    assert text_half.split("val").names == half.split("val").names
    assert data.choose_validation(ds, "holdout")[0].info.counts["val"] == 2
    assert data.choose_validation(half, None) == (half, "val")  # an existing val split wins
    with pytest.raises(ValueError, match="already has a 'val' split"):
        data.choose_validation(half, "holdout")
    with pytest.raises(ValueError, match="`validation_split` must be one of auto, holdout"):
        data.choose_validation(ds, "validation")
    with pytest.raises(ValueError, match="`validation_split` must be"):
        data.choose_validation(ds, 1.5)
    with pytest.raises(ValueError, match="split"):
        data.choose_validation(ds, "val")  # asked for, absent
    assert "none (no validation split)" in data.describe(ds, None)


def test_too_few_training_images_validate_on_test_and_say_so(tmp_path):
    ds = _train_test_tree(tmp_path, train=2, test=1)
    assert data.choose_validation(ds) == (ds, "test")  # 10% of 2 images is none
    assert "the same images validate and evaluate" in data.describe(ds, "test")
    with pytest.raises(ValueError, match="gives no image"):
        data.choose_validation(ds, "holdout")
    only_train = data.load(jpeg_tree(tmp_path / "flat", {"a": 2, "b": 2}))
    assert data.choose_validation(only_train) == (only_train, None)
