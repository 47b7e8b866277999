"""A search process killed with SIGKILL at random moments resumes into the same search.

Each run is a real `python` process searching the NAS-Bench-201 table; the test
kills it twice at random points (mid-trial, mid-append, mid-checkpoint,
whatever the moment is), resumes it each time, and compares the final log with
an uninterrupted run of the same search.
"""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from nasnet_app.io_utils import read_jsonl
from tests.reference_data import reference_data, shared_data_path

TABLE = shared_data_path("nasbench201/cifar10.csv")
MAX_TRIALS = 40

SCRIPT = """
import sys, time
from nasnet_app.search import algorithms, spaces
from nasnet_app.search.cell_search import CellSearch
from nasnet_app.search.tabular import TabularEvaluator

class SlowTable(TabularEvaluator):
    def evaluate(self, architecture, **kwargs):
        time.sleep(0.02)
        return super().evaluate(architecture, **kwargs)

directory, kind, table, max_trials = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
space = spaces.NASBench201Space()
if kind == "reinforce":
    algorithm = algorithms.Reinforce(space, batch_size=4, units=16, seed=0)
else:
    algorithm = algorithms.RandomSearch(space, seed=0)
CellSearch(space, algorithm, SlowTable(table)).search(
    max_trials=max_trials, batch_size=4, directory=directory, resume=True, seed=7, verbose=0
)
"""


def command(directory, kind):
    return [sys.executable, "-c", SCRIPT, str(directory), kind, TABLE, str(MAX_TRIALS)]


def environment():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def run_to_completion(directory, kind):
    result = subprocess.run(
        command(directory, kind), env=environment(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def count_lines(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def run_and_kill(directory, kind, kill_after_trials, extra_delay):
    """Starts the search and SIGKILLs it once the log has `kill_after_trials` lines."""
    process = subprocess.Popen(
        command(directory, kind),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = os.path.join(directory, "trials.jsonl")
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline:
        if count_lines(log) >= kill_after_trials:
            time.sleep(extra_delay)
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    return process.returncode


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "reinforce"])
def test_sigkill_at_random_moments_then_resume(tmp_path, kind):
    reference_data("nasbench201/cifar10.csv")
    reference = tmp_path / "reference"
    run_to_completion(reference, kind)
    expected = read_jsonl(reference / "trials.jsonl")
    assert len(expected) == MAX_TRIALS

    rng = random.Random(1234 if kind == "random" else 4321)
    run = tmp_path / "run"
    kill_points = sorted(rng.sample(range(0, MAX_TRIALS - 2), 2))
    for kill_after in kill_points:
        returncode = run_and_kill(run, kind, kill_after, extra_delay=rng.uniform(0, 0.05))
        assert returncode == -signal.SIGKILL, f"the run finished before the kill at {kill_after}"
        logged = read_jsonl(run / "trials.jsonl")
        assert [r["trial_id"] for r in logged] == list(range(len(logged)))
    run_to_completion(run, kind)

    records = read_jsonl(run / "trials.jsonl")
    assert [r["trial_id"] for r in records] == list(range(MAX_TRIALS))
    assert len({r["proposal_id"] for r in records}) == MAX_TRIALS
    assert [r["genotype"] for r in records] == [r["genotype"] for r in expected]
    assert [r["reward"] for r in records] == [r["reward"] for r in expected]
    assert [r["seed"] for r in records] == [r["seed"] for r in expected]
