"""Tests of the search's `Objective`: one owner of the metric, direction and reward transform."""

import json
import os

import pytest

from nasnet_app.search import algorithms, base, spaces
from nasnet_app.search.base import Evaluator, Objective
from nasnet_app.search.cell_search import CellSearch
from nasnet_app.search.tabular import TabularEvaluator


class Convs(Evaluator):
    """Reward: the fraction of conv edges; a loss-like metric: the fraction of others."""

    def __init__(self):
        self.calls = 0

    def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
        self.calls += 1
        convs = architecture.count("conv") / 6
        return {"reward": convs, "metrics": {"error": 1.0 - convs, "name": "x"}}


def test_the_transforms_are_defined_once():
    assert set(base.TRANSFORMS) == {"identity", "cube"}
    assert not hasattr(algorithms, "REWARD_TRANSFORMS")
    from nasnet_app.search import evaluators

    assert not hasattr(evaluators, "REWARD_TRANSFORMS")


def test_objective_rewards():
    assert Objective().reward(0.5, {}) == 0.5
    assert Objective(transform="cube").reward(0.5, {}) == pytest.approx(0.125)
    assert Objective("error", "min").reward(0.9, {"error": 0.25}) == -0.25
    assert Objective("error", "min", "cube").reward(0.9, {"error": 0.5}) == -0.125
    assert Objective.from_config({"name": "error", "direction": "min"}).direction == "min"
    assert Objective.from_config("error") == Objective("error")
    assert Objective.from_config(Objective().get_config()) == Objective()


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: Objective(direction="up"), "direction"),
        (lambda: Objective(transform="square"), "transform"),
        (lambda: Objective(""), "name"),
        (lambda: Objective.from_config({"metric": "x"}), "objective"),
        (lambda: Objective("name").reward(1.0, {"name": "x"}), "objective `name`"),
        (lambda: Objective("loss").reward(1.0, {}), "objective `loss`"),
    ],
)
def test_bad_objectives_name_the_field(make, field):
    with pytest.raises(ValueError, match=f"`{field}`" if "`" not in field else field):
        make()


def test_the_search_transforms_once_and_records_the_objective(tmp_path):
    space = spaces.NASBench201Space()
    evaluator = Convs()
    search = CellSearch(
        space,
        algorithms.RandomSearch(space, seed=0),
        evaluator,
        objective=Objective(transform="cube"),
    )
    history = search.search(max_trials=6, directory=str(tmp_path), verbose=0, seed=0)
    for trial in history.trials:
        raw = trial.architecture.count("conv") / 6
        assert trial.metrics["raw_reward"] == pytest.approx(raw)
        assert trial.reward == pytest.approx(raw**3)
    expected = {"name": "reward", "direction": "max", "transform": "cube"}
    with open(os.path.join(tmp_path, "summary.json"), encoding="utf-8") as handle:
        assert json.load(handle)["objective"] == expected
    with open(os.path.join(tmp_path, "run.json"), encoding="utf-8") as handle:
        assert json.load(handle)["objective"] == expected


def test_a_metric_to_minimise_orders_the_best_trial():
    space = spaces.NASBench201Space()
    search = CellSearch(
        space, algorithms.RandomSearch(space, seed=1), Convs(), objective=Objective("error", "min")
    )
    history = search.search(max_trials=8, verbose=0, seed=0)
    errors = [t.metrics["error"] for t in history.trials]
    assert history.best_trial.metrics["error"] == min(errors)
    assert history.best_reward == -min(errors)


def test_tabular_rewards_are_cubed_once(tmp_path):
    space = spaces.NASBench201Space()
    rows = [space.decode([k, 4 - k, k, 1, 2, k]) for k in range(5)]
    table = tmp_path / "t.csv"
    table.write_text("arch,acc\n" + "".join(f"{a},{50 + a.count('conv')}\n" for a in rows))
    evaluator = TabularEvaluator(str(table))
    assert evaluator.evaluate(rows[1])["reward"] == pytest.approx(0.52)  # raw: a fraction
    algorithm = algorithms.RandomSearch(space, seed=0)
    algorithm.mark_seen([a for a in space_archs(space) if a not in rows])
    search = CellSearch(space, algorithm, evaluator, objective=Objective(transform="cube"))
    history = search.search(max_trials=len(rows), verbose=0, seed=0)
    for trial in history.trials:
        assert trial.reward == pytest.approx(evaluator.lookup(trial.architecture) ** 3 / 1e6)


def space_archs(space):
    import itertools

    return [space.decode(list(a)) for a in itertools.product(range(5), repeat=6)]


def _run_json(directory):
    return os.path.join(directory, "run.json")


def test_resume_refuses_another_objective_and_reads_legacy_runs(tmp_path):
    space = spaces.NASBench201Space()

    def search(objective):
        return CellSearch(
            space, algorithms.RandomSearch(space, seed=0), Convs(), objective=objective
        )

    search(None).search(max_trials=2, directory=str(tmp_path), verbose=0, seed=0)
    with pytest.raises(ValueError, match="it maximised the objective"):
        search(Objective(transform="cube")).search(
            max_trials=4, directory=str(tmp_path), resume=True, verbose=0
        )
    # A run written before objectives were recorded: its ChildTrainer cubed.
    with open(_run_json(tmp_path), encoding="utf-8") as handle:
        info = json.load(handle)
    del info["objective"]
    info["evaluator_config"] = {"reward_transform": "cube"}
    with open(_run_json(tmp_path), "w", encoding="utf-8") as handle:
        json.dump(info, handle)
    with pytest.raises(ValueError, match="it maximised the objective"):
        search(None).search(max_trials=4, directory=str(tmp_path), resume=True, verbose=0)
    history = search(Objective(transform="cube")).search(
        max_trials=4, directory=str(tmp_path), resume=True, verbose=0
    )
    assert history.num_evaluated == 4


def test_legacy_runs_with_two_transforms_give_a_clear_error():
    info = {
        "evaluator_config": {"reward_transform": "cube"},
        "algorithm_config": {"reward_transform": "cube"},
    }
    with pytest.raises(ValueError, match="cannot be expressed as one objective"):
        Objective.of_legacy_run(info)
    assert Objective.of_legacy_run({"algorithm_config": {"reward_transform": "identity"}}) == (
        Objective()
    )
