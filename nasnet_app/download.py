"""Downloads into a local cache: progress bar, hash check, atomic rename, offline reuse.

Files go to `cache_dir()/<subdir>/<file name>`. A transfer is written to
`<file>.part` and renamed to its final name only once it is complete and its
hash matches, so a reader never sees a partial file under the final name. An
interrupted transfer keeps its `.part` file and the next call resumes it (HTTP
range request) when the server allows it.

Sources that publish no hash (the TF-Slim archives) get their SHA-256 recorded
in `<file>.sha256` on first download; later calls check the cached file against
that record.

Example:

>>> from nasnet_app import download
>>> path = download.fetch("https://example.org/w.h5", md5="...")  # doctest: +SKIP
"""

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request

from nasnet_app.io_utils import atomic_write_text

HOME_VARIABLE = "NASNET_APP_HOME"
CHUNK_BYTES = 1 << 20
HASH_ALGORITHMS = ("md5", "sha256")


class DownloadError(OSError):
    """A file could not be fetched (no network, server error, interrupted transfer)."""


class HashMismatchError(ValueError):
    """A downloaded or cached file does not have the expected hash."""


def cache_dir():
    """The cache root: `$NASNET_APP_HOME`, by default `~/.keras/nasnet_app`."""
    home = os.environ.get(HOME_VARIABLE)
    if home:
        return os.path.abspath(os.path.expanduser(home))
    return os.path.join(os.path.expanduser("~"), ".keras", "nasnet_app")


def file_hash(path, algorithm="sha256"):
    """Hex digest of a file, read in chunks.

    Args:
        path: file to hash.
        algorithm: `"sha256"` or `"md5"`.
    """
    if algorithm not in HASH_ALGORITHMS:
        raise ValueError(f"`algorithm` must be one of {HASH_ALGORITHMS}. Received: {algorithm!r}")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected_hashes(md5, sha256):
    expected = {}
    for name, value in (("md5", md5), ("sha256", sha256)):
        if value is None:
            continue
        value = str(value).lower()
        width = 32 if name == "md5" else 64
        if len(value) != width or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(
                f"`{name}` must be {width} hexadecimal digits. Received: {name}={value!r}"
            )
        expected[name] = value
    return expected


def _mismatches(path, expected):
    """The (algorithm, expected, actual) triples that do not match."""
    wrong = []
    for algorithm, value in expected.items():
        actual = file_hash(path, algorithm)
        if actual != value:
            wrong.append((algorithm, value, actual))
    return wrong


def _record_path(path):
    return path + ".sha256"


def _recorded_sha256(path):
    record = _record_path(path)
    if not os.path.exists(record):
        return None
    with open(record, encoding="utf-8") as handle:
        fields = handle.read().split()
    return fields[0] if fields else None


def _record_sha256(path):
    digest = file_hash(path, "sha256")
    atomic_write_text(_record_path(path), f"{digest}  {os.path.basename(path)}\n")
    return digest


def cached_path(file_name, subdir="downloads"):
    """Where `fetch` keeps (or expects, for a copy put there by hand) `file_name`."""
    return os.path.join(cache_dir(), subdir, file_name)


def _cached_ok(path, expected):
    """True when the cached file exists and matches its published or recorded hash."""
    if not os.path.exists(path):
        return False
    if not expected:
        recorded = _recorded_sha256(path)
        if recorded is None:
            digest = _record_sha256(path)
            print(f"No published hash for {path}; recorded SHA-256 {digest}.", file=sys.stderr)
            return True
        expected = {"sha256": recorded}
    wrong = _mismatches(path, expected)
    if wrong:
        algorithm, value, actual = wrong[0]
        print(
            f"Cached file {path} has {algorithm} {actual}, expected {value}; fetching it again.",
            file=sys.stderr,
        )
        return False
    return True


