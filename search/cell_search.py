"""`CellSearch`: propose, evaluate, learn; a `fit`-like loop with a resumable run log.

The loop asks the search algorithm for proposals, decodes each into a `Trial`,
answers architectures evaluated before from a cache (not retrained, not
counted against `max_trials`), hands the rest to an executor, logs every
finished trial and feeds finished trials back to the algorithm.

Updates:

* synchronous (default): the algorithm proposes a batch of `batch_size`
  children, all of them are evaluated (in parallel when the executor has
  room), then one update. This is the papers' scheme and is reproducible.
* asynchronous: whenever the executor has a free slot, the current policy
  proposes one more child; an update happens every `batch_size` finished
  trials. A trial's staleness is the number of updates between its proposal
  and the update that uses it (`Trial.policy_version`); trials staler than
  `max_staleness` are logged and cached but left out of the update
  (`None`: every trial is used). Update logs report `mean_staleness` and
  `num_stale`.

Resume rule (`directory` + `resume=True`): the runner checkpoints the
algorithm's state together with the proposals not finished yet, right after
every `propose` (before any of them runs) and after every `update`. Every
finished trial is in `trials.jsonl` with its `proposal_id`. On resume the
algorithm state is restored; the logged trials after the last update (those
the algorithm has not learnt from) are put back into the update buffer; the
checkpointed proposals that are not in the log are evaluated again (a child
killed mid-training restarts from scratch). So no finished trial is lost or
logged twice, and a deterministic algorithm continues exactly the search it
would have run without the kill.

Example:

>>> from nasnet_app.search import algorithms, spaces
>>> from nasnet_app.search.base import Evaluator
>>> class CountConvs(Evaluator):
...     def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
...         return {"reward": float(architecture.count("conv"))}
>>> space = spaces.NASBench201Space()
>>> search = CellSearch(space, algorithms.RandomSearch(space, seed=0), CountConvs())
>>> history = search.search(max_trials=5, batch_size=2, verbose=0)
>>> len(history.trials), history.best_trial.reward == max(history.history["reward"])
(5, True)
"""

import dataclasses
import json
import random
import sys
import time

from nasnet_app.search.base import Objective, Trial
from nasnet_app.search.callbacks import CallbackList
from nasnet_app.search.executors import InProcessExecutor
from nasnet_app.search.run_directory import TRIALS_FILE, RunDirectory, json_safe


def _fail(field, expectation, value):
    raise ValueError(f"`{field}` must be {expectation}. Received: {field}={value!r}")


