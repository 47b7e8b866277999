"""Tests of nasnet_app.data.sources: folders, archives, CIFAR batches, TFDS, arrays, RGB conversion."""

import io
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from nasnet_app import data
from tests.data_helpers import REPO, SHARED_CIFAR, jpeg_tree, pattern, save, tar_tree


def _mixed_formats(folder):
    """One file per (format, mode) the loader must convert; returns {path: expected RGB}."""
    base = Image.fromarray(pattern(32, 32, 0))
    palette = base.convert("P")
    cases = {
        "rgb.png": (base, "PNG"),
        "gray.png": (base.convert("L"), "PNG"),
        "rgba.png": (base.convert("RGBA"), "PNG"),
        "palette.png": (palette, "PNG"),
        "palette.bmp": (palette, "BMP"),
        "bilevel.bmp": (base.convert("1"), "BMP"),
        "rgb.gif": (palette, "GIF"),
        "rgb.tiff": (base, "TIFF"),
        "rgb.webp": (base, "WEBP", {"lossless": True}),
    }
    expected = {}
    for name, (image, fmt, *extra) in cases.items():
        path = save(os.path.join(folder, name), image, fmt, **(extra[0] if extra else {}))
        expected[path] = np.asarray(Image.open(path).convert("RGB"))
    return expected


def test_folder_converts_every_format_and_mode_to_rgb(tmp_path):
    expected = _mixed_formats(str(tmp_path / "train" / "a"))
    expected.update(_mixed_formats(str(tmp_path / "train" / "b")))
    ds = data.from_folder(tmp_path)
    split = ds.split("train")
    batch = next(iter(ds.dataset("train", batch_size=64, value_range=None)))[0].numpy()
    for index, name in enumerate(split.names):
        np.testing.assert_array_equal(batch[index], expected[name], err_msg=name)


def test_cmyk_and_grayscale_jpeg_are_rgb(tmp_path):
    base = Image.fromarray(pattern(32, 32, 1))
    save(str(tmp_path / "x" / "cmyk.jpg"), base.convert("CMYK"), "JPEG", quality=95)
    save(str(tmp_path / "y" / "gray.jpg"), base.convert("L"), "JPEG", quality=95)
    ds = data.from_folder(tmp_path)
    images = next(iter(ds.dataset("train", batch_size=2, value_range=None)))[0].numpy()
    for image, name in zip(images, ds.split("train").names, strict=True):
        reference = np.asarray(Image.open(name).convert("RGB"), np.float32)
        assert np.abs(image - reference).mean() < 3.0, name
    gray = images[1]
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


def test_empty_class_folder_is_named(tmp_path):
    root = jpeg_tree(tmp_path, {"a": 2})
    os.makedirs(tmp_path / "b")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=f"`{root}/b` contains no images"):
        data.from_folder(root)


def test_folder_without_class_folders(tmp_path):
    with pytest.raises(ValueError, match="has no class sub-folders"):
        data.from_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing' is neither a folder nor an archive"):
        data.load(tmp_path / "missing")


def test_tar_archive_matches_the_extracted_folder(tmp_path):
    root = jpeg_tree(
        tmp_path / "tree", {"train/cat": 2, "train/dog": 2, "test/cat": 1, "test/dog": 1}
    )
    archive = tar_tree(root, tmp_path / "tree.tar.gz", "cifar-like")
    from_tar, from_folder = data.load(archive), data.load(root)
    assert from_tar.info.counts == from_folder.info.counts == {"train": 4, "test": 2}
    assert from_tar.source_name("test", 0) == f"{archive}:cifar-like/test/cat/000.jpg"
    for split in ("train", "test"):
        a = next(iter(from_tar.dataset(split, batch_size=8)))[0].numpy()
        b = next(iter(from_folder.dataset(split, batch_size=8)))[0].numpy()
        np.testing.assert_array_equal(a, b)


def test_broken_archive_is_named(tmp_path):
    path = tmp_path / "broken.tar.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="broken.tar.gz"):
        data.load(path)


def test_demo_subset_is_real_cifar10():
    demo = data.demo_cifar10()
    assert demo.class_names == data.CIFAR10_CLASSES
    assert demo.info.counts == {"train": 2000, "test": 1000}
    assert set(demo.info.class_counts["train"]) == {200}
    assert set(demo.info.class_counts["test"]) == {100}
    assert os.path.getsize(data.demo_cifar10_path()) < 6_000_000
    if not os.path.exists(SHARED_CIFAR):
        return
    names = [demo.source_name("test", i).split(":", 1)[1] for i in (0, 999)]
    with tarfile.open(SHARED_CIFAR) as full:
        for index, name in zip((0, 999), names, strict=True):
            assert full.extractfile(name).read() == demo.split("test").inline[index]


def test_subset_tool_is_deterministic(tmp_path):
    source = jpeg_tree(tmp_path / "full", {f"{s}/{c}": 4 for s in ("train", "test") for c in "xyz"})
    archive = tar_tree(source, tmp_path / "full.tar.gz", ".")
    outs = [tmp_path / "one.tar", tmp_path / "two.tar"]
    for out in outs:
        command = [sys.executable, os.path.join(REPO, "tools", "make_cifar10_subset.py")]
        command += ["--source", archive, "--out", str(out), "--train", "3", "--test", "2"]
        subprocess.run(command, check=True, capture_output=True)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    subset = data.load(outs[0])
    assert subset.info.counts == {"train": 9, "test": 6}
    assert data.load(archive).info.counts == {"train": 12, "test": 12}  # members named ./...


