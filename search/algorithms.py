"""Search algorithms: REINFORCE, PPO, random search and regularized evolution.

All implement `SearchAlgorithm` (`nasnet_app.search.base`):

* `propose(num)` returns `num` dicts `{"actions", "arch_key", "extra"}`.
  Within one run an algorithm never proposes an architecture twice (by
  `space.arch_key`) unless it was built with `allow_repeats=True`. The keys it
  proposed are part of its state. A runner that learns of architectures from
  elsewhere (trials in the log after the last checkpoint, a shared cache) calls
  `mark_seen(keys)`; to replace a proposal it does not want, it simply calls
  `propose(1)` again: the rejected key stays seen, so the next one differs.
* `update(trials)` learns from finished `Trial`s (failed ones, with
  `reward=None`, are skipped) and returns a dict of logs; `version` counts
  the updates applied (controller gradient steps for RL).
* `get_state()` / `set_state(state)`: a dict of JSON data and numpy arrays;
  `save_state(path, state)` / `load_state(path)` store it in one `.npz` file,
  atomically.

Example:

>>> from nasnet_app.search.spaces import NASBench201Space
>>> search = RandomSearch(NASBench201Space(), seed=0)
>>> proposals = search.propose(3)
>>> len({p["arch_key"] for p in proposals})
3
"""

import json

import numpy as np

from nasnet_app.genotype import OPS
from nasnet_app.search.base import SearchAlgorithm

STATE_FORMAT = "nasnet_app.search.algorithm/1"


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


class SearchSpaceExhausted(RuntimeError):
    """No architecture that was not proposed before could be found."""


def _json_ready(value):
    """Numpy scalars and tuples to plain JSON types (recursively)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_state(path, state):
    """Writes an algorithm state (`{"json": ..., "arrays": {...}}`) to one `.npz` file."""
    from nasnet_app.io_utils import atomic_path

    arrays = {f"array:{k}": np.asarray(v) for k, v in state.get("arrays", {}).items()}
    text = json.dumps(_json_ready(state["json"]))
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, __json__=np.array(text), **arrays)


def load_state(path):
    """Reads a state written by `save_state`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k[len("array:") :]: data[k] for k in data.files if k.startswith("array:")}
            text = str(data["__json__"])
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"Cannot read search state file {path}: {error}") from None
    return {"json": json.loads(text), "arrays": arrays}