def fetch(
    url,
    file_name=None,
    md5=None,
    sha256=None,
    subdir="downloads",
    progress=True,
    timeout=30,
):
    """Returns a local path to the file at `url`, downloading it only when needed.

    A cached file whose hash matches is reused without touching the network.

    Args:
        url: `http(s)://` or `file://` address.
        file_name: name in the cache; by default the last part of the URL.
        md5: expected MD5 (hex), if published.
        sha256: expected SHA-256 (hex), if published. With neither, the SHA-256
            is recorded on first download and checked afterwards.
        subdir: folder under `cache_dir()`.
        progress: show a progress bar.
        timeout: socket timeout in seconds.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: no network and no cached copy, a server error, or an
            interrupted transfer (its `.part` file is kept for a resume).
        HashMismatchError: the downloaded file has the wrong hash (it is deleted).

    Example:

    >>> fetch("https://storage.googleapis.com/x/NASNet-mobile.h5", md5="...")  # doctest: +SKIP
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"`url` must be an http(s):// or file:// address. Received: url={url!r}")
    file_name = file_name or url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    expected = _expected_hashes(md5, sha256)
    path = cached_path(file_name, subdir)
    if _cached_ok(path, expected):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = path + ".part"
    _transfer(url, part, file_name, path, progress, timeout)
    wrong = _mismatches(part, expected)
    if wrong:
        os.remove(part)
        algorithm, value, actual = wrong[0]
        raise HashMismatchError(
            f"Downloaded {file_name} from {url} has {algorithm} {actual}, expected {value}. "
            "The file was deleted; the source changed or the transfer was corrupted."
        )
    with open(part, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(part, path)
    if not expected:
        digest = _record_sha256(path)
        print(f"{file_name}: no published hash; recorded SHA-256 {digest}.", file=sys.stderr)
    return path


def _offline_error(url, file_name, path, reason):
    return DownloadError(
        f"Cannot download {file_name} from {url} ({reason}). Without network access, "
        f"download {url} by hand and put the file at {path} "
        f"(or point ${HOME_VARIABLE} at the folder holding downloads/{file_name})."
    )


def _open(url, start, timeout):
    request = urllib.request.Request(url, headers={"User-Agent": "nasnet-app"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _transfer(url, part, file_name, path, progress, timeout):
    """Streams `url` into `part`, resuming an earlier partial transfer if possible."""
    start = os.path.getsize(part) if os.path.exists(part) else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # stale .part longer than the file: start over
            os.remove(part)
            return _transfer(url, part, file_name, path, progress, timeout)
        raise DownloadError(f"Cannot download {file_name} from {url}: HTTP {error.code}.") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise _offline_error(url, file_name, path, reason) from None
    with response:
        resumed = start and getattr(response, "status", 200) == 206
        start = start if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        received = _stream(response, part, start, total, progress)
    if total is not None and received < total:
        raise DownloadError(
            f"Download of {file_name} from {url} was interrupted after {received} of "
            f"{total} bytes. The partial data is kept in {part}; call again to resume."
        )
    return received


def _stream(response, part, start, total, progress):
    bar = ProgressBar(total) if progress else None
    received = start
    with open(part, "ab" if start else "wb") as handle:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException, ValueError):
                break  # connection dropped: the caller compares sizes
            if not chunk:
                break
            handle.write(chunk)
            received += len(chunk)
            if bar is not None:
                bar.update(received)
    if bar is not None:
        bar.close(received)
    return received


class ProgressBar:
    """A one-line byte counter on stderr (stdout stays clean for `--json` output)."""

    def __init__(self, total, stream=None, interval=0.2):
        self.total = total
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = 0.0

    def _line(self, done):
        mib = done / 2**20
        if not self.total:
            return f"\r{mib:8.1f} MiB"
        fraction = min(done / self.total, 1.0)
        filled = int(30 * fraction)
        bar = "=" * filled + "." * (30 - filled)
        return f"\r[{bar}] {100 * fraction:5.1f}% {mib:.1f}/{self.total / 2**20:.1f} MiB"

    def update(self, done):
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.stream.write(self._line(done))
            self.stream.flush()

    def close(self, done):
        self.stream.write(self._line(done) + "\n")
        self.stream.flush()
