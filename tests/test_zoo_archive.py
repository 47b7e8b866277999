"""Safe archive extraction: refused members, truncated and corrupt archives."""

import io
import os
import tarfile

import pytest

from nasnet_app.zoo.archive import UnsafeArchiveError, extract_archive


def _add_file(archive, name, data=b"data"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _make(path, build):
    with tarfile.open(path, "w:gz") as archive:
        build(archive)
    return str(path)


def test_regular_archive_is_extracted(tmp_path):
    def build(archive):
        _add_file(archive, "model.ckpt.index", b"index")
        _add_file(archive, "sub/model.ckpt.data-00000-of-00001", b"x" * 5000)

    path = _make(tmp_path / "ok.tar.gz", build)
    folder = extract_archive(path, tmp_path / "out")
    assert open(os.path.join(folder, "model.ckpt.index"), "rb").read() == b"index"
    assert os.path.getsize(os.path.join(folder, "sub", "model.ckpt.data-00000-of-00001")) == 5000
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out.")] == []


@pytest.mark.parametrize(
    "member, problem",
    [
        ("../escape.txt", "outside the target"),
        ("a/../../escape.txt", "outside the target"),
        ("/etc/escape.txt", "absolute path"),
    ],
)
def test_members_outside_target_are_refused(tmp_path, member, problem):
    def build(archive):
        _add_file(archive, "model.ckpt.index")
        _add_file(archive, member)

    path = _make(tmp_path / "bad.tar.gz", build)
    with pytest.raises(UnsafeArchiveError, match=problem) as info:
        extract_archive(path, tmp_path / "out" / "x")
    assert repr(member) in str(info.value)
    assert not os.path.exists(tmp_path / "out" / "x")
    assert not os.path.exists(tmp_path / "escape.txt")
    assert not os.path.exists(tmp_path / "out" / "escape.txt")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_links_are_refused(tmp_path, kind):
    def build(archive):
        info = tarfile.TarInfo("model.ckpt.index")
        info.type = kind
        info.linkname = "/etc/passwd"
        archive.addfile(info)

    path = _make(tmp_path / "link.tar.gz", build)
    with pytest.raises(UnsafeArchiveError, match="is a link"):
        extract_archive(path, tmp_path / "out")
    assert not os.path.exists(tmp_path / "out")


def test_special_files_are_refused(tmp_path):
    def build(archive):
        info = tarfile.TarInfo("fifo")
        info.type = tarfile.FIFOTYPE
        archive.addfile(info)

    path = _make(tmp_path / "fifo.tar.gz", build)
    with pytest.raises(UnsafeArchiveError, match="not a regular file"):
        extract_archive(path, tmp_path / "out")


def test_truncated_archive_leaves_nothing(tmp_path):
    def build(archive):
        _add_file(archive, "big.bin", os.urandom(200_000))

    path = _make(tmp_path / "cut.tar.gz", build)
    data = open(path, "rb").read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        extract_archive(path, tmp_path / "out")
    assert "cut.tar.gz" in str(info.value)
    assert not os.path.exists(tmp_path / "out")
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out.")] == []


def test_garbage_file_is_not_an_archive(tmp_path):
    path = tmp_path / "junk.tar.gz"
    path.write_bytes(b"this is not a tar file at all" * 10)
    with pytest.raises(ValueError, match="junk.tar.gz is not a readable"):
        extract_archive(str(path), tmp_path / "out")


def test_missing_archive_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.tar.gz"):
        extract_archive(str(tmp_path / "nowhere.tar.gz"), tmp_path / "out")
