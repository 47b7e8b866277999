"""Tests of `CellSearch`: the loop, the cache, failures, the run folder and resume."""

import json
import os

import pytest

from nasnet_app.io_utils import read_jsonl
from nasnet_app.search import algorithms, spaces
from nasnet_app.search.base import Evaluator
from nasnet_app.search.callbacks import SearchCallback
from nasnet_app.search.cell_search import CellSearch, ProgressBar, child_seed


class ConvCount(Evaluator):
    """Reward: a fixed function of the arch string; counts its calls."""

    def __init__(self, fail_on=(), nan_on=()):
        self.calls = []
        self.fail_on, self.nan_on = set(fail_on), set(nan_on)

    def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
        self.calls.append(architecture)
        if architecture in self.fail_on:
            raise RuntimeError(f"cannot build {architecture}")
        if architecture in self.nan_on:
            return {"reward": float("nan")}
        score = architecture.count("conv_3x3") + 0.5 * architecture.count("conv_1x1")
        return {"reward": score / 6.0, "metrics": {"seed": trial.seed}}


class Interrupt(ConvCount):
    """Raises KeyboardInterrupt (not caught as a child failure) at call `at`."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def evaluate(self, architecture, **kwargs):
        if len(self.calls) == self.at:
            raise KeyboardInterrupt
        return super().evaluate(architecture, **kwargs)


class Versioned(algorithms.RandomSearch):
    """Random search whose updates count, so staleness can be measured."""

    def update(self, trials):
        self.version += 1
        return {"seen": len(trials)}


def small_space():
    return spaces.NASBench201Space(ops=("none", "skip_connect", "nor_conv_3x3"))


def run_search(directory=None, algorithm=None, evaluator=None, **kwargs):
    space = small_space()
    algorithm = algorithm or algorithms.RandomSearch(space, seed=3)
    evaluator = evaluator or ConvCount()
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("max_trials", 12)
    kwargs.setdefault("seed", 5)
    history = CellSearch(space, algorithm, evaluator).search(directory=directory, **kwargs)
    return history, evaluator


def test_search_evaluates_max_trials_distinct_architectures():
    history, evaluator = run_search(max_trials=10, batch_size=4)
    assert len(evaluator.calls) == 10
    assert len(set(evaluator.calls)) == 10
    assert [t.trial_id for t in history.trials] == list(range(10))
    assert history.best_trial.reward == max(history.history["reward"])
    best = history.history["best_reward"]
    assert best == sorted(best)


def test_repeated_architectures_come_from_the_cache_and_do_not_count():
    evaluator = ConvCount()
    space = spaces.NASBench201Space(ops=("none", "skip_connect"))  # 64 cells: repeats are likely
    algorithm = algorithms.RandomSearch(space, seed=0, allow_repeats=True)
    history = CellSearch(space, algorithm, evaluator).search(max_trials=30, verbose=0, seed=1)
    cached = [t for t in history.trials if t.cached]
    assert cached, "expected repeats with allow_repeats=True on a 64-cell space"
    assert len(evaluator.calls) == 30 == len(set(evaluator.calls))
    assert sum(not t.cached for t in history.trials) == 30
    first = {t.arch_key: t for t in history.trials if not t.cached}
    for trial in cached:
        assert trial.reward == first[trial.arch_key].reward
        assert trial.metrics["cached_from"] == first[trial.arch_key].trial_id


def test_cache_streak_stops_a_converged_search():
    space = spaces.NASBench201Space(ops=("none",))  # one cell only
    algorithm = algorithms.RandomSearch(space, seed=0, allow_repeats=True)
    search = CellSearch(space, algorithm, ConvCount())
    history = search.search(max_trials=5, max_cache_streak=7, verbose=0)
    assert len(history.trials) == 8
    assert "in a row" in history.stop_reason


def test_exhausted_space_stops_with_a_reason():
    space = spaces.NASBench201Space(ops=("none", "skip_connect"))
    history = CellSearch(space, algorithms.RandomSearch(space, seed=0), ConvCount()).search(
        max_trials=100, verbose=0
    )
    assert len(history.trials) == 64
    assert "exhausted" in history.stop_reason


def test_failed_children_are_recorded_and_the_search_goes_on():
    space = small_space()
    probe = algorithms.RandomSearch(space, seed=3).propose(4)
    archs = [space.decode(p["actions"]) for p in probe]
    evaluator = ConvCount(fail_on=[archs[1]], nan_on=[archs[2]])
    history, _ = run_search(evaluator=evaluator, max_trials=6, batch_size=3)
    by_arch = {t.architecture: t for t in history.trials}
    assert by_arch[archs[1]].status == "failed"
    assert "RuntimeError: cannot build" in by_arch[archs[1]].error
    assert by_arch[archs[2]].status == "failed"
    assert "not finite" in by_arch[archs[2]].error
    assert by_arch[archs[2]].reward is None
    assert len(history.trials) == 6
    assert sum(t.status == "completed" for t in history.trials) == 4


def test_run_directory_files(tmp_path):
    run = tmp_path / "run"
    history, _ = run_search(directory=run, max_trials=7, batch_size=3)
    records = read_jsonl(run / "trials.jsonl")
    assert [r["trial_id"] for r in records] == list(range(7))
    space = small_space()
    for record, trial in zip(records, history.trials, strict=True):
        assert record["status"] == "completed"
        assert record["reward"] == trial.reward
        assert space.decode(record["actions"]) == record["genotype"]
        assert record["seed"] == child_seed(5, record["proposal_id"])
        assert record["cached"] is False and record["duration_s"] >= 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] is True
    assert summary["num_evaluated"] == 7
    assert summary["best_trial"]["reward"] == history.best_trial.reward
    assert json.loads((run / "run.json").read_text())["space"]["name"] == "nasbench201"


def test_existing_run_is_refused_without_resume(tmp_path):
    run_search(directory=tmp_path, max_trials=2)
    before = (tmp_path / "trials.jsonl").read_bytes()
    with pytest.raises(FileExistsError, match="resume=True"):
        run_search(directory=tmp_path, max_trials=4)
    assert (tmp_path / "trials.jsonl").read_bytes() == before


def test_resume_refuses_another_space_or_seed(tmp_path):
    run_search(directory=tmp_path, max_trials=2)
    other = spaces.NASBench201Space()
    with pytest.raises(ValueError, match="space"):
        CellSearch(other, algorithms.RandomSearch(other), ConvCount()).search(
            max_trials=3, directory=tmp_path, resume=True, verbose=0
        )
    with pytest.raises(ValueError, match="seed=9"):
        run_search(directory=tmp_path, max_trials=3, resume=True, seed=9)


@pytest.mark.parametrize("interrupt_at", [0, 4, 5, 9])
@pytest.mark.parametrize("asynchronous", [False, True])
def test_interrupted_run_resumes_into_the_same_search(tmp_path, interrupt_at, asynchronous):
    options = dict(max_trials=11, batch_size=5, asynchronous=asynchronous)
    reference, _ = run_search(directory=tmp_path / "ref", **options)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_search(directory=run, evaluator=Interrupt(interrupt_at), **options)
    assert len(read_jsonl(run / "trials.jsonl")) == interrupt_at
    space = small_space()
    resumed, evaluator = run_search(
        directory=run, algorithm=algorithms.RandomSearch(space, seed=999), resume=True, **options
    )
    assert len(evaluator.calls) == 11 - interrupt_at
    records = read_jsonl(run / "trials.jsonl")
    assert [r["trial_id"] for r in records] == list(range(11))
    assert [r["genotype"] for r in records] == [t.architecture for t in reference.trials]
    assert [r["seed"] for r in records] == [t.seed for t in reference.trials]
    assert [t.reward for t in resumed.trials] == [t.reward for t in reference.trials]


def test_resume_repairs_a_torn_last_line(tmp_path):
    run_search(directory=tmp_path, max_trials=3)
    with open(tmp_path / "trials.jsonl", "a") as handle:
        handle.write('{"trial_id": 3, "status": "compl')
    history, evaluator = run_search(directory=tmp_path, max_trials=5, resume=True)
    records = read_jsonl(tmp_path / "trials.jsonl")
    assert [r["trial_id"] for r in records] == list(range(5))
    assert len(evaluator.calls) == 2


def test_resume_of_a_finished_run_with_a_larger_budget(tmp_path):
    first, _ = run_search(directory=tmp_path, max_trials=4, batch_size=2)
    history, evaluator = run_search(directory=tmp_path, max_trials=6, batch_size=2, resume=True)
    assert len(evaluator.calls) == 2
    assert [t.trial_id for t in history.trials] == list(range(6))
    assert history.trials[:4] == first.trials


def test_resume_requires_a_directory():
    with pytest.raises(ValueError, match="directory"):
        run_search(resume=True)


def test_asynchronous_updates_report_staleness():
    space = small_space()
    algorithm = Versioned(space, seed=0)
    history, _ = run_search(algorithm=algorithm, max_trials=9, batch_size=3, asynchronous=True)
    assert algorithm.version == 3
    assert [u["num_trials"] for u in history.updates] == [3, 3, 3]
    assert all(u["mean_staleness"] >= 0 for u in history.updates)


def test_max_staleness_leaves_stale_trials_out():
    space = small_space()

    class Stale(Versioned):
        def propose(self, num):  # every proposal looks three versions old
            proposals = super().propose(num)
            self.version += 3
            return proposals

    algorithm = Stale(space, seed=0)
    history, _ = run_search(
        algorithm=algorithm, max_trials=4, batch_size=2, asynchronous=True, max_staleness=2
    )
    assert all(u["num_stale"] == 2 and u["num_trials"] == 0 for u in history.updates)


def test_a_callback_can_stop_the_search_and_queued_children_are_dropped():
    class StopAfterTwo(SearchCallback):
        def on_trial_end(self, trial, logs=None):
            if logs["num_trials"] == 2:
                self.search.stop("enough")

    history, evaluator = run_search(max_trials=10, batch_size=5, callbacks=[StopAfterTwo()])
    assert len(history.trials) == 2 and len(evaluator.calls) == 2
    assert history.stop_reason == "enough"


def test_callback_hooks_are_called_in_order():
    events = []

    class Recorder(SearchCallback):
        def on_search_begin(self, logs=None):
            events.append("begin")

        def on_trial_begin(self, trial, logs=None):
            events.append("trial_begin")

        def on_trial_end(self, trial, logs=None):
            events.append("trial_end")

        def on_controller_update(self, logs=None):
            events.append("update")

        def on_search_end(self, logs=None):
            events.append("end")

    run_search(max_trials=4, batch_size=2, callbacks=[Recorder()])
    batch = ["trial_begin", "trial_begin", "trial_end", "trial_end", "update"]
    assert events == ["begin", *batch, *batch, "end"]


def test_invalid_arguments_are_named():
    space = small_space()
    algorithm = algorithms.RandomSearch(space)
    with pytest.raises(ValueError, match="max_trials"):
        CellSearch(space, algorithm, ConvCount()).search(max_trials=0)
    with pytest.raises(ValueError, match="evaluator"):
        CellSearch(space, algorithm, object())
    with pytest.raises(TypeError, match="callbacks"):
        CellSearch(space, algorithm, ConvCount()).search(max_trials=1, callbacks=[object()])
    with pytest.raises(ValueError, match="child_callbacks"):
        CellSearch(space, algorithm, ConvCount()).search(max_trials=1, child_callbacks=[])


def test_progress_output(capsys):
    run_search(max_trials=3, verbose=1)
    out = capsys.readouterr().out
    assert "3/3" in out and "best" in out


def test_progress_bar_eta(tmp_path):
    with open(tmp_path / "out.txt", "w") as stream:
        bar = ProgressBar(10, initial=2, stream=stream)
        bar.update(2, None, 0, 0)
        bar.update(4, 0.5, 1, 0)
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert "ETA ?" in lines[0]
    assert "4/10" in lines[1] and "best 0.5000" in lines[1] and "ETA 0:00:0" in lines[1]
    assert os.path.getsize(tmp_path / "out.txt") > 0
