"""`nasnet-app demo` end to end, with small budgets (the real steps, on the bundled data)."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_every_step(tmp_path):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--search-trials", "5", "--weight-sharing-seconds", "30"]
    result = subprocess.run(
        [sys.executable, "-m", "nasnet_app.cli", *argv, "--finetune-epochs", "1"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Demo finished" in result.stdout and "Traceback" not in result.stderr
    report = json.loads((out / "evaluation" / "report.json").read_text())
    assert report["examples"] == 1000 and report["top1"] > 0.6  # the shipped checkpoint
    for path in (
        "nasnet_a_cells.png",
        "finetune/model.keras",
        "search_nasbench201/trials.jsonl",
        "search_weight_sharing/weight_sharing_cell.png",
    ):
        assert os.path.exists(out / path), path
    assert len(os.listdir(out / "examples")) == 6