def _check_positive_int(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        _fail(field, "a positive integer", value)
    return int(value)


def _trial_reward(trial):
    """The reward of a finished trial, or `None` if it has none."""
    if getattr(trial, "status", "completed") != "completed" or trial.reward is None:
        return None
    reward = float(trial.reward)
    return reward if np.isfinite(reward) else None


class BaseSearchAlgorithm(SearchAlgorithm):
    """Shared machinery: seeding, never-twice proposals and state framing.

    Args:
        space: a search space (`nasnet_app.search.spaces`).
        seed: seed of the algorithm's random generator (`None`: random).
        allow_repeats: propose architectures already proposed in this run.
        max_tries: how many candidates to draw per requested proposal before
            giving up with `SearchSpaceExhausted`.
    """

    kind = "base"

    def __init__(self, space, seed=None, allow_repeats=False, max_tries=2000):
        super().__init__(space, seed)
        self.allow_repeats = bool(allow_repeats)
        self.max_tries = _check_positive_int("max_tries", max_tries)
        self.rng = np.random.default_rng(seed)
        self.seen = set()  # arch keys
        self.seen_actions = set()  # action tuples of every candidate met

    def mark_seen(self, arch_keys, actions=None):
        """Records architectures that must not be proposed.

        Args:
            arch_keys: `arch_key`s (a string or a list of them).
            actions: optionally their action lists, which lets the RL rules
                leave them out of sampling directly.
        """
        if isinstance(arch_keys, str):
            arch_keys = [arch_keys]
        self.seen.update(str(key) for key in arch_keys)
        for sequence in actions or ():
            self.seen_actions.add(tuple(self.space.check_actions(sequence)))

    def arch_key(self, actions):
        return self.space.arch_key(self.space.decode(actions))

    def propose(self, num):
        num = _check_positive_int("num", num)
        proposals = []
        for attempt in range(self.max_tries):
            for actions, extra in self._candidates(num - len(proposals), attempt):
                actions = [int(a) for a in actions]
                key = self.arch_key(actions)
                self.seen_actions.add(tuple(actions))
                if key in self.seen and not self.allow_repeats:
                    continue
                self.seen.add(key)
                proposals.append({"actions": actions, "arch_key": key, "extra": extra})
                if len(proposals) == num:
                    return proposals
        raise SearchSpaceExhausted(
            f"{type(self).__name__} found only {len(proposals)} of {num} architectures not "
            f"proposed before after {self.max_tries} rounds; the space may be exhausted "
            f"({len(self.seen)} seen)."
        )

    def _candidates(self, num, attempt):
        """Yields `(actions, extra)` candidates; `propose` filters repeats.

        `attempt` counts the rounds of this `propose` call that found too few
        new architectures (a sampler can draw more per round then).
        """
        raise NotImplementedError

    def get_config(self):
        return {"algorithm": self.kind, "seed": self.seed, "allow_repeats": self.allow_repeats}

    def get_state(self):
        return {
            "json": {
                "format": STATE_FORMAT,
                "algorithm": self.kind,
                "ops": list(OPS),
                "space": self.space.get_config(),
                "config": self.get_config(),
                "version": self.version,
                "rng": self.rng.bit_generator.state,
                "seen": sorted(self.seen),
                **self._json_state(),
            },
            "arrays": {"seen_actions": self._seen_actions_array(), **self._array_state()},
        }

    def _seen_actions_array(self):
        length = len(self.space.decisions())
        rows = sorted(self.seen_actions)
        return np.array(rows, np.int64).reshape(len(rows), length)

    def set_state(self, state):
        data = state.get("json") if isinstance(state, dict) else None
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            _fail("state", f"a state dict from get_state() ({STATE_FORMAT})", type(state))
        if data.get("algorithm") != self.kind:
            _fail("state['algorithm']", repr(self.kind), data.get("algorithm"))
        if list(data.get("ops", [])) != list(OPS):
            raise ValueError(
                "The saved search state uses another operation list (OPS order): "
                f"saved {data.get('ops')}, current {list(OPS)}. Action indices would change "
                "meaning; restore it with the code version that wrote it."
            )
        if _json_ready(data.get("space")) != _json_ready(self.space.get_config()):
            raise ValueError(
                "The saved search state belongs to another search space: saved "
                f"{data.get('space')}, current {self.space.get_config()}."
            )
        self.version = int(data["version"])
        self.rng.bit_generator.state = data["rng"]
        self.seen = set(data["seen"])
        arrays = dict(state.get("arrays", {}))
        seen_actions = arrays.pop("seen_actions", np.zeros((0, 0), np.int64))
        self.seen_actions = {tuple(int(a) for a in row) for row in seen_actions}
        self._set_json_state(data)
        self._set_array_state(arrays)

    def _json_state(self):
        return {}

    def _array_state(self):
        return {}

    def _set_json_state(self, data):
        pass

    def _set_array_state(self, arrays):
        pass


class RandomSearch(BaseSearchAlgorithm):
    """Uniform random search over the space's decisions.

    Args: see `BaseSearchAlgorithm`.

    Example:

    >>> from nasnet_app.search.spaces import NASNetCellSpace
    >>> search = RandomSearch(NASNetCellSpace(), seed=1)
    >>> len(search.propose(2)[0]["actions"])
    50
    """

    kind = "random"

    def _candidates(self, num, attempt):
        for _ in range(num):
            yield self.space.random_actions(self.rng), {}

    def update(self, trials):
        return {}


class RegularizedEvolution(BaseSearchAlgorithm):
    """Regularized (aging) evolution (Real et al., 2019, AmoebaNet).

    The first `population_size` proposals are random. After that, each
    proposal mutates the best of `sample_size` members drawn at random from
    the population; every finished trial joins the population and the oldest
    member leaves once it holds more than `population_size`.

    Args:
        space: the search space (its `mutate` changes one decision).
        population_size: P.
        sample_size: S, the tournament size.
        seed, allow_repeats, max_tries: see `BaseSearchAlgorithm`.

    Example:

    >>> from nasnet_app.search.spaces import NASBench201Space
    >>> evolution = RegularizedEvolution(NASBench201Space(), population_size=4, sample_size=2)
    >>> len(evolution.propose(4))
    4
    """

    kind = "evolution"

    def __init__(
        self, space, population_size=20, sample_size=5, seed=None, allow_repeats=False, **kwargs
    ):
        super().__init__(space, seed=seed, allow_repeats=allow_repeats, **kwargs)
        self.population_size = _check_positive_int("population_size", population_size)
        self.sample_size = _check_positive_int("sample_size", sample_size)
        if self.sample_size > self.population_size:
            _fail("sample_size", f"at most population_size={self.population_size}", sample_size)
        self.population = []  # [actions, reward], oldest first
        self.num_proposed = 0

    def _candidates(self, num, attempt):
        for _ in range(num):
            if self.num_proposed < self.population_size or not self.population:
                actions = self.space.random_actions(self.rng)
            else:
                size = min(self.sample_size, len(self.population))
                picks = self.rng.choice(len(self.population), size=size, replace=False)
                parent = max(picks, key=lambda i: self.population[i][1])
                actions = self.population[parent][0]
                # Neighbours all seen: mutate more decisions as attempts fail.
                for _ in range(1 + attempt // 20):
                    actions = self.space.mutate(actions, self.rng)
            yield actions, {}

    def propose(self, num):
        proposals = super().propose(num)
        self.num_proposed += len(proposals)
        return proposals

    def update(self, trials):
        added = 0
        for trial in trials:
            reward = _trial_reward(trial)
            if reward is None:
                continue
            self.population.append([[int(a) for a in trial.actions], reward])
            added += 1
            if len(self.population) > self.population_size:
                self.population.pop(0)
        if added:
            self.version += 1
        best = max((r for _, r in self.population), default=None)
        return {"population": len(self.population), "population_best": best}

    def get_config(self):
        return {
            **super().get_config(),
            "population_size": self.population_size,
            "sample_size": self.sample_size,
        }

    def _json_state(self):
        return {"population": self.population, "num_proposed": self.num_proposed}

    def _set_json_state(self, data):
        self.population = [[list(a), float(r)] for a, r in data["population"]]
        self.num_proposed = int(data["num_proposed"])


ADVANTAGES = ("baseline", "normalized")


class PolicyGradient(BaseSearchAlgorithm):
    """Shared machinery of the controller-based rules (`Reinforce`, `PPO`).

    Args:
        space: the search space.
        controller: a `Controller` (default: one built from the arguments
            below and `seed`).
        units, temperature, tanh_constant: for the default controller.
        max_trials: the run's budget (distinct children); with
            `settings="budget"` it chooses every controller setting left
            `None` below (`budget_settings`; `DEFAULT_MAX_TRIALS` when not
            given).
        settings: `"budget"` (the default) or `"paper"` (`PAPER_SETTINGS`:
            Zoph & Le 2017 / NASNet: Adam 3.5e-4, m = 20, entropy 1e-4,
            baseline decay 0.95, raw advantages).
        learning_rate: Adam learning rate.
        batch_size: m, the children per controller update.
        entropy_weight: beta, the weight of the entropy bonus.
        baseline_decay: decay of the exponential moving average baseline.
        reward_transform: removed: the rewards arrive transformed by the
            search's `Objective` (`nasnet_app.search.base`), the one owner.
        advantage: `"baseline"`: `R - b` (the papers); `"normalized"`:
            `(R - b) / s` with `s` an exponential moving average (same decay)
            of the root mean square of `R - b`, which makes the step size
            independent of the reward scale (a table in percent or in [0, 1],
            a cubed reward) and keeps `entropy_weight` meaningful across them.
        sample_batch: the most sequences sampled per round while samples
            repeat earlier proposals (the first round samples exactly `num`).
            After three such rounds the controller samples without
            replacement (`SeenSequences`): from the policy conditioned on an
            action sequence not met before, so a peaked policy still yields
            new architectures, its most likely unseen ones.
        seed, allow_repeats, max_tries: see `BaseSearchAlgorithm`.

    Trials passed to `update` must carry the proposal's `extra` (PPO needs
    its `log_prob`). Updates happen once `batch_size` rewards are buffered.
    """

    kind = "policy_gradient"
    steps_per_update = 1

    def __init__(
        self,
        space,
        controller=None,
        units=100,
        temperature=None,
        tanh_constant=None,
        learning_rate=None,
        batch_size=None,
        entropy_weight=None,
        baseline_decay=None,
        reward_transform=None,
        advantage=None,
        max_trials=None,
        settings="budget",
        sample_batch=256,
        seed=None,
        allow_repeats=False,
        max_tries=2000,
    ):
        super().__init__(space, seed=seed, allow_repeats=allow_repeats, max_tries=max_tries)
        import keras

        from nasnet_app.search.controller import Controller

        if controller is None:
            controller = Controller(
                space, units=units, temperature=temperature, tanh_constant=tanh_constant, seed=seed
            )
        if controller.space_config != space.get_config():
            _fail("controller", "a Controller built for this space", controller.space_config)
        if reward_transform is not None:
            _fail(
                "reward_transform",
                "None: the transform belongs to the search's Objective "
                '(CellSearch(..., objective=Objective(transform="cube")))',
                reward_transform,
            )
        if settings not in SETTINGS:
            _fail("settings", "'budget' or 'paper'", settings)
        given = {
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "entropy_weight": entropy_weight,
            "baseline_decay": baseline_decay,
            "advantage": advantage,
        }
        if settings == "paper":
            chosen = dict(PAPER_SETTINGS)
        else:
            budget = DEFAULT_MAX_TRIALS if max_trials is None else max_trials
            chosen = budget_settings(self.kind, budget, batch_size, self.steps_per_update)
        chosen.update({k: v for k, v in given.items() if v is not None})
        learning_rate, batch_size, entropy_weight = (
            chosen["learning_rate"],
            chosen["batch_size"],
            chosen["entropy_weight"],
        )
        baseline_decay, advantage = chosen["baseline_decay"], chosen["advantage"]
        if advantage not in ADVANTAGES:
            _fail("advantage", f"one of {', '.join(ADVANTAGES)}", advantage)
        if not 0 <= float(baseline_decay) < 1:
            _fail("baseline_decay", "a number in [0, 1)", baseline_decay)
        if not float(learning_rate) > 0:
            _fail("learning_rate", "a positive number", learning_rate)
        if not float(entropy_weight) >= 0:
            _fail("entropy_weight", "a number >= 0", entropy_weight)
        self.controller = controller
        self.settings, self.max_trials = settings, max_trials
        self.learning_rate = float(learning_rate)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.advantage = advantage
        self.sample_batch = _check_positive_int("sample_batch", sample_batch)
        self._needed_exclusion = False
        self.optimizer = keras.optimizers.Adam(learning_rate=self.learning_rate)
        # Keras 3 needs the slots before the first (possibly distributed) step.
        self.optimizer.build(self.controller.trainable_variables)
        self.baseline = None
        self.scale = None
        self.buffer = []  # [actions, reward, log_prob or None]
        self._train_step = None
        self._weights = None  # numpy copy for sampling; None after each change

    def _candidates(self, num, attempt):
        if self._weights is None:
            self._weights = self.controller.numpy_weights()
        # Once a propose call needed sampling without replacement, the next
        # ones try plain sampling only once (the policy rarely spreads again).
        plain_rounds = 1 if self._needed_exclusion else 3
        if attempt < plain_rounds or self.allow_repeats:
            self._needed_exclusion = False
            count = min(num * 4**attempt, max(num, self.sample_batch))
            sample = self.controller.sample(count, self.rng, weights=self._weights)
            for actions, log_prob in zip(sample["actions"], sample["log_prob"]):
                yield actions.tolist(), {"log_prob": float(log_prob)}
        else:
            self._needed_exclusion = True
            yield from self._fresh_candidates(num)

    def _fresh_candidates(self, num):
        """Samples without replacement: the policy conditioned on unseen sequences."""
        from nasnet_app.search.controller import SeenSequences

        exclude = SeenSequences(self.controller.num_choices, self.seen_actions)
        exclude.prepare(self.controller, self._weights)
        for _ in range(num):
            if exclude.exhausted():
                raise SearchSpaceExhausted(f"All {len(exclude)} action sequences were proposed.")
            sample = self.controller.sample(1, self.rng, weights=self._weights, exclude=exclude)
            exclude.add_scored(sample["actions"][0], sample["step_prob"][0])
            yield sample["actions"][0].tolist(), {"log_prob": float(sample["log_prob"][0])}

    def update(self, trials):
        for trial in trials:
            reward = _trial_reward(trial)
            if reward is None:
                continue
            log_prob = (trial.extra or {}).get("log_prob")
            self.buffer.append([[int(a) for a in trial.actions], reward, log_prob])
        logs = {}
        while len(self.buffer) >= self.batch_size:
            batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
            logs = self._learn(batch)
            self.version += 1
        return logs

    def _advantages(self, rewards):
        rewards = np.asarray(rewards, np.float64)
        if self.baseline is None:
            self.baseline = float(rewards.mean())
            self.scale = float(rewards.std()) or 1.0
        advantages = rewards - self.baseline
        if self.advantage == "normalized":
            advantages = advantages / max(self.scale, 1e-8)
        decay = self.baseline_decay
        for value in rewards:
            deviation = value - self.baseline
            self.scale = float(np.sqrt(decay * self.scale**2 + (1 - decay) * deviation**2))
            self.baseline = decay * self.baseline + (1 - decay) * float(value)
        return advantages.astype(np.float32)

    def _learn(self, batch):
        actions = np.array([b[0] for b in batch], np.int32)
        rewards = [b[1] for b in batch]
        advantages = self._advantages(rewards)
        old = [b[2] for b in batch]
        if any(value is None for value in old):
            old = self.controller(actions)[0].numpy()
        old_log_prob = np.asarray(old, np.float32)
        loss, entropy = self._optimize(actions, advantages, old_log_prob)
        self._weights = None
        return {
            "loss": float(loss),
            "entropy": float(entropy),
            "mean_reward": float(np.mean(rewards)),
            "baseline": self.baseline,
            "version": self.version + 1,
        }

    def _get_train_step(self):
        import tensorflow as tf

        if self._train_step is None:
            variables = self.controller.trainable_variables

            @tf.function(
                autograph=False,  # no tensor-dependent Python control flow; traces faster
                input_signature=[
                    tf.TensorSpec([None, len(self.controller.num_choices)], tf.int32),
                    tf.TensorSpec([None], tf.float32),
                    tf.TensorSpec([None], tf.float32),
                ],
            )
            def step(actions, advantages, old_log_prob):
                with tf.GradientTape() as tape:
                    log_prob, entropy = self.controller.log_prob_and_entropy(actions)
                    policy = self._policy_loss(log_prob, advantages, old_log_prob)
                    loss = policy - self.entropy_weight * tf.reduce_mean(entropy)
                gradients = tape.gradient(loss, variables)
                self.optimizer.apply_gradients(zip(gradients, variables))
                return loss, tf.reduce_mean(entropy)

            self._train_step = step
        return self._train_step

    def _optimize(self, actions, advantages, old_log_prob):
        return self._get_train_step()(actions, advantages, old_log_prob)

    def _policy_loss(self, log_prob, advantages, old_log_prob):
        raise NotImplementedError

    def get_config(self):
        return {
            **super().get_config(),
            "controller": self.controller.get_config(),
            "settings": self.settings,
            "max_trials": self.max_trials,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "entropy_weight": self.entropy_weight,
            "baseline_decay": self.baseline_decay,
            "advantage": self.advantage,
            "sample_batch": self.sample_batch,
        }

    def _json_state(self):
        return {
            "baseline": self.baseline,
            "scale": self.scale,
            "buffer": self.buffer,
            "num_controller_weights": len(self.controller.weights),
            "num_optimizer_variables": len(self.optimizer.variables),
        }

    def _array_state(self):
        arrays = {f"controller/{i}": w for i, w in enumerate(self.controller.get_weights())}
        for i, variable in enumerate(self.optimizer.variables):
            arrays[f"optimizer/{i}"] = np.asarray(variable.numpy())
        return arrays

    def _set_json_state(self, data):
        self.baseline = data["baseline"]
        self.scale = data["scale"]
        self.buffer = [[list(a), float(r), lp] for a, r, lp in data["buffer"]]

    def _set_array_state(self, arrays):
        weights = [arrays.get(f"controller/{i}") for i in range(len(self.controller.weights))]
        slots = [arrays.get(f"optimizer/{i}") for i in range(len(self.optimizer.variables))]
        expected = [tuple(w.shape) for w in self.controller.weights]
        expected += [tuple(v.shape) for v in self.optimizer.variables]
        found = [None if a is None else tuple(a.shape) for a in weights + slots]
        if found != expected or len(arrays) != len(found):
            raise ValueError(
                "The saved controller does not match this one (units or decision heads differ): "
                f"saved array shapes {sorted((k, tuple(v.shape)) for k, v in arrays.items())}, "
                f"expected controller and optimizer shapes {expected}."
            )
        self.controller.set_weights(weights)
        self._weights = None
        for variable, value in zip(self.optimizer.variables, slots):
            variable.assign(value)


class Reinforce(PolicyGradient):
    """REINFORCE with a moving-average baseline (Zoph & Le, 2017).

    Loss per batch of m children: `-mean((R - b) * log p(a)) - beta * mean(H)`.

    Example:

    >>> from nasnet_app.search.spaces import NASBench201Space
    >>> search = Reinforce(NASBench201Space(), batch_size=2, units=16, seed=0)
    >>> proposals = search.propose(2)
    >>> "log_prob" in proposals[0]["extra"]
    True
    """

    kind = "reinforce"

    def _policy_loss(self, log_prob, advantages, old_log_prob):
        import tensorflow as tf

        return -tf.reduce_mean(advantages * log_prob)


class PPO(PolicyGradient):
    """Proximal policy optimisation with the clipped objective (Schulman et al., 2017).

    Each batch of m children is used for `epochs` gradient steps on
    `-mean(min(rho * A, clip(rho, 1 - eps, 1 + eps) * A))`, `rho` the ratio of
    the current to the sampling-time probability (NASNet used PPO).

    Args:
        clip: eps.
        epochs: gradient steps per batch.
        **kwargs: see `PolicyGradient`.

    Example:

    >>> from nasnet_app.search.spaces import NASBench201Space
    >>> search = PPO(NASBench201Space(), batch_size=2, units=16, seed=0)
    >>> search.get_config()["epochs"]
    4
    """

    kind = "ppo"

    def __init__(self, space, clip=0.2, epochs=4, **kwargs):
        self.epochs = self.steps_per_update = _check_positive_int("epochs", epochs)
        if not 0 < float(clip) < 1:
            _fail("clip", "a number in (0, 1)", clip)
        self.clip = float(clip)
        super().__init__(space, **kwargs)

    def _policy_loss(self, log_prob, advantages, old_log_prob):
        import tensorflow as tf

        ratio = tf.exp(log_prob - old_log_prob)
        clipped = tf.clip_by_value(ratio, 1.0 - self.clip, 1.0 + self.clip)
        return -tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))

    def _optimize(self, actions, advantages, old_log_prob):
        for _ in range(self.epochs):
            loss, entropy = super()._optimize(actions, advantages, old_log_prob)
        return loss, entropy

    def get_config(self):
        return {**super().get_config(), "clip": self.clip, "epochs": self.epochs}


