"""Tests of the scan for unreadable images: one message naming them all, skip_bad_images."""

import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nasnet_app import data
from nasnet_app.classifier import ImageReadError
from tests.data_helpers import jpeg_tree, pattern, save


def _png_bytes(seed):
    out = io.BytesIO()
    Image.fromarray(pattern(32, 32, seed)).save(out, "PNG")
    return out.getvalue()


def _corrupt_files(good_jpeg):
    """Five kinds of bad file, by name."""
    png = _png_bytes(9)
    return {
        "text.jpg": b"this is not a jpeg",
        "empty.png": b"",
        "half.jpg": good_jpeg[: len(good_jpeg) // 2],
        "no_end.jpg": good_jpeg[:-2],
        "no_iend.png": png[:-12],
    }


def test_unreadable_image_is_named(tmp_path):
    root = jpeg_tree(tmp_path, {"a": 1, "b": 1})
    bad = tmp_path / "b" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        data.from_folder(root)


def test_truncated_image_is_named_when_loading_and_check_names_later_damage(tmp_path):
    root = jpeg_tree(tmp_path, {"a": 1, "b": 2})
    good = (tmp_path / "b" / "000.jpg").read_bytes()
    (tmp_path / "b" / "cut.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        data.from_folder(root)  # the header is intact: the end of the data is checked too
    with pytest.raises(ImageReadError, match="cut.jpg"):
        data.from_folder(root, validate="full")
    os.remove(tmp_path / "b" / "cut.jpg")
    ds = data.from_folder(root)
    damaged = tmp_path / "b" / "001.jpg"  # damaged after loading: the pipeline meets it
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(ds.dataset("train", batch_size=4))
    with pytest.raises(ImageReadError, match="001.jpg"):
        ds.check_images()
    assert [b.name for b in ds.scan()] == [str(damaged)]


def test_folder_with_several_bad_files_names_them_all_in_one_message(tmp_path):
    root = jpeg_tree(tmp_path, {"train/a": 3, "train/b": 3, "test/a": 1, "test/b": 1})
    good = (tmp_path / "train" / "a" / "000.jpg").read_bytes()
    bad = _corrupt_files(good)
    for index, (name, content) in enumerate(bad.items()):
        (tmp_path / ("train" if index % 2 else "test") / "ab"[index % 2] / name).write_bytes(
            content
        )
    with pytest.raises(data.BadImagesError) as caught:
        data.load(root)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"5 images in `{root}` cannot be read: ")
    for name in bad:
        assert name in message
    assert "--skip-bad-images" in message
    assert sorted(os.path.basename(b.name) for b in caught.value.bad_files) == sorted(bad)
    assert caught.value.list_file is None  # all five are in the message


def test_archive_with_many_bad_files_lists_the_rest_in_a_file(tmp_path):
    root = jpeg_tree(tmp_path / "tree", {"train/a": 2, "train/b": 2})
    archive = tmp_path / "tree.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname="pets")
        for i in range(13):
            content = b"junk %d" % i
            member = tarfile.TarInfo(f"pets/train/b/bad{i:02d}.jpg")
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    list_file = tmp_path / "run" / "bad_images.txt"
    with pytest.raises(data.BadImagesError) as caught:
        data.load(archive, bad_images_file=list_file)
    message = str(caught.value)
    assert message.startswith(
        f"13 images in `{archive}` cannot be read: {archive}:pets/train/b/bad00"
    )
    assert "bad09.jpg" in message and "bad10.jpg" not in message
    assert f"and 3 more (full list: {list_file})" in message
    lines = list_file.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        f"{archive}:pets/train/b/bad{i:02d}.jpg" for i in range(13)
    ]
    with pytest.raises(data.BadImagesError) as again:  # no file given: a temporary one
        data.load(archive)
    assert again.value.list_file and os.path.isfile(again.value.list_file)
    os.remove(again.value.list_file)


def test_skip_bad_images_leaves_them_out_lists_and_counts_them(tmp_path):
    root = jpeg_tree(tmp_path / "data", {"a": 4, "b": 4})
    good = (tmp_path / "data" / "a" / "000.jpg").read_bytes()
    for name, content in _corrupt_files(good).items():
        (tmp_path / "data" / "b" / name).write_bytes(content)
    list_file = tmp_path / "run" / "bad_images.txt"
    ds = data.load(root, skip_bad_images=True, bad_images_file=list_file, val_fraction=0.25)
    assert ds.info.counts == {"train": 6, "val": 2}
    assert ds.info.skipped_images == 5 and ds.info.to_dict()["skipped_images"] == 5
    names = sorted(os.path.basename(b.name) for b in ds.bad_files)
    assert names == sorted(_corrupt_files(good))
    assert len(list_file.read_text().splitlines()) == 5
    assert "skipped 5 unreadable images" in data.describe(ds, "val")
    images, labels = next(iter(ds.dataset("train", batch_size=6)))  # every image decodes
    assert images.shape == (6, 32, 32, 3) and sorted(labels.numpy()) == [0, 0, 0, 1, 1, 1]
    assert ds.subset(2).bad_files == ds.bad_files == ds.with_image_size(24).bad_files
    assert data.scan_images(root) == ds.bad_files
    assert data.scan_images(ds) == ()


def test_formats_the_scan_must_not_reject(tmp_path):
    base = Image.fromarray(pattern(32, 32, 3))
    jpeg = save(str(tmp_path / "a" / "x.jpg"), base, "JPEG")
    with open(jpeg, "ab") as handle:
        handle.write(b"\x00" * 7)  # bytes after the end marker are harmless
    png = save(str(tmp_path / "a" / "y.png"), base, "PNG")
    with open(png, "ab") as handle:
        handle.write(b"trailer")
    save(str(tmp_path / "b" / "z.gif"), base.convert("P"), "GIF")
    save(str(tmp_path / "b" / "w.webp"), base, "WEBP")
    save(str(tmp_path / "b" / "v.bmp"), base, "BMP")
    ds = data.from_folder(tmp_path)
    assert ds.info.counts == {"train": 5}
    assert data.scan_images(ds, full=True) == ()
    images = next(iter(ds.dataset("train", batch_size=5, value_range=None)))[0].numpy()
    assert np.isfinite(images).all()
