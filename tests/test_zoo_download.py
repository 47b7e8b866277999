"""Downloads against a local HTTP server on 127.0.0.1 (never the real internet)."""

import hashlib
import http.server
import io
import os
import socket
import threading

import pytest

from nasnet_app import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """`/file.bin`: the payload (honours Range); `/cut.bin`: stops half way; else 404."""

    requests_seen = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.requests_seen.append((self.path, self.headers.get("Range")))
        if self.path == "/file.bin":
            start = 0
            byte_range = self.headers.get("Range")
            if byte_range:
                start = int(byte_range.split("=")[1].rstrip("-"))
                self.send_response(206)
            else:
                self.send_response(200)
            body = PAYLOAD[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/cut.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(download.HOME_VARIABLE, str(tmp_path / "home"))
    Handler.requests_seen.clear()
    return tmp_path / "home"


def _unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cache_dir_follows_environment(home, monkeypatch):
    assert download.cache_dir() == str(home)
    monkeypatch.delenv(download.HOME_VARIABLE)
    assert download.cache_dir().endswith(os.path.join(".keras", "nasnet_app"))


def test_full_download_is_verified_and_reused_offline(server, home):
    path = download.fetch(f"{server}/file.bin", md5=MD5, sha256=SHA256, progress=False)
    assert path == str(home / "downloads" / "file.bin")
    assert open(path, "rb").read() == PAYLOAD
    assert not os.path.exists(path + ".part")
    # A second call with the server unreachable reuses the verified file.
    port = _unused_port()
    again = download.fetch(f"http://127.0.0.1:{port}/file.bin", md5=MD5, progress=False)
    assert again == path
    assert len(Handler.requests_seen) == 1


def test_progress_bar_goes_to_stderr(server, capsys):
    download.fetch(f"{server}/file.bin", md5=MD5, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "100.0%" in captured.err


def test_hash_mismatch_deletes_file_and_names_it(server, home):
    with pytest.raises(download.HashMismatchError, match="file.bin.*md5"):
        download.fetch(f"{server}/file.bin", md5="0" * 32, progress=False)
    assert os.listdir(home / "downloads") == []


def test_corrupted_cache_is_fetched_again(server, home):
    path = download.fetch(f"{server}/file.bin", sha256=SHA256, progress=False)
    with open(path, "r+b") as handle:
        handle.write(b"garbage")
    download.fetch(f"{server}/file.bin", sha256=SHA256, progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert len(Handler.requests_seen) == 2


def test_interrupted_transfer_keeps_no_final_file(server, home):
    with pytest.raises(download.DownloadError, match="interrupted after 524288 of 1048576"):
        download.fetch(f"{server}/cut.bin", md5=MD5, progress=False)
    assert not os.path.exists(home / "downloads" / "cut.bin")
    assert os.path.getsize(home / "downloads" / "cut.bin.part") == len(PAYLOAD) // 2


def test_partial_file_is_resumed_with_a_range_request(server, home):
    folder = home / "downloads"
    folder.mkdir(parents=True)
    (folder / "file.bin.part").write_bytes(PAYLOAD[:1000])
    path = download.fetch(f"{server}/file.bin", sha256=SHA256, progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert Handler.requests_seen == [("/file.bin", "bytes=1000-")]


def test_offline_without_cache_names_url_file_and_place(home):
    url = f"http://127.0.0.1:{_unused_port()}/NASNet-mobile.h5"
    with pytest.raises(download.DownloadError) as info:
        download.fetch(url, md5=MD5, progress=False, timeout=5)
    message = str(info.value)
    assert url in message
    assert str(home / "downloads" / "NASNet-mobile.h5") in message
    assert "by hand" in message


def test_file_put_there_by_hand_is_used(home):
    folder = home / "downloads"
    folder.mkdir(parents=True)
    (folder / "NASNet-mobile.h5").write_bytes(PAYLOAD)
    url = f"http://127.0.0.1:{_unused_port()}/NASNet-mobile.h5"
    assert download.fetch(url, md5=MD5, progress=False).endswith("NASNet-mobile.h5")


def test_server_error_is_reported(server):
    with pytest.raises(download.DownloadError, match="HTTP 404"):
        download.fetch(f"{server}/missing.bin", md5=MD5, progress=False)


def test_unpublished_hash_is_recorded_then_checked(server, home, capsys):
    path = download.fetch(f"{server}/file.bin", progress=False)
    assert SHA256 in capsys.readouterr().err
    assert open(path + ".sha256").read().split()[0] == SHA256
    with open(path, "r+b") as handle:
        handle.write(b"garbage")
    download.fetch(f"{server}/file.bin", progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert len(Handler.requests_seen) == 2


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`md5` must be 32 hexadecimal digits"):
        download.fetch("http://127.0.0.1:1/x", md5="abc")
    with pytest.raises(ValueError, match="`url` must be"):
        download.fetch("not a url")


def test_progress_bar_line_format():
    stream = io.StringIO()
    bar = download.ProgressBar(2 * 2**20, stream=stream, interval=0)
    bar.update(2**20)
    bar.close(2 * 2**20)
    assert "50.0%" in stream.getvalue() and "100.0%" in stream.getvalue()
