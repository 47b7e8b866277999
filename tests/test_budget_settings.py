"""Tests of the budget-aware controller settings of REINFORCE / PPO and their CLI flags."""

import itertools
import json

import numpy as np
import pytest

from nasnet_app.search import algorithms
from nasnet_app.search.algorithms import (
    PAPER_SETTINGS,
    PPO,
    Reinforce,
    budget_settings,
    build_algorithm,
)
from nasnet_app.search.base import Trial
from nasnet_app.search.spaces import NASBench201Space


@pytest.mark.parametrize(
    "trials, batch", [(20, 5), (50, 5), (100, 5), (200, 10), (300, 15), (500, 20), (5000, 20)]
)
def test_batch_and_rates_follow_the_number_of_updates(trials, batch):
    settings = budget_settings("reinforce", trials)
    updates = trials // batch
    assert settings["batch_size"] == batch
    assert settings["learning_rate"] == pytest.approx(
        min(algorithms.MAX_LEARNING_RATE, algorithms.POLICY_TRAVEL / updates)
    )
    assert settings["entropy_weight"] == pytest.approx(algorithms.ENTROPY_PER_UPDATE / updates)
    assert settings["advantage"] == "normalized"


def test_policy_travel_is_the_same_for_every_budget_and_rule():
    for trials in (100, 200, 500, 1000):
        for kind, steps_per_update in (("reinforce", 1), ("ppo", 4)):
            settings = budget_settings(kind, trials, steps_per_update=steps_per_update)
            steps = trials // settings["batch_size"] * steps_per_update
            assert settings["learning_rate"] * steps == pytest.approx(algorithms.POLICY_TRAVEL)


def test_a_chosen_batch_size_sets_the_number_of_updates():
    settings = budget_settings("reinforce", 200, batch_size=4)
    assert settings["batch_size"] == 4
    assert settings["learning_rate"] == pytest.approx(algorithms.POLICY_TRAVEL / 50)


def test_defaults_explicit_values_and_paper_settings():
    space = NASBench201Space()
    default = Reinforce(space, units=8)
    expected = budget_settings("reinforce", algorithms.DEFAULT_MAX_TRIALS)
    assert default.learning_rate == pytest.approx(expected["learning_rate"])
    assert default.batch_size == expected["batch_size"]
    ppo = PPO(space, units=8, max_trials=100, epochs=2)
    assert ppo.learning_rate == pytest.approx(algorithms.POLICY_TRAVEL / (100 // 5 * 2))
    paper = Reinforce(space, units=8, settings="paper")
    config = paper.get_config()
    assert {k: config[k] for k in PAPER_SETTINGS} == PAPER_SETTINGS
    chosen = build_algorithm(
        "reinforce", space, max_trials=100, learning_rate=0.02, entropy_weight=0.0, batch_size=7
    )
    assert (chosen.learning_rate, chosen.entropy_weight, chosen.batch_size) == (0.02, 0.0, 7)
    assert chosen.get_config()["settings"] == "budget" and chosen.get_config()["max_trials"] == 100
    assert build_algorithm("evolution", space, max_trials=100, seed=0).kind == "evolution"
    with pytest.raises(ValueError, match="`settings` must be 'budget' or 'paper'"):
        Reinforce(space, settings="small")
    with pytest.raises(ValueError, match="`max_trials` must be a positive integer"):
        budget_settings("reinforce", 0)


def _policy_after(algorithm, space, trials):
    """Runs `trials` children rewarded by their share of conv edges; returns the policy's share."""
    done = 0
    while done < trials:
        proposals = algorithm.propose(algorithm.batch_size)
        batch = []
        for p in proposals:
            reward = float(np.mean(np.array(p["actions"]) == 3))
            batch.append(
                Trial(done, p["actions"], space.decode(p["actions"]), p["arch_key"],
                      status="completed", reward=reward, extra=p["extra"])
            )  # fmt: skip
            done += 1
        algorithm.update(batch)
    sample = algorithm.controller.sample(256, np.random.default_rng(0))
    return float(np.mean(sample["actions"] == 3))


def test_budget_settings_learn_within_the_budget_the_paper_settings_do_not():
    space = NASBench201Space()
    budget = _policy_after(Reinforce(space, units=16, max_trials=100, seed=0), space, 100)
    paper = _policy_after(Reinforce(space, units=16, settings="paper", seed=0), space, 100)
    assert paper < 0.3  # 1 of 5 ops: still about uniform
    assert budget > 0.5


def _full_table(path):
    space = NASBench201Space()
    lines = ["arch,acc"] + [
        f"{space.decode(list(a))},{50 + 5 * sum(x == 3 for x in a)}"
        for a in itertools.product(range(5), repeat=6)
    ]
    path.write_text("\n".join(lines) + "\n")


def test_cli_flags_reach_the_controller(tmp_path):
    from nasnet_app.cli import main

    _full_table(tmp_path / "t.csv")
    base = [
        "search",
        "--space",
        "nasbench201",
        "--table",
        str(tmp_path / "t.csv"),
        "--verbose",
        "0",
    ]
    runs = {
        "budget": ["--trials", "10"],
        "paper": ["--trials", "10", "--settings", "paper"],
        "flags": ["--trials", "10", "--learning-rate", "0.02", "--entropy-weight", "0.001",
                  "--controller-batch", "4"],
    }  # fmt: skip
    configs = {}
    for name, extra in runs.items():
        out = tmp_path / name
        assert main([*base, *extra, "--seed", "1", "--out", str(out)]) == 0
        with open(out / "run.json", encoding="utf-8") as handle:
            configs[name] = json.load(handle)["algorithm_config"]
    budget = budget_settings("reinforce", 10)
    assert configs["budget"]["learning_rate"] == pytest.approx(budget["learning_rate"])
    assert configs["budget"]["batch_size"] == budget["batch_size"]
    assert configs["paper"]["learning_rate"] == PAPER_SETTINGS["learning_rate"]
    assert configs["paper"]["advantage"] == "baseline"
    flags = configs["flags"]
    assert (flags["learning_rate"], flags["entropy_weight"], flags["batch_size"]) == (
        0.02,
        0.001,
        4,
    )


def test_runs_saved_before_the_budget_rule_resume_with_the_paper_settings(tmp_path):
    from nasnet_app.cli import main

    _full_table(tmp_path / "t.csv")
    out = tmp_path / "run"
    argv = ["search", "--space", "nasbench201", "--table", str(tmp_path / "t.csv")]
    assert main([*argv, "--trials", "6", "--seed", "2", "--verbose", "0", "--out", str(out)]) == 0
    # What an older version wrote: no controller settings, no objective.
    settings = json.loads((out / "cli_args.json").read_text())
    for key in ("controller_settings", "budget_trials"):
        settings.pop(key)
    (out / "cli_args.json").write_text(json.dumps(settings))
    info = json.loads((out / "run.json").read_text())
    info.pop("objective")
    (out / "run.json").write_text(json.dumps(info))
    assert main(["search", "--out", str(out), "--resume", "--trials", "8", "--verbose", "0"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_evaluated"] == 8
    assert summary["objective"] == {"name": "reward", "direction": "max", "transform": "identity"}
