"""Atomic file writes: a temporary file in the same folder, fsync, then rename."""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path next to `path`; renames it over `path` on success.

    On any error the temporary file is removed and `path` is left untouched, so
    a reader never sees a partial file under the final name.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=f".tmp{suffix}", dir=folder
    )
    os.close(handle)
    try:
        yield tmp
        with open(tmp, "rb+") as synced:
            os.fsync(synced.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, data, indent=2):
    atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=False) + "\n")


def append_line(path, line):
    """Appends one line to a log in a single write, then fsyncs.

    A process killed during the write can leave at most a torn last line;
    readers of such logs (see `read_jsonl`) drop a last line that is incomplete.
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path):
    """Reads a JSON-lines log; a torn (unterminated) last line is ignored."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number} is not valid JSON ({error})") from None
    del tail  # an unterminated last line was cut by a kill mid-write
    return records
