"""`nasnet-app` itself: start-up without TensorFlow, --version, --debug, one-line usage errors."""

import os
import subprocess
import sys

import pytest

from nasnet_app.cli import main


def nasnet_app(*argv, env=None, timeout=300):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "nasnet_app.cli", *argv],
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_does_not_import_tensorflow():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nasnet_app.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "search" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not {"tensorflow", "keras", "matplotlib"} & imported
    # Cumulative microseconds of the CLI package import, the whole start-up on --help.
    cli = [line for line in result.stderr.splitlines() if line.endswith("| nasnet_app.cli")]
    assert int(cli[0].split("|")[1]) < 1_000_000


def test_version(capsys):
    from nasnet_app import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nasnet-app {__version__}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope"], "invalid choice: 'nope'"),
        (["classify", "x.png"], "one of the arguments --preset --model is required"),
        (["classify", "x.png", "--model", "m.keras", "--top", "0"], "--top: must be a positive"),
        (["search", "--out", "r", "--trials", "x"], "--trials: must be an integer"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "missing.json")
    out = str(tmp_path / "x.png")
    assert main(["draw", missing, "--out", out]) == 1
    assert "Traceback" not in capsys.readouterr().err
    from nasnet_app.cli._common import CommandFailed

    with pytest.raises(CommandFailed, match="missing.json"):
        main(["--debug", "draw", missing, "--out", out])
    with pytest.raises(CommandFailed):
        main(["draw", missing, "--out", out, "--debug"])


@pytest.mark.slow
def test_tensorflow_start_up_lines_are_silenced(tmp_path):
    result = nasnet_app("zoo", "list")
    assert result.returncode == 0, result.stderr
    assert "nasnet_a_mobile_imagenet" in result.stdout
    for noise in ("absl::InitializeLog", "cudart_stub", "cuInit", "oneDNN custom operations"):
        assert noise not in result.stderr, result.stderr


@pytest.mark.parametrize("first", ["keras", "tensorflow"])
def test_import_nasnet_app_is_lazy_and_registers_with_keras(first):
    code = (
        "import sys, nasnet_app\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        f"import {first}\n"
        "import keras\n"
        "print(keras.saving.get_registered_object('nasnet_app>NASNet').__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "NASNet"
