"""The detector's official archive: download from a local HTTP server, cache, offline rules."""

import dataclasses
import functools
import http.server
import os
import threading

import numpy as np
import pytest

from nasnet_app import download
from nasnet_app.zoo import detection
from tests.test_detection_reference import REFERENCE_CONFIG, make_zoo_archive, reference_path


@pytest.fixture
def served(tmp_path):
    """`(preset, server URL)`: the zoo's archive layout served from 127.0.0.1."""
    folder = tmp_path / "www"
    folder.mkdir()
    make_zoo_archive(folder / detection.ARCHIVE)
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{detection.ARCHIVE}"
    preset = dataclasses.replace(detection.FASTER_RCNN_NASNET_A_COCO, url=url)
    yield preset, httpd
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(download.HOME_VARIABLE, str(tmp_path / "home"))
    return tmp_path / "home"


def test_archive_is_downloaded_once_then_reused_offline(served, home, capsys):
    preset, httpd = served
    path = detection.fetch_detection_weights(preset, progress=False)
    assert path == os.path.join(str(home), "downloads", detection.ARCHIVE)
    assert "recorded SHA-256" in capsys.readouterr().err  # the zoo publishes no hash
    httpd.shutdown()
    httpd.server_close()
    assert detection.fetch_detection_weights(preset, progress=False) == path
    tensors = detection.slim.read_slim_checkpoint(path)
    assert "SecondStageBoxPredictor/ClassPredictor/weights" in tensors


def test_offline_without_a_cached_copy_names_url_and_place(served):
    preset, httpd = served
    httpd.shutdown()
    httpd.server_close()
    with pytest.raises(download.DownloadError) as error:
        detection.fetch_detection_weights(preset, progress=False)
    message = str(error.value)
    assert preset.url in message and os.path.join("downloads", detection.ARCHIVE) in message


def test_corrupted_cached_copy_is_refused_by_its_recorded_hash(served, home):
    preset, httpd = served
    path = detection.fetch_detection_weights(preset, progress=False)
    httpd.shutdown()
    httpd.server_close()
    with open(path, "r+b") as handle:
        handle.write(b"garbage")
    with pytest.raises(download.DownloadError):
        detection.fetch_detection_weights(preset, progress=False)


@pytest.mark.slow
def test_pretrained_weights_load_through_the_download(served):
    preset, _ = served
    model = detection.load_detector(preset, weights="pretrained", config=REFERENCE_CONFIG)
    tensors = detection.slim.read_slim_checkpoint(
        reference_path("faster_rcnn_nas_f8", "ckpt", "model.ckpt")
    )
    np.testing.assert_array_equal(
        model.weight_map()["box_head/class/kernel"].numpy(),
        tensors["SecondStageBoxPredictor/ClassPredictor/weights"],
    )
