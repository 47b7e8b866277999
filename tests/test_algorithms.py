import numpy as np
import pytest

from nasnet_app.search.algorithms import (
    PPO,
    RandomSearch,
    RegularizedEvolution,
    Reinforce,
    SearchSpaceExhausted,
    get_algorithm,
    load_state,
    save_state,
)
from nasnet_app.search.base import Trial
from nasnet_app.search.spaces import NASBench201Space, NASNetCellSpace

TINY_OPS = ("none", "nor_conv_3x3")  # 2 ** 6 = 64 architectures


def tiny_space():
    return NASBench201Space(ops=TINY_OPS)


def finish(space, proposals, reward_fn, first_id=0):
    trials = []
    for offset, proposal in enumerate(proposals):
        architecture = space.decode(proposal["actions"])
        trials.append(
            Trial(
                trial_id=first_id + offset,
                actions=proposal["actions"],
                architecture=architecture,
                arch_key=proposal["arch_key"],
                status="completed",
                reward=reward_fn(proposal["actions"]),
                extra=proposal["extra"],
            )
        )
    return trials


def fraction_of_ones(actions):
    return float(np.mean(actions))


def make(kind, space, seed=0, **kwargs):
    if kind in ("reinforce", "ppo"):
        kwargs = {"units": 16, "batch_size": 4, **kwargs}
    if kind == "evolution":
        kwargs = {"population_size": 6, "sample_size": 3, **kwargs}
    return get_algorithm(kind, space, seed=seed, **kwargs)


ALL = ["random", "evolution", "reinforce", "ppo"]


@pytest.mark.parametrize("kind", ALL)
def test_never_proposes_twice_and_exhausts_cleanly(kind):
    space = tiny_space()
    algorithm = (
        make(kind, space, learning_rate=0.05) if kind in ("reinforce", "ppo") else make(kind, space)
    )
    keys = []
    for round_index in range(16):
        proposals = algorithm.propose(4)
        keys += [p["arch_key"] for p in proposals]
        algorithm.update(finish(space, proposals, fraction_of_ones, 4 * round_index))
    assert len(keys) == len(set(keys)) == 64
    with pytest.raises(SearchSpaceExhausted):
        algorithm.propose(1)


@pytest.mark.parametrize("kind", ALL)
def test_state_round_trip_gives_identical_next_proposals(kind, tmp_path):
    space = NASBench201Space()
    algorithm = make(kind, space, seed=3)
    for round_index in range(3):
        proposals = algorithm.propose(4)
        algorithm.update(finish(space, proposals, fraction_of_ones, 4 * round_index))
    pending = algorithm.propose(2)  # proposed, not yet finished: stays seen
    save_state(tmp_path / "state.npz", algorithm.get_state())
    restored = make(kind, space, seed=99)
    restored.set_state(load_state(tmp_path / "state.npz"))
    assert restored.version == algorithm.version
    assert restored.seen == algorithm.seen
    for _ in range(2):
        expected, got = algorithm.propose(4), restored.propose(4)
        assert [p["actions"] for p in got] == [p["actions"] for p in expected]
        for alg, proposals in ((algorithm, expected), (restored, got)):
            alg.update(finish(space, proposals, fraction_of_ones))
    assert not {p["arch_key"] for p in pending} & {p["arch_key"] for p in got}


@pytest.mark.parametrize("kind", ["reinforce", "ppo"])
def test_policy_gradient_learns_the_rewarded_action(kind):
    space = tiny_space()
    algorithm = make(kind, space, learning_rate=0.05, batch_size=8, allow_repeats=True)
    before = np.mean([p["actions"] for p in algorithm.propose(64)])
    for _ in range(25):
        algorithm.update(finish(space, algorithm.propose(8), fraction_of_ones))
    after = np.mean([p["actions"] for p in algorithm.propose(64)])
    assert algorithm.version == 25
    assert 0.3 < before < 0.7
    assert after > 0.85


