"""The RNN controller of NAS (Zoph & Le, 2017; Zoph et al., 2018).

An LSTM reads the embedding of the previous decision and emits the logits of
the next one through the softmax head of that decision's type. Heads and
embeddings are shared by all decisions of a type; choices above a decision's
`num_choices` are masked out. Logits are optionally divided by a temperature
and squashed as `tanh_constant * tanh(logits)` (ENAS).

Decisions that a space marks in `attention_keys()` (the skip connections of
the macro space) are taken by anchor-point attention instead:
`p(connect) = sigmoid(v . tanh(W_prev h_key + W_curr h))`, where `h_key` is the
LSTM output after the key decision (the anchor of an earlier layer) and `h`
the current one. They do not step the LSTM; after a run of them the next
input is the mean of the selected anchors, `sum(selected) / (1 + count)`.

Sampling runs in numpy on a copy of the weights (a few microseconds per
decision for a batch), so that tens of thousands of sequences are cheap;
`log_prob_and_entropy` (also `call`) scores given sequences differentiably
with TensorFlow for the update rules.

Example:

>>> import numpy as np
>>> from nasnet_app.search.spaces import NASBench201Space
>>> controller = Controller(NASBench201Space(), units=16, seed=0)
>>> sample = controller.sample(4, np.random.default_rng(0))
>>> sample["actions"].shape
(4, 6)
>>> log_prob, entropy = controller(sample["actions"])
>>> bool(np.allclose(log_prob, sample["log_prob"], atol=1e-4))
True
"""

import math

import keras
import numpy as np
import tensorflow as tf