def _cifar_batch(path, images, labels):
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as handle:
        pickle.dump({b"data": flat, b"labels": list(labels)}, handle)


def _cifar_folder(folder):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 3)
        _cifar_batch(os.path.join(folder, name), images, labels)
        batches[name] = (images, labels)
    with open(os.path.join(folder, "batches.meta"), "wb") as handle:
        pickle.dump({b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]}, handle)
    return batches


def test_cifar_python_batches_folder_and_archive(tmp_path):
    folder = str(tmp_path / "cifar-10-batches-py")
    batches = _cifar_folder(folder)
    ds = data.load(folder)
    assert ds.info.counts == {"train": 15, "test": 3}
    assert ds.class_names == data.CIFAR10_CLASSES
    first = ds.images("train", [0])[0]
    np.testing.assert_array_equal(first, batches["data_batch_1"][0][0])
    assert ds.labels("test").tolist() == batches["test_batch"][1].tolist()
    archive = tar_tree(folder, tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    from_archive = data.load(archive)
    np.testing.assert_array_equal(from_archive.images("test", [2]), ds.images("test", [2]))
    assert data.load(str(tmp_path)).info.counts == ds.info.counts  # the parent folder works too


def test_cifar_batches_missing_and_malformed(tmp_path):
    folder = str(tmp_path / "batches")
    _cifar_folder(folder)
    os.remove(os.path.join(folder, "data_batch_3"))
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        data.from_cifar_batches(folder)
    with open(os.path.join(folder, "data_batch_3"), "wb") as handle:
        pickle.dump({b"pixels": []}, handle)
    with pytest.raises(ValueError, match="data_batch_3.*'data' and 'labels'"):
        data.from_cifar_batches(folder)


def test_arrays_grayscale_one_hot_and_errors():
    images = np.arange(4 * 32 * 32, dtype=np.float64).reshape(4, 32, 32) % 256
    labels = np.eye(2)[[0, 1, 1, 0]]
    ds = data.from_arrays(train=(images, labels), class_names=["even", "odd"])
    assert ds.labels("train").tolist() == [0, 1, 1, 0]
    image = ds.images("train", [1])[0]
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 0], images[1].astype(np.uint8))
    with pytest.raises(ValueError, match="images"):
        data.from_arrays(train=(np.zeros((2, 32)), [0, 1]))
    with pytest.raises(ValueError, match="labels"):
        data.from_arrays(train=(np.zeros((2, 32, 32)), [0, 5]), class_names=["a", "b"])


class _TinyShapes:
    """A two-class TFDS builder, prepared offline in a temporary data_dir."""

    @staticmethod
    def prepare(data_dir):
        tfds = pytest.importorskip("tensorflow_datasets")

        class NasnetAppTinyShapes(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                features = tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(36, 36, 1)),
                        "label": tfds.features.ClassLabel(names=["dark", "light"]),
                    }
                )
                return tfds.core.DatasetInfo(builder=self, features=features)

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples(8), "test": self._generate_examples(4)}

            def _generate_examples(self, count):
                for i in range(count):
                    value = 40 if i % 2 == 0 else 220
                    yield i, {"image": np.full((36, 36, 1), value, np.uint8), "label": i % 2}

        NasnetAppTinyShapes(data_dir=data_dir).download_and_prepare()
        return "nasnet_app_tiny_shapes"


def test_tfds_dataset_prepared_offline(tmp_path):
    name = _TinyShapes.prepare(str(tmp_path))
    ds = data.load(f"tfds:{name}@{tmp_path}", image_size=(32, 32))
    assert ds.class_names == ("dark", "light")
    assert ds.info.counts == {"train": 8, "test": 4}
    x, y = next(iter(ds.dataset("train", batch_size=8, training=True, value_range=None)))
    assert x.shape == (8, 32, 32, 3)
    centre = x.numpy()[:, 16, 16]
    expected = np.where(y.numpy() == 0, 40, 220)
    np.testing.assert_allclose(centre, np.repeat(expected[:, None], 3, 1), atol=1.0)
    with pytest.raises(FileNotFoundError, match="not prepared"):
        data.from_tfds(name, data_dir=str(tmp_path / "elsewhere"))


def test_load_rejects_unknown_sources():
    with pytest.raises(ValueError, match="`data` must be"):
        data.load(42)
    with pytest.raises(ValueError, match="augment"):
        data.resolve_augment("yes", True)
    with pytest.raises(ValueError, match="cutout"):
        data.Augment(cutout=-1)


def test_png_bytes_are_kept_for_formats_tensorflow_decodes(tmp_path):
    path = save(str(tmp_path / "a" / "x.png"), Image.fromarray(pattern(32, 32, 5)), "PNG")
    save(str(tmp_path / "b" / "y.bmp"), Image.fromarray(pattern(32, 32, 6)).convert("P"), "BMP")
    split = data.from_folder(tmp_path).split("train")
    assert split.inline[0] == b""  # read from disk in the pipeline
    converted = Image.open(io.BytesIO(split.inline[1]))
    assert converted.format == "PNG" and converted.mode == "RGB"
    assert split.names[0] == path
