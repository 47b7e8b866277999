"""The contracts of the search module.

The search algorithm proposes, the evaluator measures; they meet only through
`Trial` records, which are also the run log on disk (`trials.jsonl`).

* `SearchSpace`: a sequence of categorical decisions and how to decode it into
  an architecture (a `Genotype`, an arch string, ...). Pure data, no training.
* `SearchAlgorithm`: proposes action sequences and learns from finished
  trials (REINFORCE, PPO, random search, regularized evolution). It never
  trains children.
* `Evaluator`: measures one architecture (child training, or a table
  look-up): it reports raw metrics and never transforms them. It never
  touches the algorithm.
* `Objective`: what the search maximises: which metric, its direction and
  its transform (KerasTuner's `Objective`, plus Zoph & Le's cubed reward).
  `CellSearch` owns one and applies it exactly once, when a trial finishes;
  the run records it (`run.json`, `summary.json`).
"""

import dataclasses
import time

# The one definition of the reward transforms.
TRANSFORMS = {
    "identity": lambda value: value,
    "cube": lambda value: value**3,  # Zoph & Le (2017): sharpens differences near the top
}
DIRECTIONS = ("max", "min")


@dataclasses.dataclass
class Trial:
    """One evaluated architecture: the record both sides agree on.

    Args:
        trial_id: 0, 1, ... in the order trials finish in the run log.
        actions: the decision sequence (integers) the algorithm proposed.
        architecture: the decoded architecture as JSON data (a genotype dict,
            a NAS-Bench-201 arch string, a macro-architecture dict).
        arch_key: a string equal for equivalent architectures (cache key).
        status: `"pending"`, `"running"`, `"completed"` or `"failed"`.
        reward: the reward the algorithm learns from (`None` if failed).
        metrics: anything measured (accuracies per epoch, parameters, ...).
        error: the error message of a failed trial.
        seed: the seed the child was trained with.
        cached: `True` when the reward came from the cache, not a new run.
        policy_version: the algorithm's update count when it was proposed
            (lets asynchronous executors measure staleness).
        extra: algorithm-private data (e.g. the log-probability for PPO).
    """

    trial_id: int
    actions: list
    architecture: object
    arch_key: str
    status: str = "pending"
    reward: float | None = None
    metrics: dict = dataclasses.field(default_factory=dict)
    error: str | None = None
    seed: int = 0
    cached: bool = False
    policy_version: int = 0
    extra: dict = dataclasses.field(default_factory=dict)
    start_time: float = dataclasses.field(default_factory=time.time)
    end_time: float | None = None

    STATUSES = ("pending", "running", "completed", "failed")

    def __post_init__(self):
        if self.status not in self.STATUSES:
            raise ValueError(
                f"`status` must be one of {', '.join(self.STATUSES)}. Received: status={self.status!r}"
            )

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["genotype"] = data.pop("architecture")
        return data

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data["architecture"] = data.pop("genotype")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class SearchSpace:
    """A search space: categorical decisions decoded into an architecture.

    Subclasses set `name` and implement `decisions`, `decode`, `encode`,
    `arch_key` and `to_data`.
    """

    name = "base"

    def decisions(self):
        """A list of `(decision_type, num_choices)`, one per decision, in order.

        Decisions of the same type share one softmax head in the controller.
        """
        raise NotImplementedError

    def attention_keys(self):
        """Optional: per decision, `None` or a key grouping anchor-point (skip) decisions.

        The controller reads it with `getattr`; the default is no attention.
        """
        return [None] * len(self.decisions())

    def decode(self, actions):
        """Turns a list of integer actions into an architecture object."""
        raise NotImplementedError

    def encode(self, architecture):
        """The inverse of `decode`."""
        raise NotImplementedError

    def arch_key(self, architecture):
        """A string equal for functionally equivalent architectures."""
        raise NotImplementedError

    def to_data(self, architecture):
        """The architecture as JSON data (what `Trial.architecture` holds)."""
        raise NotImplementedError

    def from_data(self, data):
        """The inverse of `to_data`."""
        raise NotImplementedError

    def get_config(self):
        return {}