# Zoph & Le (2017) / Zoph et al. (2018), sized for thousands of children.
PAPER_SETTINGS = {
    "learning_rate": 3.5e-4,
    "batch_size": 20,
    "entropy_weight": 1e-4,
    "baseline_decay": 0.95,
    "advantage": "baseline",
}
SETTINGS = ("budget", "paper")
# The budget assumed by `Reinforce(space)` / `PPO(space)` when none is given.
DEFAULT_MAX_TRIALS = 200
# The budget rule's constants (see `budget_settings`).
MIN_BATCH, MAX_BATCH, TRIALS_PER_BATCH = 5, 20, 20
POLICY_TRAVEL = 0.5  # learning rate x optimizer steps: the Adam path length of a weight
MAX_LEARNING_RATE = 0.05
ENTROPY_PER_UPDATE = 0.05  # entropy weight x controller updates


def budget_settings(kind, max_trials, batch_size=None, steps_per_update=1):
    """Controller settings chosen from the budget: `max_trials` children, m per update.

    The rule, and why:

    * m (children per update) = `max_trials / 20`, clipped to [5, 20]: a
      budget gets about 20 controller updates (10 at 50 trials, 25 at 500),
      each from at least 5 children (so the baseline and the advantage scale
      are estimated from a batch) and at most the papers' 20.
    * learning rate = `0.5 / steps`, at most 0.05, where steps = updates
      (x `epochs` for PPO): Adam moves each weight by about the learning rate
      per step whatever the gradient's scale, so the product is how far the
      policy can travel over the whole run. The papers' 3.5e-4 suits
      thousands of updates; over 20 it leaves the policy where it started,
      which is random search at the cost of a controller.
    * advantages normalised by a running RMS, `(R - b) / s`: the step no
      longer depends on the reward's scale (accuracy in [0, 1], in percent,
      cubed, a negated loss), so one rule serves every table and objective.
    * entropy weight = `0.05 / updates`: the entropy bonus's total pull over
      the run stays the same whatever the number of updates, so a short run
      and a long one keep the same share of exploration.

    None of it looks at the rewards of a particular table. The constants were
    checked on a noise-perturbed copy of the NAS-Bench-201 CIFAR-10 table
    (`evaluate/benchmarks/proxy_tables.py`), not tuned per table;
    `evaluate/benchmarks/bench_search.py` measures them on any table.

    Args:
        kind: `"reinforce"` or `"ppo"`.
        max_trials: the number of children the run will evaluate.
        batch_size: m, if the user chose it; else it comes from the budget.
        steps_per_update: optimizer steps per update (PPO's `epochs`).

    Example:

    >>> budget_settings("reinforce", 200)["batch_size"]
    10
    """
    if kind not in ("reinforce", "ppo"):
        _fail("kind", "'reinforce' or 'ppo'", kind)
    max_trials = _check_positive_int("max_trials", max_trials)
    if batch_size is None:
        batch_size = min(MAX_BATCH, max(MIN_BATCH, round(max_trials / TRIALS_PER_BATCH)))
    batch_size = _check_positive_int("batch_size", batch_size)
    updates = max(1, max_trials // batch_size)
    steps = updates * _check_positive_int("steps_per_update", steps_per_update)
    return {
        "learning_rate": min(MAX_LEARNING_RATE, POLICY_TRAVEL / steps),
        "batch_size": batch_size,
        "entropy_weight": ENTROPY_PER_UPDATE / updates,
        "baseline_decay": PAPER_SETTINGS["baseline_decay"],
        "advantage": "normalized",
    }


def build_algorithm(
    kind,
    space,
    *,
    max_trials,
    settings="budget",
    seed=None,
    batch_size=None,
    learning_rate=None,
    entropy_weight=None,
):
    """The algorithm the CLI and the benchmarks run: budget-aware unless told otherwise.

    Args:
        kind: `reinforce`, `ppo`, `random` or `evolution`.
        space: the search space.
        max_trials: the run's budget (distinct children).
        settings: `"budget"` (controller settings from `budget_settings`) or
            `"paper"` (`PAPER_SETTINGS`, Zoph & Le 2017 / NASNet).
        seed: the algorithm's seed.
        batch_size, learning_rate, entropy_weight: explicit choices, which
            win over either settings.

    Example:

    >>> from nasnet_app.search.spaces import NASBench201Space
    >>> build_algorithm("ppo", NASBench201Space(), max_trials=100, seed=0).batch_size
    5
    """
    if kind not in ("reinforce", "ppo"):
        return get_algorithm(kind, space, seed=seed)
    return get_algorithm(
        kind,
        space,
        seed=seed,
        max_trials=max_trials,
        settings=settings,
        batch_size=batch_size,
        learning_rate=learning_rate,
        entropy_weight=entropy_weight,
    )


ALGORITHMS = {cls.kind: cls for cls in (Reinforce, PPO, RandomSearch, RegularizedEvolution)}


def get_algorithm(name, space, **kwargs):
    """Builds an algorithm by name: `reinforce`, `ppo`, `random` or `evolution`.

    Example:

    >>> from nasnet_app.search.spaces import NASBench201Space
    >>> type(get_algorithm("random", NASBench201Space(), seed=0)).__name__
    'RandomSearch'
    """
    if name not in ALGORITHMS:
        _fail("algorithm", f"one of {', '.join(ALGORITHMS)}", name)
    return ALGORITHMS[name](space, **kwargs)
