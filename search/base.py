"""The contracts of the search module.

The search algorithm proposes, the evaluator measures; they meet only through
`Trial` records, which are also the run log on disk (`trials.jsonl`).

* `SearchSpace`: a sequence of categorical decisions and how to decode it into
  an architecture (a `Genotype`, an arch string, ...). Pure data, no training.
* `SearchAlgorithm`: proposes action sequences and learns from finished
  trials (REINFORCE, PPO, random search, regularized evolution). It never
  trains children.
* `Evaluator`: turns one architecture into a reward (child training, or a
  table look-up). It never touches the algorithm.
"""

import dataclasses
import time


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


class Evaluator:
    """Turns one architecture into a reward.

    `evaluate` returns a dict with at least `reward` (float) and optionally
    `metrics` (dict). It raises on failure; the search records the error.
    """

    def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
        raise NotImplementedError

    def get_config(self):
        return {}