class SearchAlgorithm:
    """Proposes architectures and learns from finished trials.

    State is saved and restored with `get_state` / `set_state` (JSON data plus
    numpy arrays), like KerasTuner oracles.
    """

    def __init__(self, space, seed=None):
        self.space = space
        self.seed = seed
        self.version = 0  # number of updates applied

    def propose(self, num):
        """Returns `num` proposals: dicts with `actions` and optional `extra`."""
        raise NotImplementedError

    def update(self, trials):
        """Learns from finished trials; returns a dict of logs."""
        raise NotImplementedError

    def get_state(self):
        raise NotImplementedError

    def set_state(self, state):
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the search maximises: a metric, its direction and its transform.

    The trial's reward, the number every algorithm learns from, is
    `transform(value)` for `direction="max"` and `-transform(value)` for
    `"min"`, where `value` is the evaluator's raw `reward` (`name="reward"`,
    the default: a child's validation accuracy, a table's accuracy as a
    fraction) or one of its `metrics` (any other `name`, which must hold a
    number). The raw value stays in the trial's metrics.

    Args:
        name: `"reward"` or the key of a metric the evaluator reports.
        direction: `"max"` or `"min"` (a loss, a latency).
        transform: `"identity"` or `"cube"` (Zoph & Le 2017).

    Example:

    >>> Objective(transform="cube").reward(0.9, {})
    0.7290000000000001
    >>> Objective("val_loss", "min").reward(0.9, {"val_loss": 0.25})
    -0.25
    """

    name: str = "reward"
    direction: str = "max"
    transform: str = "identity"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"`name` must be a metric name. Received: name={self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"`direction` must be 'max' or 'min'. Received: direction={self.direction!r}"
            )
        if self.transform not in TRANSFORMS:
            raise ValueError(
                f"`transform` must be one of {', '.join(TRANSFORMS)}. "
                f"Received: transform={self.transform!r}"
            )

    def value(self, reward, metrics):
        """The raw objective value of an evaluator's result."""
        if self.name == "reward":
            return float(reward)
        value = (metrics or {}).get(self.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f"The objective `{self.name}` must be a number among the evaluator's metrics. "
                f"Received: metrics keys {sorted(metrics or {})}"
            )
        return float(value)

    def reward(self, reward, metrics):
        """The reward algorithms learn from, from an evaluator's `reward` and `metrics`."""
        value = TRANSFORMS[self.transform](self.value(reward, metrics))
        return value if self.direction == "max" else -value

    def get_config(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config):
        if isinstance(config, Objective):
            return config
        if isinstance(config, str):
            return cls(config)
        if not isinstance(config, dict) or set(config) - {"name", "direction", "transform"}:
            raise ValueError(
                "`objective` must be an Objective, a metric name or a dict with keys name, "
                f"direction and transform. Received: objective={config!r}"
            )
        return cls(**config)

    @classmethod
    def of_legacy_run(cls, info):
        """The objective of a run written before objectives were recorded (`run.json`).

        Such runs transformed the reward inside the evaluator (`ChildTrainer`,
        `reward_transform` None / "none" / "cube") or the algorithm
        (`reward_transform` "identity" / "cube"); both at once cannot be
        expressed as one objective.
        """
        transforms = [
            (info.get(key) or {}).get("reward_transform")
            for key in ("evaluator_config", "algorithm_config")
        ]
        cubed = [t for t in transforms if t not in (None, "none", "identity")]
        if any(t != "cube" for t in cubed) or len(cubed) > 1:
            raise ValueError(
                f"The run's reward transforms ({transforms}) cannot be expressed as one "
                "objective; finish it with the code version that started it."
            )
        return cls(transform="cube" if cubed else "identity")


class Evaluator:
    """Measures one architecture.

    `evaluate` returns a dict with at least `reward` (float: the raw primary
    metric, e.g. a validation accuracy, never transformed: the search's
    `Objective` does that) and optionally `metrics` (dict). It raises on
    failure; the search records the error.
    """

    def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
        raise NotImplementedError

    def get_config(self):
        return {}
