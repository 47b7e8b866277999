"""Tests of the executors: in-process, local worker processes and Ray.

Worker processes are real (spawned); crashes and kills are real signals.
"""

import os
import signal
import sys
import threading
import time

import pytest

from nasnet_app.io_utils import read_jsonl
from nasnet_app.search import algorithms, spaces
from nasnet_app.search.base import Evaluator, Trial
from nasnet_app.search.cell_search import CellSearch
from nasnet_app.search.executors import (
    InProcessExecutor,
    LocalProcessExecutor,
    RayExecutor,
    describe_error,
    evaluate_trial,
)


class Scripted(Evaluator):
    """Reward from the arch string; some architectures crash, hang or wait to be killed.

    `behaviour` maps an arch string to `"exit"` (the process exits with code 3),
    `"wait_for_kill"` (writes its pid to `pid_file`, then sleeps until killed;
    a later attempt, once `pid_file` exists, completes normally) or `"hang"`.
    """

    def __init__(self, behaviour=None, pid_file=None):
        self.behaviour = dict(behaviour or {})
        self.pid_file = pid_file

    def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
        action = self.behaviour.get(architecture)
        if action == "exit":
            os._exit(3)
        if action == "wait_for_kill" and not os.path.exists(self.pid_file):
            with open(self.pid_file + ".tmp", "w") as handle:
                handle.write(str(os.getpid()))
            os.replace(self.pid_file + ".tmp", self.pid_file)
            time.sleep(120)
        if action == "hang":
            time.sleep(120)
        metrics = {
            "pid": os.getpid(),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "threads": os.environ.get("OMP_NUM_THREADS"),
        }
        return {"reward": architecture.count("conv") / 6.0, "metrics": metrics}


def kill_when_written(pid_file, timeout=120):
    """Starts a thread that SIGKILLs the pid written to `pid_file`."""

    def watch():
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(pid_file):
                os.kill(int(open(pid_file).read()), signal.SIGKILL)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def first_archs(space, seed, count):
    return [space.decode(p["actions"]) for p in algorithms.RandomSearch(space, seed).propose(count)]


def check_log(run, max_trials):
    records = read_jsonl(os.path.join(run, "trials.jsonl"))
    assert [r["trial_id"] for r in records] == list(range(len(records)))
    assert len({r["proposal_id"] for r in records}) == len(records)
    assert sum(not r["cached"] for r in records) == max_trials
    return records


def test_in_process_executor_runs_in_submission_order():
    executor = InProcessExecutor()
    executor.start(Scripted())
    for ticket, arch in enumerate(["conv", "conv conv"]):
        executor.submit(ticket, Trial(trial_id=-1, actions=[], architecture=arch, arch_key=arch))
    assert executor.num_pending == 2
    first = executor.collect()
    assert [(t, trial.reward) for t, trial in first] == [(0, 1 / 6)]
    assert executor.cancel_queued() == [1] and executor.collect() == []


def test_errors_are_described_and_out_of_memory_is_marked():
    class ResourceExhaustedError(Exception):
        pass

    assert describe_error(ResourceExhaustedError("OOM when allocating")).startswith(
        "ResourceExhaustedError (out of memory): OOM"
    )
    assert describe_error(MemoryError()).startswith("MemoryError (out of memory)")
    assert len(describe_error(ValueError("x" * 10000))) <= 4000

    class BadResult(Evaluator):
        def evaluate(self, architecture, **kwargs):
            return {"accuracy": 1.0}

    trial = Trial(trial_id=-1, actions=[], architecture="a", arch_key="a")
    failed = evaluate_trial(BadResult(), trial)
    assert failed.status == "failed" and "`reward`" in failed.error
    assert "traceback" in failed.metrics


def test_local_executor_checks_arguments_and_device_groups():
    with pytest.raises(ValueError, match="workers"):
        LocalProcessExecutor(workers=0)
    groups = LocalProcessExecutor(workers=2, gpus_per_child=2, gpu_ids=[0, 1, 2, 3])
    envs = [env for env, _ in groups.device_groups()]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0,1", "2,3"]
    with pytest.raises(ValueError, match="gpus_per_child"):
        LocalProcessExecutor(workers=3, gpus_per_child=2, gpu_ids=[0, 1, 2, 3]).device_groups()
    cpu = LocalProcessExecutor(workers=2, gpus_per_child=0, gpu_ids=[], threads_per_child=3)
    assert [env for env, _ in cpu.device_groups()] == [
        {"OMP_NUM_THREADS": "3", "TF_NUM_INTRAOP_THREADS": "3", "TF_NUM_INTEROP_THREADS": "2"}
    ] * 2