NEG_INF = -1e9


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class Controller(keras.Model):
    """An LSTM policy over a search space's decision sequence.

    Args:
        space: the search space (`decisions()`, optional `attention_keys()`).
        units: LSTM units (NASNet: 100); embeddings have the same size.
        temperature: divide logits by this (`None`: 1).
        tanh_constant: if set, logits become `tanh_constant * tanh(logits)`.
        op_tanh_reduce: if set (ENAS micro: 2.5), decisions of type `"op"`
            use `tanh_constant / op_tanh_reduce` instead, a flatter policy
            over operations than over inputs.
        init_range: weights start uniform in `[-init_range, init_range]`.
        seed: seed of the weight initialisation.

    Example:

    >>> from nasnet_app.search.spaces import NASNetCellSpace
    >>> controller = Controller(NASNetCellSpace(num_blocks=2), seed=0)
    >>> controller.head_widths
    {'input': 3, 'op': 13, 'combine': 2}
    """

    def __init__(
        self,
        space,
        units=100,
        temperature=None,
        tanh_constant=None,
        init_range=0.1,
        op_tanh_reduce=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        decisions = list(space.decisions())
        if not decisions:
            _fail("space.decisions()", "a non-empty list", decisions)
        for index, decision in enumerate(decisions):
            if len(decision) != 2 or not isinstance(decision[0], str) or int(decision[1]) < 1:
                _fail(f"decisions[{index}]", "a pair (type name, num_choices >= 1)", decision)
        keys = getattr(space, "attention_keys", lambda: [None] * len(decisions))()
        self._check_keys(keys, decisions)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            _fail("units", "a positive integer", units)
        if temperature is not None and not (float(temperature) > 0):
            _fail("temperature", "None or a positive number", temperature)
        if tanh_constant is not None and not (float(tanh_constant) > 0):
            _fail("tanh_constant", "None or a positive number", tanh_constant)
        self.space_config = space.get_config()
        self.decision_types = [str(t) for t, _ in decisions]
        self.num_choices = [int(n) for _, n in decisions]
        self.attention_keys = list(keys)
        self.units = units
        self.temperature = None if temperature is None else float(temperature)
        self.tanh_constant = None if tanh_constant is None else float(tanh_constant)
        if op_tanh_reduce is not None and not (float(op_tanh_reduce) > 0):
            _fail("op_tanh_reduce", "None or a positive number", op_tanh_reduce)
        self.op_tanh_reduce = None if op_tanh_reduce is None else float(op_tanh_reduce)
        self.init_range = float(init_range)
        self.seed = seed
        self.head_widths = {}
        for (kind, num), key in zip(decisions, keys):
            if key is None:
                self.head_widths[kind] = max(self.head_widths.get(kind, 0), int(num))
        self._build_weights()

    @staticmethod
    def _check_keys(keys, decisions):
        if len(keys) != len(decisions):
            _fail("attention_keys()", f"a list of {len(decisions)} entries", keys)
        for index, key in enumerate(keys):
            if key is None:
                continue
            if decisions[index][1] != 2 or not 0 <= key < index or keys[key] is not None:
                _fail(
                    f"attention_keys()[{index}]",
                    "the index of an earlier softmax decision, on a 2-choice decision",
                    key,
                )

    def _build_weights(self):
        init = keras.initializers.RandomUniform(-self.init_range, self.init_range, seed=self.seed)
        units = self.units

        def weight(name, shape, initializer=init):
            return self.add_weight(shape=shape, initializer=initializer, name=name)

        self.go = weight("go", (1, units))
        self.lstm_kernel = weight("lstm_kernel", (units, 4 * units))
        self.lstm_recurrent = weight("lstm_recurrent_kernel", (units, 4 * units))
        self.lstm_bias = weight("lstm_bias", (4 * units,), "zeros")
        self.embeddings, self.head_kernels, self.head_biases = {}, {}, {}
        for kind, width in self.head_widths.items():
            self.embeddings[kind] = weight(f"{kind}_embedding", (width, units))
            self.head_kernels[kind] = weight(f"{kind}_head_kernel", (units, width))
            self.head_biases[kind] = weight(f"{kind}_head_bias", (width,), "zeros")
        self.has_attention = any(key is not None for key in self.attention_keys)
        if self.has_attention:
            self.attention_prev = weight("attention_prev", (units, units))
            self.attention_curr = weight("attention_curr", (units, units))
            self.attention_v = weight("attention_v", (units,))
        self.built = True

    # ---- shared pieces ------------------------------------------------
    def _masks(self):
        """Per softmax decision: an additive mask over its head width."""
        masks = []
        for kind, num, key in zip(self.decision_types, self.num_choices, self.attention_keys):
            width = 2 if key is not None else self.head_widths[kind]
            mask = np.zeros(width, np.float32)
            mask[num:] = NEG_INF
            masks.append(mask)
        return masks

    def _ends_attention_run(self, index):
        """True if decision `index` is attention and the next one is not."""
        if self.attention_keys[index] is None:
            return False
        return index + 1 == len(self.attention_keys) or self.attention_keys[index + 1] is None

    # ---- numpy sampling -------------------------------------------------
    def numpy_weights(self):
        """The weights as float32 numpy arrays, for `sample(..., weights=...)`.

        Reading them costs about a millisecond; a caller that samples often
        between updates reads them once and passes them on. The input
        projection of every embedding row is precomputed (`x @ kernel`).
        """

        def get(variable):
            return np.asarray(variable.numpy(), np.float32)

        kernel = get(self.lstm_kernel)
        view = {
            "go": get(self.go) @ kernel,
            "recurrent": get(self.lstm_recurrent),
            "bias": get(self.lstm_bias),
            "kernel": kernel,
            "embedding": {k: get(v) @ kernel for k, v in self.embeddings.items()},
            "head_kernel": {k: get(v) for k, v in self.head_kernels.items()},
            "head_bias": {k: get(v) for k, v in self.head_biases.items()},
        }
        if self.has_attention:
            view["prev"] = get(self.attention_prev)
            view["curr"] = get(self.attention_curr)
            view["v"] = get(self.attention_v)
        return view

    def _tanh_for(self, kind):
        if self.tanh_constant is not None and self.op_tanh_reduce is not None and kind == "op":
            return self.tanh_constant / self.op_tanh_reduce
        return self.tanh_constant

    def _process_logits_np(self, logits, mask, kind=None):
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self._tanh_for(kind) * np.tanh(logits)
        return logits + mask

    def sample(self, num, rng, weights=None, exclude=None):
        """Samples `num` sequences with numpy.

        Args:
            num: how many sequences.
            rng: a `numpy.random.Generator` (sampling is deterministic given it).
            weights: `numpy_weights()` read since the last change of the
                weights (default: read now).
            exclude: a `SeenSequences` prepared for these weights: sample from
                the policy conditioned on not drawing any of its sequences.

        Returns:
            A dict: `actions` (int array `(num, T)`), `log_prob` and `entropy`
            (float arrays `(num,)`, summed over the decisions, of the policy
            itself, not of the conditioned one).
        """
        w = self.numpy_weights() if weights is None else weights
        return self._rollout(num, w, rng=rng, exclude=exclude)

    def step_probabilities(self, actions, weights=None):
        """Per decision, the probability of the given action: float array `(N, T)`."""
        w = self.numpy_weights() if weights is None else weights
        actions = np.asarray(actions, np.int64).reshape(-1, len(self.num_choices))
        return self._rollout(len(actions), w, forced=actions)["step_prob"]

    def _rollout(self, num, w, rng=None, forced=None, exclude=None):
        units = self.units
        x = np.repeat(w["go"], num, axis=0)  # inputs already projected by the kernel
        h = np.zeros((num, units), np.float32)
        c = np.zeros((num, units), np.float32)
        anchors = {}
        actions = np.zeros((num, len(self.num_choices)), np.int64)
        step_prob = np.zeros((num, len(self.num_choices)))
        entropy = np.zeros(num)
        pending_sum, pending_count = np.zeros((num, units), np.float32), np.zeros((num, 1))
        rows = np.arange(num)
        for index, (kind, mask) in enumerate(zip(self.decision_types, self._masks())):
            key = self.attention_keys[index]
            if key is None:
                gates = x + h @ w["recurrent"] + w["bias"]
                i, f, g, o = np.split(gates, 4, axis=1)
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                h = _sigmoid(o) * np.tanh(c)
                anchors[index] = h
                logits = h @ w["head_kernel"][kind] + w["head_bias"][kind]
            else:
                score = np.tanh(anchors[key] @ w["prev"] + h @ w["curr"]) @ w["v"]
                logits = np.stack([np.zeros(num, np.float32), score], axis=1)
            # Probabilities in float64: log-probabilities of long sequences add up.
            logits = self._process_logits_np(logits.astype(np.float64), mask, kind)
            logits = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            if forced is not None:
                chosen = forced[:, index]
            else:
                target = probs if exclude is None else exclude.adjust(index, actions, probs)
                cumulative = np.cumsum(target, axis=1)
                draws = rng.random((num, 1)) * cumulative[:, -1:]
                chosen = np.minimum((cumulative <= draws).sum(axis=1), self.num_choices[index] - 1)
            actions[:, index] = chosen
            step_prob[:, index] = probs[rows, chosen]
            log_p = np.log(np.maximum(probs, 1e-30))
            entropy -= np.sum(np.where(probs > 0, probs * log_p, 0.0), axis=1)
            if key is None:
                x = w["embedding"][kind][chosen]
            else:
                pending_sum += anchors[key] * chosen[:, None]
                pending_count += chosen[:, None]
                if self._ends_attention_run(index):
                    x = (pending_sum / (1.0 + pending_count)).astype(np.float32) @ w["kernel"]
                    pending_sum = np.zeros((num, units), np.float32)
                    pending_count = np.zeros((num, 1))
        log_prob = np.sum(np.log(np.maximum(step_prob, 1e-30)), axis=1)
        return {
            "actions": actions,
            "log_prob": log_prob,
            "entropy": entropy,
            "step_prob": step_prob,
        }

    # ---- differentiable scoring -----------------------------------------
    def _process_logits_tf(self, logits, mask, kind=None):
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self._tanh_for(kind) * tf.tanh(logits)
        return logits + mask

    def call(self, actions):
        """Returns `(log_prob, entropy)` of given sequences (int `(N, T)`), differentiable."""
        return self.log_prob_and_entropy(actions)

    def log_prob_and_entropy(self, actions):
        actions = tf.convert_to_tensor(actions)
        actions = tf.cast(actions, tf.int32)
        num = tf.shape(actions)[0]
        units = self.units
        x = tf.tile(self.go, [num, 1])
        h = tf.zeros([num, units])
        c = tf.zeros([num, units])
        anchors = {}
        log_prob = tf.zeros([num])
        entropy = tf.zeros([num])
        pending_sum, pending_count = tf.zeros([num, units]), tf.zeros([num, 1])
        for index, (kind, mask) in enumerate(zip(self.decision_types, self._masks())):
            key = self.attention_keys[index]
            if key is None:
                gates = x @ self.lstm_kernel + h @ self.lstm_recurrent + self.lstm_bias
                i, f, g, o = tf.split(gates, 4, axis=1)
                c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
                h = tf.sigmoid(o) * tf.tanh(c)
                anchors[index] = h
                logits = h @ self.head_kernels[kind] + self.head_biases[kind]
            else:
                hidden = tf.tanh(anchors[key] @ self.attention_prev + h @ self.attention_curr)
                score = tf.reduce_sum(hidden * self.attention_v, axis=1)
                logits = tf.stack([tf.zeros_like(score), score], axis=1)
            log_p = tf.nn.log_softmax(self._process_logits_tf(logits, tf.constant(mask), kind))
            chosen = actions[:, index]
            log_prob += tf.gather(log_p, chosen, axis=1, batch_dims=1)
            entropy -= tf.reduce_sum(tf.exp(log_p) * log_p, axis=1)
            if key is None:
                x = tf.gather(self.embeddings[kind], chosen)
            else:
                selected = tf.cast(chosen, tf.float32)[:, None]
                pending_sum += anchors[key] * selected
                pending_count += selected
                if self._ends_attention_run(index):
                    x = pending_sum / (1.0 + pending_count)
                    pending_sum, pending_count = tf.zeros([num, units]), tf.zeros([num, 1])
        return log_prob, entropy

    def get_config(self):
        return {
            "units": self.units,
            "temperature": self.temperature,
            "tanh_constant": self.tanh_constant,
            "op_tanh_reduce": self.op_tanh_reduce,
            "init_range": self.init_range,
            "seed": self.seed,
            "space": self.space_config,
            "decisions": [list(d) for d in zip(self.decision_types, self.num_choices)],
            "attention_keys": self.attention_keys,
        }

    @classmethod
    def from_config(cls, config):
        from nasnet_app.search.spaces import space_from_config

        config = dict(config)
        space = space_from_config(config.pop("space"))
        config.pop("decisions", None)
        config.pop("attention_keys", None)
        return cls(space, **config)


class SeenSequences:
    """Sequences to leave out of sampling: exact sampling without replacement.

    `prepare(controller, weights)` scores the seen sequences under the current
    policy; the sampler then draws each decision from the policy reweighted by
    the mass not yet seen below each choice, which is exactly the policy
    conditioned on producing an unseen sequence (however peaked it is).

    Args:
        num_choices: the valid choices per decision.
        sequences: an iterable of action sequences.

    Example:

    >>> import numpy as np
    >>> from nasnet_app.search.spaces import NASBench201Space
    >>> controller = Controller(NASBench201Space(), units=8, seed=0)
    >>> seen = SeenSequences(controller.num_choices, [[0] * 6])
    >>> seen.prepare(controller)
    >>> sample = controller.sample(3, np.random.default_rng(0), exclude=seen)
    >>> [0] * 6 in sample["actions"].tolist()
    False
    """

    def __init__(self, num_choices, sequences=()):
        self.num_choices = [int(n) for n in num_choices]
        self.sequences = set()
        for sequence in sequences:
            self.add(sequence)
        self.mass, self.count = {}, {}
        # Leaves below a prefix of length d: prod(num_choices[d:]).
        self.leaves = [math.prod(self.num_choices[d:]) for d in range(len(self.num_choices) + 1)]

    def add(self, sequence):
        sequence = tuple(int(a) for a in sequence)
        if len(sequence) != len(self.num_choices):
            _fail("sequence", f"a list of {len(self.num_choices)} actions", sequence)
        self.sequences.add(sequence)

    def __len__(self):
        return len(self.sequences)

    def exhausted(self):
        return len(self.sequences) >= self.leaves[0]

    def prepare(self, controller, weights=None):
        """Scores the seen sequences under the controller's current policy."""
        self.mass, self.count = {}, {}
        if not self.sequences:
            return
        sequences = sorted(self.sequences)
        probs = controller.step_probabilities(sequences, weights)
        for sequence, step_prob in zip(sequences, probs):
            self._add_mass(sequence, step_prob)

    def add_scored(self, sequence, step_prob):
        """Adds a sequence after `prepare`, with its per-decision probabilities
        under the same policy (`sample(...)["step_prob"]`)."""
        sequence = tuple(int(a) for a in sequence)
        if sequence not in self.sequences:
            self.add(sequence)
            self._add_mass(sequence, step_prob)

    def _add_mass(self, sequence, step_prob):
        length = len(self.num_choices)
        # suffix[d]: the probability of completing the sequence from its prefix of length d.
        suffix = np.ones(length + 1)
        suffix[:length] = np.cumprod(np.asarray(step_prob, np.float64)[::-1])[::-1]
        for depth in range(1, length + 1):
            prefix = sequence[:depth]
            self.mass[prefix] = self.mass.get(prefix, 0.0) + suffix[depth]
            self.count[prefix] = self.count.get(prefix, 0) + 1

    def adjust(self, index, actions, probs):
        """Reweights the decision-`index` probabilities of each row by unseen mass."""
        adjusted = probs.copy()
        valid = self.num_choices[index]
        for row in range(len(actions)):
            prefix = tuple(actions[row, :index].tolist())
            for choice in range(valid):
                child = prefix + (choice,)
                if self.count.get(child, 0) >= self.leaves[index + 1]:
                    adjusted[row, choice] = 0.0
                else:
                    adjusted[row, choice] *= max(0.0, 1.0 - self.mass.get(child, 0.0))
            adjusted[row, valid:] = 0.0
            if not adjusted[row].sum() > 0:
                # Unseen mass below float precision: any choice with unseen leaves.
                for choice in range(valid):
                    child = prefix + (choice,)
                    adjusted[row, choice] = float(self.count.get(child, 0) < self.leaves[index + 1])
        return adjusted
