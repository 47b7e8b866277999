"""Safe extraction of `.tar(.gz)` archives such as the official TF-Slim checkpoints.

Every member is checked before anything is written: absolute paths, members
that would land outside the target folder (`..`), links and special files are
refused, and the archive is not extracted at all. Members are written by this
module (never by `tarfile.extract`), into a temporary folder that is renamed to
the target only once everything is out, so an interrupted or refused
extraction leaves nothing under the final name.

Example:

>>> from nasnet_app.zoo.archive import extract_archive
>>> folder = extract_archive("nasnet-a_mobile_04_10_2017.tar.gz", "/tmp/x")  # doctest: +SKIP
"""

import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib

COPY_CHUNK = 1 << 20


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder, or is a link."""


def _member_problem(member):
    name = member.name
    if member.issym() or member.islnk():
        return f"is a link (to {member.linkname!r})"
    if not (member.isfile() or member.isdir()):
        return "is not a regular file or folder"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    normalized = posixpath.normpath(name.replace("\\", "/"))
    if normalized == ".." or normalized.startswith("../"):
        return "would land outside the target folder"
    return None


def check_members(members):
    """Raises `UnsafeArchiveError` naming the first member that is not safe to extract."""
    for member in members:
        problem = _member_problem(member)
        if problem:
            raise UnsafeArchiveError(
                f"Refusing to extract the archive: member {member.name!r} {problem}. "
                "Nothing was extracted."
            )


def _open(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Archive not found: {path}")
    try:
        archive = tarfile.open(path, "r:*")
        members = archive.getmembers()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ValueError(
            f"{path} is not a readable .tar/.tar.gz archive (truncated or corrupt): {error}"
        ) from None
    return archive, members


def _write_members(archive, members, folder, path):
    for member in members:
        destination = os.path.join(folder, posixpath.normpath(member.name))
        if member.isdir():
            os.makedirs(destination, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        try:
            source = archive.extractfile(member)
            with source, open(destination, "wb") as target:
                shutil.copyfileobj(source, target, COPY_CHUNK)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise ValueError(
                f"{path} is truncated or corrupt: cannot read member {member.name!r} ({error})"
            ) from None


def extract_archive(path, target):
    """Extracts a `.tar`/`.tar.gz` archive into the folder `target` and returns it.

    An existing `target` is reused as it is (a finished earlier extraction).

    Args:
        path: the archive.
        target: folder to create.

    Raises:
        UnsafeArchiveError: a member is a link, special file, absolute path or
            would land outside `target` (nothing is extracted).
        ValueError: the archive is truncated or corrupt (nothing is left at `target`).
    """
    target = os.path.abspath(target)
    if os.path.isdir(target):
        return target
    archive, members = _open(path)
    with archive:
        check_members(members)
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", dir=parent)
        try:
            _write_members(archive, members, staging, path)
            os.replace(staging, target)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging)
    return target