def test_unpicklable_data_is_refused_before_any_worker_starts():
    executor = LocalProcessExecutor(workers=1, gpus_per_child=0)
    with pytest.raises(TypeError, match="picklable"):
        executor.start(Scripted(), train_data=lambda: None)
    assert executor.worker_pids == []


@pytest.mark.slow
def test_local_workers_survive_crashes_kills_and_hangs(tmp_path):
    space = spaces.NASBench201Space()
    archs = first_archs(space, seed=4, count=8)
    pid_file = str(tmp_path / "victim.pid")
    evaluator = Scripted(
        {archs[1]: "exit", archs[2]: "wait_for_kill", archs[3]: "hang"}, pid_file=pid_file
    )
    executor = LocalProcessExecutor(
        workers=2, gpu_ids=["0", "1"], gpus_per_child=1, threads_per_child=1, child_timeout=15
    )
    kill_when_written(pid_file)
    run = str(tmp_path / "run")
    history = CellSearch(space, algorithms.RandomSearch(space, seed=4), evaluator, executor).search(
        max_trials=8, batch_size=4, directory=run, verbose=0
    )
    records = check_log(run, max_trials=8)
    by_arch = {r["genotype"]: r for r in records}
    assert "exit code 3" in by_arch[archs[1]]["error"]
    assert "SIGKILL" in by_arch[archs[2]]["error"]
    assert "longer than 15 s" in by_arch[archs[3]]["error"]
    completed = [r for r in records if r["status"] == "completed"]
    assert len(completed) == 5 == sum(t.status == "completed" for t in history.trials)
    assert {r["metrics"]["cuda"] for r in completed} <= {"0", "1"}
    assert {r["metrics"]["threads"] for r in completed} == {"1"}
    assert os.getpid() not in {r["metrics"]["pid"] for r in completed}
    assert len(executor.worker_pids) >= 4  # two first workers + replacements of failed ones


@pytest.mark.slow
def test_local_workers_are_recycled_after_max_children():
    space = spaces.NASBench201Space()
    executor = LocalProcessExecutor(workers=1, gpus_per_child=0, max_children_per_worker=2)
    history = CellSearch(
        space, algorithms.RandomSearch(space, seed=0), Scripted(), executor
    ).search(max_trials=5, verbose=0)
    pids = [trial.metrics["pid"] for trial in history.trials]
    assert len(executor.worker_pids) == 3
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


@pytest.mark.slow
def test_asynchronous_updates_with_two_local_workers(tmp_path):
    space = spaces.NASBench201Space()
    algorithm = algorithms.Reinforce(space, batch_size=2, units=8, seed=0)
    executor = LocalProcessExecutor(workers=2, gpus_per_child=0, threads_per_child=1)
    history = CellSearch(space, algorithm, Scripted(), executor).search(
        max_trials=6,
        batch_size=2,
        asynchronous=True,
        max_staleness=1,
        verbose=0,
        directory=str(tmp_path / "run"),
    )
    check_log(str(tmp_path / "run"), max_trials=6)
    assert [u["num_trials"] + u["num_stale"] for u in history.updates] == [2, 2, 2]
    assert all(u["mean_staleness"] <= 2 for u in history.updates)
    assert algorithm.version >= 1


try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(
    ray is None, reason="Ray is an optional extra (pip install 'nasnet-app[distributed]')"
)


@pytest.fixture(scope="module")
def local_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@needs_ray
@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray instance per test process
@pytest.mark.parametrize("max_retries", [1, 0])
def test_ray_worker_killed_mid_child_is_retried_or_failed(tmp_path, local_ray, max_retries):
    space = spaces.NASBench201Space()
    archs = first_archs(space, seed=2, count=6)
    pid_file = str(tmp_path / "victim.pid")
    evaluator = Scripted({archs[2]: "wait_for_kill"}, pid_file=pid_file)
    executor = RayExecutor(workers=2, max_retries=max_retries)
    kill_when_written(pid_file)
    run = str(tmp_path / "run")
    CellSearch(space, algorithms.RandomSearch(space, seed=2), evaluator, executor).search(
        max_trials=6, batch_size=3, directory=run, verbose=0
    )
    records = check_log(run, max_trials=6)
    victim = next(r for r in records if r["genotype"] == archs[2])
    if max_retries:
        assert victim["status"] == "completed"
        assert victim["metrics"]["pid"] != int(open(pid_file).read())
    else:
        assert victim["status"] == "failed" and "after 0 retries" in victim["error"]
    assert sum(r["status"] == "completed" for r in records) == 6 - (0 if max_retries else 1)
    assert ray.is_initialized()  # the executor leaves a Ray instance it did not start running
