"""Tests of `nasnet-app search` (nasnet_app/cli/search.py)."""

import json
import os
import subprocess
import sys

import pytest

from nasnet_app.cli import main
from nasnet_app.io_utils import read_jsonl
from tests import helpers
from tests.reference_data import requires, shared_data_path

TABLE = shared_data_path("nasbench201/cifar10.csv")
needs_table = requires("nasbench201/cifar10.csv")


def table_search(out, *extra):
    return main(
        [
            "search",
            "--space",
            "nasbench201",
            "--table",
            TABLE,
            "--out",
            str(out),
            "--verbose",
            "0",
            *extra,
        ]
    )


@needs_table
def test_table_search_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    assert table_search(out, "--trials", "12", "--algorithm", "evolution", "--seed", "0") == 0
    records = read_jsonl(out / "trials.jsonl")
    assert [r["trial_id"] for r in records] == list(range(12))
    assert all(r["genotype"].startswith("|") for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_reward"] == max(r["reward"] for r in records)
    for name in ("progress.png", "best_cell.json", "best_cell.png", "cli_args.json"):
        assert (out / name).exists(), name


@needs_table
def test_existing_run_is_refused_and_resume_continues_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert table_search(out, "--trials", "6", "--algorithm", "reinforce", "--batch-size", "3") == 0
    before = (out / "trials.jsonl").read_bytes()
    assert table_search(out, "--trials", "6", "--algorithm", "reinforce") == 2
    assert "already holds a search run" in capsys.readouterr().err
    assert (out / "trials.jsonl").read_bytes() == before
    resumed = main(["search", "--out", str(out), "--resume", "--trials", "9", "--verbose", "0"])
    assert resumed == 0
    records = read_jsonl(out / "trials.jsonl")
    assert [r["trial_id"] for r in records] == list(range(9))
    assert (out / "trials.jsonl").read_bytes().startswith(before)
    changed = main(["search", "--out", str(out), "--resume", "--space", "nasnet", "--trials", "9"])
    assert changed == 2
    assert "differs from the run's saved setting" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--space", "nasnet", "--table", TABLE, "--trials", "2"], "--table works with"),
        (["--space", "nasbench201", "--data", "demo", "--trials", "2"], "needs --table"),
        (["--space", "nasbench201", "--table", TABLE], "--trials is required"),
        (["--space", "macro", "--trials", "2"], "give one of --data"),
    ],
)
def test_bad_command_lines_are_refused_clearly(tmp_path, capsys, argv, message):
    assert main(["search", "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def image_folder(root, classes=2, per_class=6, size=32):
    return helpers.image_folder(root, classes, per_class, size)


def run_cli(*argv, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "nasnet_app.cli", "search", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_child_training_search_from_an_image_folder(tmp_path):
    data = image_folder(tmp_path / "images")
    out = tmp_path / "run"
    result = run_cli(
        "--space",
        "macro",
        "--layers",
        "1",
        "--data",
        str(data),
        "--trials",
        "2",
        "--algorithm",
        "random",
        "--epochs",
        "1",
        "--child-batch-size",
        "4",
        "--val-fraction",
        "0.25",
        "--out",
        str(out),
        "--seed",
        "3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2/2" in result.stdout and "best" in result.stdout
    records = read_jsonl(out / "trials.jsonl")
    assert [r["status"] for r in records] == ["completed", "completed"], records
    assert all(0.0 <= r["reward"] <= 1.0 for r in records)
    assert json.loads((out / "best_cell.json").read_text())["space"] == "macro"


@needs_table
@pytest.mark.slow
def test_table_search_on_two_local_workers(tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "--space",
        "nasbench201",
        "--table",
        TABLE,
        "--trials",
        "8",
        "--algorithm",
        "random",
        "--workers",
        "2",
        "--threads-per-child",
        "1",
        "--out",
        str(out),
        "--verbose",
        "0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_jsonl(out / "trials.jsonl")
    assert len(records) == 8 and all(r["status"] == "completed" for r in records)
    assert json.loads((out / "run.json").read_text())["executor"]["capacity"] == 2


ARCH_A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("nasnet-app search: error:"), err
    return err


def test_missing_data_fails_before_any_trial(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["search", "--space", "nasnet", "--data", str(tmp_path / "nonexistent"), "--trials", "2"]
    assert main([*argv, "--out", str(out)]) == 1
    assert str(tmp_path / "nonexistent") in one_error_line(capsys)
    assert not out.exists()  # no run folder, no cli_args.json to replay


def test_a_table_that_covers_no_proposal_exits_1_with_the_first_error(tmp_path, capsys):
    table = tmp_path / "one_row.csv"
    table.write_text(f"arch,acc\n{ARCH_A},93.0\n")
    out = tmp_path / "run"
    argv = ["--table", str(table), "--trials", "2", "--algorithm", "random", "--seed", "1"]
    assert table_search(out, *argv) == 1
    err = one_error_line(capsys)
    assert "no trial completed (2 failed)" in err and "first error (trial 0)" in err
    assert [r["status"] for r in read_jsonl(out / "trials.jsonl")] == ["failed", "failed"]


@pytest.mark.parametrize(
    "rows, message",
    [
        (f"arch,acc\n{ARCH_A},93.0\ngarbage,50\n", "Row 3 of"),
        (f"arch,acc\n{ARCH_A.replace('avg_pool_3x3', 'conv_9x9')},50\n", "Row 2 of"),
        (f"arch,acc\n{ARCH_A},n/a\n", "Row 2 of"),
        (f"arch\n{ARCH_A}\n", "no accuracy column"),
    ],
)
def test_table_rows_the_space_cannot_use_are_errors(tmp_path, capsys, rows, message):
    table = tmp_path / "table.csv"
    table.write_text(rows)
    assert table_search(tmp_path / "run", "--table", str(table), "--trials", "2") == 1
    err = one_error_line(capsys)
    assert message in err and str(table) in err
    assert not (tmp_path / "run").exists()


def test_several_accuracy_columns_ask_for_metric(tmp_path, capsys):
    table = tmp_path / "table.csv"
    table.write_text(f"arch,valid,test\n{ARCH_A},91,90\n")
    assert table_search(tmp_path / "run", "--table", str(table), "--trials", "2") == 2
    err = one_error_line(capsys)
    assert "choose one with --metric" in err and "`metric`" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trials", "0"], "--trials: must be a positive integer"),
        (["--trials", "2", "--learning-rate", "-1"], "--learning-rate: must be a positive"),
        (["--trials", "2", "--val-fraction", "1.5"], "--val-fraction: must be in (0, 1)"),
    ],
)
def test_bad_values_are_usage_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--space", "macro", "--data", "demo", "--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_resume_of_a_missing_folder_says_it_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["search", "--out", str(missing), "--resume"]) == 1
    err = one_error_line(capsys)
    assert f"{missing} does not exist" in err and "--space" not in err


def test_ctrl_c_prints_the_resume_command(tmp_path, capsys, monkeypatch):
    from nasnet_app.search.cell_search import CellSearch

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(CellSearch, "search", interrupted)
    table = tmp_path / "table.csv"
    table.write_text(f"arch,acc\n{ARCH_A},93.0\n")
    out = tmp_path / "run"
    assert table_search(out, "--table", str(table), "--trials", "2") == 130
    err = capsys.readouterr().err
    assert f"continue with: nasnet-app search --out {out} --resume" in err


@needs_table
@pytest.mark.slow
def test_sigint_prints_the_resume_command_and_resume_continues(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    argv = ["--space", "nasbench201", "--table", TABLE, "--trials", "15000", "--out", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = helpers.popen_interruptible(
        [sys.executable, "-m", "nasnet_app.cli", "search", *argv, "--verbose", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (out / "trials.jsonl").exists() or (out / "trials.jsonl").stat().st_size == 0:
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)  # a loaded 2-core CI machine needs minutes
    assert process.returncode == 130, err
    assert f"continue with: nasnet-app search --out {out} --resume" in err
    assert "Traceback" not in err
    done = len(read_jsonl(out / "trials.jsonl"))
    resumed = main(["search", "--out", str(out), "--resume", "--trials", str(done + 3)])
    assert resumed == 0
    records = read_jsonl(out / "trials.jsonl")
    assert [r["trial_id"] for r in records] == list(range(done + 3))