def _check_int(field, value, minimum=1, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(field, f"an integer >= {minimum}" + (" or None" if allow_none else ""), value)
    return value


def child_seed(run_seed, proposal_id):
    """The training seed of a child: fixed by the run's seed and its proposal."""
    return (int(run_seed) * 1_000_003 + int(proposal_id)) % (2**31 - 1)


class SearchHistory:
    """The result of `CellSearch.search`, like Keras' `History`.

    Attributes:
        trials: every finished `Trial`, in log order (`trial_id` 0, 1, ...).
        history: per-trial lists `reward` (`None` when failed),
            `best_reward` (best so far), `status` and `cached`.
        updates: the logs of every algorithm update of this session.
        directory: the run folder (or `None`).
        stop_reason: why the search stopped before `max_trials` (or `None`).
    """

    def __init__(self, directory=None):
        self.trials = []
        self.history = {"reward": [], "best_reward": [], "status": [], "cached": []}
        self.updates = []
        self.directory = directory
        self.stop_reason = None
        self._best = None

    def append(self, trial):
        self.trials.append(trial)
        if trial.status == "completed" and (self._best is None or trial.reward > self._best.reward):
            self._best = trial
        self.history["reward"].append(trial.reward)
        self.history["best_reward"].append(self.best_reward)
        self.history["status"].append(trial.status)
        self.history["cached"].append(trial.cached)

    @property
    def best_trial(self):
        """The completed trial with the highest reward (the first one on ties)."""
        return self._best

    @property
    def best_reward(self):
        return None if self._best is None else self._best.reward

    @property
    def num_evaluated(self):
        """Distinct architectures evaluated (completed or failed, not cached)."""
        return sum(not t.cached for t in self.trials)

    def summary(self):
        return {
            "num_trials": len(self.trials),
            "num_evaluated": self.num_evaluated,
            "num_completed": sum(t.status == "completed" for t in self.trials),
            "num_failed": sum(t.status == "failed" and not t.cached for t in self.trials),
            "num_cached": sum(t.cached for t in self.trials),
            "best_reward": self.best_reward,
            "best_trial": None if self._best is None else self._best.to_dict(),
        }


class ProgressBar:
    """A one-line progress bar: distinct trials, best reward, failures, ETA.

    Args:
        target: `max_trials`.
        initial: trials already done (a resumed run); ETA uses this session's rate.
        stream: where to write (default `sys.stdout`).
        per_line: one line per update instead of redrawing one line.
    """

    def __init__(self, target, initial=0, stream=None, per_line=False, width=24):
        self.target, self.initial, self.width = target, initial, width
        self.stream = stream or sys.stdout
        self.per_line = per_line or not getattr(self.stream, "isatty", lambda: False)()
        self.start = time.time()

    def update(self, current, best, failed, cached):
        done = min(current, self.target)
        filled = int(self.width * done / max(self.target, 1))
        bar = "=" * filled + "." * (self.width - filled)
        best_text = "-" if best is None else f"{best:.4f}"
        line = (
            f"{done}/{self.target} [{bar}] best {best_text} - failed {failed} - "
            f"cached {cached} - {self._eta(current)}"
        )
        self.stream.write(line + "\n" if self.per_line else "\r" + line)
        self.stream.flush()

    def _eta(self, current):
        elapsed = time.time() - self.start
        if current >= self.target:
            return f"{_clock(elapsed)} elapsed"
        if current <= self.initial:
            return "ETA ?"
        rate = elapsed / (current - self.initial)
        return f"ETA {_clock(rate * (self.target - current))}"

    def close(self):
        if not self.per_line:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class CellSearch:
    """Architecture search: a space, an algorithm that proposes, an evaluator that measures.

    Args:
        space: a `SearchSpace` (`nasnet_app.search.spaces`).
        algorithm: a `SearchAlgorithm` (REINFORCE, PPO, random, evolution).
        evaluator: an `Evaluator` (`ChildTrainer`, `TabularEvaluator`, ...).
        executor: where children run (default `InProcessExecutor()`).
        objective: an `Objective` (or its name or config dict): the metric,
            direction and transform that turn an evaluator's raw result into
            the trial's reward, applied once per evaluated child. Default: the
            evaluator's `reward`, maximised, untransformed.

    Example:

    >>> from nasnet_app.search import algorithms, spaces
    >>> from nasnet_app.search.base import Evaluator
    >>> class Skips(Evaluator):
    ...     def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
    ...         return {"reward": architecture.count("skip")}
    >>> space = spaces.NASBench201Space()
    >>> search = CellSearch(space, algorithms.RandomSearch(space, seed=1), Skips())
    >>> search.search(max_trials=3, verbose=0).history["status"]
    ['completed', 'completed', 'completed']
    """

    def __init__(self, space, algorithm, evaluator, executor=None, objective=None):
        for name, value, methods in (
            ("space", space, ("decode", "to_data", "arch_key", "get_config")),
            ("algorithm", algorithm, ("propose", "update", "get_state", "set_state")),
            ("evaluator", evaluator, ("evaluate",)),
        ):
            missing = [m for m in methods if not callable(getattr(value, m, None))]
            if missing:
                _fail(name, f"an object with methods {', '.join(methods)}", value)
        if executor is None:
            executor = InProcessExecutor()
        if not all(callable(getattr(executor, m, None)) for m in ("submit", "collect", "start")):
            _fail("executor", "an Executor (nasnet_app.search.executors)", executor)
        self.space, self.algorithm, self.evaluator = space, algorithm, evaluator
        self.executor = executor
        self.objective = Objective() if objective is None else Objective.from_config(objective)
        self.history = SearchHistory()
        self.stop_reason = None

    def stop(self, reason="stopped by a callback"):
        """Stops proposing; queued children are dropped, running ones finish and are logged."""
        if self.stop_reason is None:
            self.stop_reason = str(reason)

    @property
    def stop_search(self):
        return self.stop_reason is not None

    @stop_search.setter
    def stop_search(self, value):
        if value:
            self.stop("stop_search was set")
        else:
            self.stop_reason = None

    def search(
        self,
        train_data=None,
        validation_data=None,
        *,
        max_trials,
        batch_size=None,
        callbacks=None,
        child_callbacks=None,
        directory=None,
        resume=False,
        seed=None,
        asynchronous=False,
        max_staleness=None,
        max_cache_streak=1000,
        verbose=1,
    ):
        """Runs the search until `max_trials` distinct architectures were evaluated.

        Args:
            train_data, validation_data: handed to the evaluator for every child.
            max_trials: distinct architectures to evaluate (cache hits do not
                count; failed children do).
            batch_size: children per algorithm update (m). Default: the
                algorithm's `batch_size` attribute, else the executor's capacity.
            callbacks: `SearchCallback`s.
            child_callbacks: `keras.callbacks` applied to every child (a fresh
                copy each); needs an evaluator with `child_callbacks`.
            directory: the run folder (`trials.jsonl`, `summary.json`,
                `checkpoint/`); `None` keeps the run in memory.
            resume: continue the run in `directory`. Without it, a folder that
                already holds a run is refused.
            seed: the run's seed for child training seeds (default: random,
                saved in `run.json`).
            asynchronous: refill free executor slots at once instead of
                waiting for the whole batch (see the module docstring).
            max_staleness: in asynchronous mode, the most updates a trial's
                policy may lag behind and still be learnt from.
            max_cache_streak: stop after this many cache hits in a row (a
                converged policy or an exhausted space).
            verbose: 0 silent, 1 progress bar, 2 one line per trial.

        Returns:
            A `SearchHistory`.
        """
        options = dict(
            max_trials=_check_int("max_trials", max_trials),
            batch_size=_check_int("batch_size", batch_size, allow_none=True),
            directory=directory,
            resume=bool(resume),
            seed=_check_int("seed", seed, minimum=0, allow_none=True),
            asynchronous=bool(asynchronous),
            max_staleness=_check_int("max_staleness", max_staleness, 0, allow_none=True),
            max_cache_streak=_check_int("max_cache_streak", max_cache_streak),
            verbose=verbose,
        )
        if verbose not in (0, 1, 2):
            _fail("verbose", "0, 1 or 2", verbose)
        if options["batch_size"] is None:
            default = getattr(self.algorithm, "batch_size", None)
            options["batch_size"] = default or max(1, int(getattr(self.executor, "capacity", 1)))
        run = _SearchRun(self, options)
        return run.run(train_data, validation_data, callbacks, child_callbacks)


class _SearchRun:
    """The state of one `search` call: proposals in flight, cache, update buffer."""

    def __init__(self, search, options):
        self.search, self.options = search, options
        self.algorithm, self.space, self.executor = search.algorithm, search.space, search.executor
        self.history = SearchHistory(options["directory"])
        self.run_dir = RunDirectory(options["directory"]) if options["directory"] else None
        self.cache = {}  # arch_key -> the trial that evaluated it
        self.outstanding = {}  # proposal_id -> Trial proposed and not logged yet
        self.submitted = {}  # proposal_id -> arch_key, handed to the executor
        self.running = {}  # arch_key -> proposal_id of the trial evaluating it
        self.waiting = {}  # arch_key -> [proposal_id] repeats of a running architecture
        self.buffer = []  # logged trials the algorithm has not learnt from yet
        self.consumed = 0  # logged trials the algorithm has learnt from
        self.next_proposal_id = 0
        self.sequence = 0
        self.cache_streak = 0
        self.cancelled = False
        self.progress = None
        self.seed = options["seed"]

    # ----------------------------------------------------------------- set-up
    def run(self, train_data, validation_data, callbacks, child_callbacks):
        resumed = self._prepare_directory()
        self.search.history, self.search.stop_reason = self.history, None
        self.callbacks = CallbackList(callbacks, self.search)
        self._set_child_callbacks(child_callbacks)
        self.executor.start(self.search.evaluator, train_data, validation_data)
        if self.options["verbose"]:
            self.progress = ProgressBar(
                self.options["max_trials"],
                initial=self.history.num_evaluated,
                per_line=self.options["verbose"] == 2,
            )
        begin_logs = {"max_trials": self.options["max_trials"], "resumed": resumed}
        try:
            self.callbacks.on_search_begin({**begin_logs, "num_trials": len(self.history.trials)})
            for proposal_id, trial in list(self.outstanding.items()):
                self._dispatch(proposal_id, trial)
            self._loop()
        finally:
            self.executor.shutdown()
            if self.progress is not None:
                self.progress.close()
        self.history.stop_reason = self.search.stop_reason
        self._write_summary(finished=True)
        self.callbacks.on_search_end(self.history.summary())
        return self.history

    def _set_child_callbacks(self, child_callbacks):
        if child_callbacks is None:
            return
        evaluator = self.search.evaluator
        if not hasattr(evaluator, "child_callbacks"):
            raise ValueError(
                "`child_callbacks` need an evaluator that trains children (such as "
                f"ChildTrainer); {type(evaluator).__name__} has no `child_callbacks`."
            )
        evaluator.child_callbacks = list(child_callbacks)

    def _run_info(self):
        evaluator = self.search.evaluator
        config = getattr(evaluator, "get_config", dict)()
        return {
            "space": self.space.get_config(),
            "algorithm": type(self.algorithm).__name__,
            "algorithm_config": getattr(self.algorithm, "get_config", dict)(),
            "evaluator": type(evaluator).__name__,
            "evaluator_config": json.loads(json.dumps(json_safe(config), default=repr)),
            "executor": getattr(self.executor, "get_config", dict)(),
            "objective": self.search.objective.get_config(),
            "seed": self.seed,
            "batch_size": self.options["batch_size"],
            "asynchronous": self.options["asynchronous"],
            "max_staleness": self.options["max_staleness"],
            "created": time.time(),
        }

    def _prepare_directory(self):
        """Creates or resumes the run folder; returns whether a run was resumed."""
        if self.run_dir is None:
            if self.options["resume"]:
                raise ValueError("`resume=True` needs the run's `directory`. Received: None")
            self._choose_seed()
            return False
        if self.run_dir.has_run():
            if not self.options["resume"]:
                raise FileExistsError(
                    f"{self.run_dir.path} already holds a search run. Pass resume=True "
                    "(CLI: --resume) to continue it, or choose another directory."
                )
            self._restore()
            return True
        self._choose_seed()
        self.run_dir.create(self._run_info())
        return False

    def _choose_seed(self):
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31 - 1)

    def _restore(self):
        info = self.run_dir.read_run_info()
        if info is None:
            raise ValueError(
                f"Cannot resume {self.run_dir.path}: it has no run.json, so it is not a "
                "complete search run folder."
            )
        self._check_same_run(info)
        self.seed = info["seed"]
        self.run_dir.repair_trials_log()
        pairs = self.run_dir.read_trials()
        checkpoint = self.run_dir.load_checkpoint()
        if checkpoint is None:
            if pairs:
                raise ValueError(
                    f"Cannot resume {self.run_dir.path}: {TRIALS_FILE} holds {len(pairs)} "
                    "trials but the checkpoint folder has no state.json."
                )
            return
        algorithm_state, state = checkpoint
        if state["consumed"] > len(pairs):
            raise ValueError(
                f"Cannot resume {self.run_dir.path}: the checkpoint learnt from "
                f"{state['consumed']} trials but {TRIALS_FILE} holds only {len(pairs)}."
            )
        self.algorithm.set_state(algorithm_state)
        for _, trial in pairs:
            self.history.append(trial)
            if not trial.cached:
                self.cache.setdefault(trial.arch_key, trial)
        self.consumed = state["consumed"]
        self.buffer = [trial for _, trial in pairs[self.consumed :]]
        self.next_proposal_id, self.sequence = state["next_proposal_id"], state["sequence"]
        logged = {proposal_id for proposal_id, _ in pairs}
        for item in state["outstanding"]:
            if item["proposal_id"] not in logged:
                self.outstanding[item["proposal_id"]] = Trial.from_dict(item["trial"])

    def _check_same_run(self, info):
        saved_space = json_safe(info.get("space"))
        if saved_space != json_safe(self.space.get_config()):
            raise ValueError(
                f"Cannot resume {self.run_dir.path}: it searched the space {saved_space}, "
                f"this search uses {self.space.get_config()}."
            )
        if info.get("algorithm") != type(self.algorithm).__name__:
            raise ValueError(
                f"Cannot resume {self.run_dir.path}: it used the algorithm "
                f"{info.get('algorithm')}, this search uses {type(self.algorithm).__name__}."
            )
        saved = info.get("objective")
        saved = Objective.of_legacy_run(info) if saved is None else Objective.from_config(saved)
        if saved != self.search.objective:
            raise ValueError(
                f"Cannot resume {self.run_dir.path}: it maximised the objective "
                f"{saved.get_config()}, this search uses {self.search.objective.get_config()}."
            )
        if self.options["seed"] is not None and self.options["seed"] != info["seed"]:
            raise ValueError(
                f"Cannot resume {self.run_dir.path} with seed={self.options['seed']}: "
                f"the run was started with seed={info['seed']}."
            )

    # ------------------------------------------------------------------ loop
    def _loop(self):
        while True:
            if self.search.stop_reason and not self.cancelled:
                self._cancel_queued()
            if self._update_due():
                self._update()
            elif self._can_propose():
                self._propose()
            elif self.submitted:
                self._collect()
            elif self.buffer:
                self._update()
            else:
                return

    def _budget_left(self):
        return self.options["max_trials"] - self.history.num_evaluated - len(self.submitted)

    def _update_due(self):
        if not self.buffer:
            return False
        if self.options["asynchronous"]:
            return len(self.buffer) >= self.options["batch_size"]
        return not self.outstanding

    def _can_propose(self):
        if self.search.stop_reason or self._budget_left() <= 0:
            return False
        if self.options["asynchronous"]:
            return len(self.outstanding) < self.executor.capacity
        return not self.outstanding and not self.buffer

    def _propose(self):
        from nasnet_app.search.algorithms import SearchSpaceExhausted

        if self.options["asynchronous"]:
            count = self.executor.capacity - len(self.outstanding)
        else:
            count = self.options["batch_size"]
        version = self.algorithm.version  # the policy that makes these proposals
        try:
            proposals = self.algorithm.propose(count)
        except SearchSpaceExhausted as error:
            self.search.stop(f"the search space is exhausted: {error}")
            return
        budget, new_keys, kept = self._budget_left(), set(), []
        for proposal in proposals:
            proposal_id = self.next_proposal_id
            self.next_proposal_id += 1
            trial = self._make_trial(proposal, version, proposal_id)
            key = trial.arch_key
            if key not in self.cache and key not in self.running and key not in new_keys:
                if budget <= 0:
                    continue  # over the trial budget: dropped, never evaluated
                budget -= 1
                new_keys.add(key)
            kept.append((proposal_id, trial))
        self.outstanding.update(kept)
        self._checkpoint()
        for proposal_id, trial in kept:
            self._dispatch(proposal_id, trial)

    def _make_trial(self, proposal, version, proposal_id):
        actions = [int(a) for a in proposal["actions"]]
        architecture = self.space.decode(actions)
        return Trial(
            trial_id=-1,
            actions=actions,
            architecture=self.space.to_data(architecture),
            arch_key=self.space.arch_key(architecture),
            seed=child_seed(self.seed, proposal_id),
            policy_version=int(version),
            extra=dict(proposal.get("extra") or {}),
        )

    def _dispatch(self, proposal_id, trial):
        key = trial.arch_key
        if key in self.cache:
            self._finish_from_cache(proposal_id, trial, self.cache[key])
        elif key in self.running:
            self.waiting.setdefault(key, []).append(proposal_id)
        elif self._budget_left() <= 0:
            self.outstanding.pop(proposal_id)
        else:
            self.submitted[proposal_id] = key
            self.running[key] = proposal_id
            self.callbacks.on_trial_begin(trial, {"proposal_id": proposal_id})
            self.executor.submit(proposal_id, trial)

    def _collect(self):
        for proposal_id, trial in self.executor.collect():
            key = self.submitted.pop(proposal_id, None)
            if key is None:
                continue  # cancelled after it was handed out
            self.running.pop(key, None)
            self.outstanding.pop(proposal_id, None)
            self._apply_objective(trial)
            self.cache.setdefault(key, trial)
            self._record(proposal_id, trial)
            for waiting_id in self.waiting.pop(key, []):
                self._finish_from_cache(waiting_id, self.outstanding[waiting_id], trial)

    def _apply_objective(self, trial):
        """The evaluator's raw result becomes the reward: the one place it is transformed."""
        if trial.status != "completed":
            return
        objective = self.search.objective
        raw = trial.reward
        trial.reward = objective.reward(raw, trial.metrics)
        if objective.name == "reward" and (objective.transform, objective.direction) != (
            "identity",
            "max",
        ):
            trial.metrics = {**trial.metrics, "raw_reward": raw}

    def _cancel_queued(self):
        self.cancelled = True
        for proposal_id in self.executor.cancel_queued():
            key = self.submitted.pop(proposal_id, None)
            self.running.pop(key, None)
            self.outstanding.pop(proposal_id, None)
            for waiting_id in self.waiting.pop(key, []):
                self.outstanding.pop(waiting_id, None)

    def _finish_from_cache(self, proposal_id, trial, source):
        self.outstanding.pop(proposal_id, None)
        now = time.time()
        finished = dataclasses.replace(
            trial,
            status=source.status,
            reward=source.reward,
            error=source.error,
            metrics={**source.metrics, "cached_from": source.trial_id},
            cached=True,
            start_time=now,
            end_time=now,
        )
        self._record(proposal_id, finished)

    def _record(self, proposal_id, trial):
        trial.trial_id = len(self.history.trials)
        if trial.end_time is None:
            trial.end_time = time.time()
        duration = round(trial.end_time - trial.start_time, 4)
        if self.run_dir is not None:
            self.run_dir.append_trial(trial, proposal_id=proposal_id, duration_s=duration)
        self.history.append(trial)
        self.buffer.append(trial)
        self._track_cache_streak(trial)
        self._write_summary(finished=False)
        logs = {
            "reward": trial.reward,
            "best_reward": self.history.best_reward,
            "status": trial.status,
            "cached": trial.cached,
            "num_trials": len(self.history.trials),
            "num_evaluated": self.history.num_evaluated,
            "duration_s": duration,
        }
        self.callbacks.on_trial_end(trial, logs)
        self._show_progress(trial)

    def _track_cache_streak(self, trial):
        self.cache_streak = self.cache_streak + 1 if trial.cached else 0
        if self.cache_streak >= self.options["max_cache_streak"]:
            self.search.stop(
                f"{self.cache_streak} proposals in a row were architectures evaluated before "
                "(the policy converged or the space is exhausted)."
            )

    def _show_progress(self, trial):
        if self.progress is None:
            return
        summary = self.history.summary()
        if self.options["verbose"] == 2:
            reward = "failed" if trial.reward is None else f"{trial.reward:.4f}"
            cached = " (cached)" if trial.cached else ""
            self.progress.stream.write(f"trial {trial.trial_id}: {reward}{cached}\n")
        self.progress.update(
            summary["num_evaluated"],
            summary["best_reward"],
            summary["num_failed"],
            summary["num_cached"],
        )

    def _update(self):
        size = self.options["batch_size"] if self.options["asynchronous"] else len(self.buffer)
        trials, self.buffer = self.buffer[:size], self.buffer[size:]
        version = self.algorithm.version
        staleness = [version - trial.policy_version for trial in trials]
        limit = self.options["max_staleness"]
        fresh = [t for t, s in zip(trials, staleness, strict=True) if limit is None or s <= limit]
        logs = dict(self.algorithm.update(fresh) or {}) if fresh else {}
        self.consumed += len(trials)
        logs.update(
            version=self.algorithm.version,
            num_trials=len(fresh),
            num_stale=len(trials) - len(fresh),
            mean_staleness=sum(staleness) / len(staleness),
        )
        logs = json_safe(logs)
        self._checkpoint()
        self.history.updates.append(logs)
        self.callbacks.on_controller_update(logs)

    # ----------------------------------------------------------------- files
    def _checkpoint(self):
        if self.run_dir is None:
            return
        self.sequence += 1
        state = {
            "sequence": self.sequence,
            "consumed": self.consumed,
            "next_proposal_id": self.next_proposal_id,
            "algorithm_version": self.algorithm.version,
            "outstanding": [
                {"proposal_id": proposal_id, "trial": trial.to_dict()}
                for proposal_id, trial in self.outstanding.items()
            ],
            "time": time.time(),
        }
        self.run_dir.save_checkpoint(self.algorithm.get_state(), state)

    def _write_summary(self, finished):
        if self.run_dir is None:
            return
        summary = {
            **self.history.summary(),
            "max_trials": self.options["max_trials"],
            "finished": finished,
            "stop_reason": self.search.stop_reason,
            "algorithm_version": self.algorithm.version,
            "objective": self.search.objective.get_config(),
        }
        self.run_dir.write_summary(summary)