def test_reinforce_update_waits_for_a_full_batch_and_skips_failed_trials():
    space = NASBench201Space()
    algorithm = make("reinforce", space, batch_size=4)
    trials = finish(space, algorithm.propose(5), fraction_of_ones)
    trials[0].status, trials[0].reward, trials[0].error = "failed", None, "NaN loss"
    assert algorithm.update(trials[:4]) == {} and algorithm.version == 0
    logs = algorithm.update(trials[4:])
    assert algorithm.version == 1
    assert set(logs) >= {"loss", "entropy", "mean_reward", "baseline"}


def test_normalized_advantage_of_cubed_rewards():
    space = NASBench201Space()
    algorithm = make("reinforce", space, batch_size=2, advantage="normalized", baseline_decay=0.5)
    # The rewards arrive cubed by the search's Objective (0.5**3, 1.0**3).
    advantages = algorithm._advantages([0.125, 1.0])
    # First batch: baseline = mean of cubes, scale = their std.
    np.testing.assert_allclose(advantages, [-1.0, 1.0], rtol=1e-5)
    assert algorithm.baseline == pytest.approx(0.5 * (0.5 * 0.5625 + 0.5 * 0.125) + 0.5 * 1.0)


def test_ppo_uses_sampling_time_log_prob():
    space = NASBench201Space()
    algorithm = make("ppo", space, batch_size=4, epochs=2)
    proposals = algorithm.propose(4)
    assert all(p["extra"]["log_prob"] < 0 for p in proposals)
    algorithm.update(finish(space, proposals, fraction_of_ones))
    assert algorithm.version == 1


def test_evolution_mutates_tournament_winners_and_ages_out_the_oldest():
    space = NASBench201Space()
    evolution = RegularizedEvolution(space, population_size=4, sample_size=4, seed=0)
    first = evolution.propose(4)
    rewards = {tuple(p["actions"]): r for p, r in zip(first, [0.1, 0.9, 0.2, 0.3])}
    evolution.update(finish(space, first, lambda a: rewards[tuple(a)]))
    best = first[1]["actions"]
    child = evolution.propose(1)[0]["actions"]
    assert sum(a != b for a, b in zip(child, best)) == 1  # S = P: always the best parent
    evolution.update(
        finish(space, [{"actions": child, "arch_key": "", "extra": {}}], lambda a: 0.5)
    )
    assert len(evolution.population) == 4
    assert evolution.population[0][0] == first[1]["actions"]  # the oldest left


def test_mark_seen_excludes_architectures():
    space = tiny_space()
    search = RandomSearch(space, seed=0)
    every = [space.decode([int(b) for b in f"{i:06b}"]) for i in range(64)]
    search.mark_seen(every[:63])
    assert search.propose(1)[0]["arch_key"] == every[63]


def test_set_state_checks_ops_space_and_algorithm():
    space = NASBench201Space()
    state = RandomSearch(space, seed=0).get_state()
    with pytest.raises(ValueError, match="another search space"):
        RandomSearch(tiny_space()).set_state(state)
    with pytest.raises(ValueError, match=r"`state\['algorithm'\]` must be 'evolution'"):
        RegularizedEvolution(space).set_state(state)
    state["json"]["ops"] = list(reversed(state["json"]["ops"]))
    with pytest.raises(ValueError, match="another operation list"):
        RandomSearch(space).set_state(state)


def test_set_state_rejects_a_controller_of_another_size():
    space = NASBench201Space()
    state = Reinforce(space, units=16, seed=0).get_state()
    with pytest.raises(ValueError, match="does not match this one"):
        Reinforce(space, units=8, seed=0).set_state(state)


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda s: Reinforce(s, batch_size=0), "batch_size"),
        (lambda s: Reinforce(s, reward_transform="cube"), "reward_transform"),
        (lambda s: PPO(s, clip=1.5), "clip"),
        (lambda s: RegularizedEvolution(s, population_size=3, sample_size=5), "sample_size"),
        (lambda s: get_algorithm("bayesian", s), "algorithm"),
        (lambda s: RandomSearch(s).propose(0), "num"),
    ],
)
def test_invalid_arguments_name_the_field(build, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        build(NASBench201Space())


def test_nasnet_space_proposals_decode():
    space = NASNetCellSpace(num_blocks=2)
    algorithm = make("reinforce", space)
    for proposal in algorithm.propose(3):
        assert space.arch_key(space.decode(proposal["actions"])) == proposal["arch_key"]
