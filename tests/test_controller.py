import itertools

import numpy as np
import pytest
import tensorflow as tf

from nasnet_app.search.controller import Controller, SeenSequences
from nasnet_app.search.spaces import NASBench201Space, NASMacroSpace, NASNetCellSpace


@pytest.mark.parametrize(
    "space",
    [
        NASBench201Space(),
        NASNetCellSpace(num_blocks=3),
        NASMacroSpace(num_layers=4, strides=(1, 2)),
    ],
    ids=["nasbench201", "nasnet", "macro"],
)
@pytest.mark.parametrize("shaping", [{}, {"temperature": 2.0, "tanh_constant": 1.5}])
def test_numpy_sampling_matches_differentiable_scoring(space, shaping):
    controller = Controller(space, units=24, seed=1, init_range=0.5, **shaping)
    sample = controller.sample(32, np.random.default_rng(0))
    choices = np.array([n for _, n in space.decisions()])
    assert sample["actions"].shape == (32, len(choices))
    assert np.all(sample["actions"] < choices) and np.all(sample["actions"] >= 0)
    for actions in sample["actions"]:
        space.decode(actions.tolist())
    log_prob, entropy = controller(sample["actions"])
    np.testing.assert_allclose(log_prob.numpy(), sample["log_prob"], atol=1e-4)
    np.testing.assert_allclose(entropy.numpy(), sample["entropy"], atol=1e-4)


def test_masked_inputs_are_never_sampled_and_entropy_counts_valid_choices():
    space = NASNetCellSpace(num_blocks=2)
    controller = Controller(space, units=8, seed=0, init_range=0.0)
    sample = controller.sample(400, np.random.default_rng(0))
    assert sample["actions"][:, 0].max() == 1  # block 0 sees states 0, 1 only
    assert sample["actions"][:, 5].max() == 2  # block 1 sees states 0, 1, 2
    # Zero weights give uniform policies over the valid choices.
    expected = sum(np.log(n) for _, n in space.decisions())
    np.testing.assert_allclose(sample["entropy"], expected, rtol=1e-6)


def test_sampling_is_deterministic_given_seeds():
    space = NASNetCellSpace(num_blocks=2)
    first = Controller(space, units=16, seed=3).sample(5, np.random.default_rng(7))
    second = Controller(space, units=16, seed=3).sample(5, np.random.default_rng(7))
    np.testing.assert_array_equal(first["actions"], second["actions"])
    other = Controller(space, units=16, seed=3).sample(5, np.random.default_rng(8))
    assert not np.array_equal(first["actions"], other["actions"])


def test_scoring_is_differentiable_for_every_weight():
    space = NASMacroSpace(num_layers=3)
    controller = Controller(space, units=8, seed=0)
    actions = controller.sample(6, np.random.default_rng(0))["actions"]
    with tf.GradientTape() as tape:
        log_prob, entropy = controller(actions)
        loss = -tf.reduce_sum(log_prob) - tf.reduce_sum(entropy)
    gradients = tape.gradient(loss, controller.trainable_variables)
    assert all(g is not None for g in gradients)
    assert controller.has_attention


def test_tanh_constant_bounds_the_logits():
    space = NASBench201Space()
    controller = Controller(space, units=8, seed=0, init_range=3.0, tanh_constant=0.5)
    log_prob = controller.sample(200, np.random.default_rng(0))["log_prob"]
    # With |logit| <= 0.5 a choice has probability >= e^-1 / 5 per decision.
    assert log_prob.min() >= 6 * np.log(np.exp(-1.0) / (np.exp(-1.0) + 4 * 1.0)) - 1e-6


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"units": 0}, "units"),
        ({"temperature": 0}, "temperature"),
        ({"tanh_constant": -1}, "tanh_constant"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        Controller(NASBench201Space(), **kwargs)


def test_config_describes_space_and_heads():
    controller = Controller(NASNetCellSpace(num_blocks=2), units=12)
    config = controller.get_config()
    assert config["units"] == 12 and config["space"]["name"] == "nasnet"
    assert controller.head_widths == {"input": 3, "op": 13, "combine": 2}


def test_sampling_without_replacement_follows_the_conditioned_policy():
    space = NASBench201Space(ops=("none", "nor_conv_3x3"))  # 64 sequences
    controller = Controller(space, units=8, seed=2, init_range=1.0)
    every = np.array(list(itertools.product(range(2), repeat=6)))
    probs = controller.step_probabilities(every).prod(axis=1)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    seen_rows = np.argsort(probs)[-10:]  # leave out the 10 likeliest
    seen = SeenSequences(controller.num_choices, every[seen_rows])
    seen.prepare(controller)
    sample = controller.sample(6000, np.random.default_rng(0), exclude=seen)
    index = sample["actions"] @ (2 ** np.arange(5, -1, -1))
    assert not set(index) & set(seen_rows)
    expected = probs.copy()
    expected[seen_rows] = 0
    expected /= expected.sum()
    frequency = np.bincount(index, minlength=64) / len(index)
    assert 0.5 * np.abs(frequency - expected).sum() < 0.04  # total variation
    np.testing.assert_allclose(sample["log_prob"], np.log(probs[index]), atol=1e-4)


def test_seen_sequences_exhaustion_and_scored_additions():
    space = NASBench201Space(ops=("none", "skip_connect"))
    controller = Controller(space, units=4, seed=0)
    every = [list(a) for a in itertools.product(range(2), repeat=6)]
    seen = SeenSequences(controller.num_choices, every[:-1])
    seen.prepare(controller)
    last = controller.sample(3, np.random.default_rng(0), exclude=seen)["actions"]
    assert last.tolist() == [every[-1]] * 3
    sample = controller.sample(1, np.random.default_rng(0), exclude=seen)
    seen.add_scored(sample["actions"][0], sample["step_prob"][0])
    assert seen.exhausted()
    with pytest.raises(ValueError, match="`sequence`"):
        seen.add([0, 1])


def test_from_config_rebuilds_an_equal_controller():
    controller = Controller(NASMacroSpace(num_layers=3), units=8, seed=4, tanh_constant=2.0)
    clone = Controller.from_config(controller.get_config())
    assert clone.get_config() == controller.get_config()
    for a, b in zip(clone.get_weights(), controller.get_weights()):
        np.testing.assert_array_equal(a, b)
